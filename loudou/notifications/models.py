"""Notifications: the models (being built)."""
