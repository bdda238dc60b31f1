"""Import and export: the models (being built)."""
