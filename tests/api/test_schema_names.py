"""The OpenAPI document describes every schema class, none hidden behind another's name."""

from collections import defaultdict

from ninja import Schema

from loudou.api.router import api


def all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from all_subclasses(sub)


def test_api_schema_class_names_are_unique():
    """django-ninja names OpenAPI components after the class, and when two apps both
    define e.g. ``StageOut`` it silently documents only one of them, so clients are told
    the wrong shape. Every schema class of Loudou must have its own name."""
    api.get_openapi_schema()  # imports every router, and so every schema class
    by_name = defaultdict(set)
    for cls in all_subclasses(Schema):
        if cls.__module__.startswith("loudou."):
            by_name[cls.__name__].add(f"{cls.__module__}.{cls.__qualname__}")
    clashes = {name: sorted(paths) for name, paths in by_name.items() if len(paths) > 1}
    assert not clashes, f"schema classes sharing a name: {clashes}"
