"""Activities: the models (being built)."""
