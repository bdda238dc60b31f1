"""Onboarding roadmap API (being built)."""

from ninja import Router

router = Router(tags=["onboarding"])
