"""Onboarding roadmap: the models (being built)."""
