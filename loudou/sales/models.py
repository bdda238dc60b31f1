"""Contracts, orders and payments: the models (being built)."""
