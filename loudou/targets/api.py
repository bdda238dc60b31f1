"""Targets and performance API (being built)."""

from ninja import Router

router = Router(tags=["targets"])
