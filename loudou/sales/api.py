"""Contracts, orders and payments API (being built)."""

from ninja import Router

router = Router(tags=["sales"])
