"""Targets and performance: the models (being built)."""
