"""Activities API (being built)."""

from ninja import Router

router = Router(tags=["activities"])
