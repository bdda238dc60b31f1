"""Import and export API (being built)."""

from ninja import Router

router = Router(tags=["imports"])
