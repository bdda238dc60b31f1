"""Schemas shared by every API router."""

from ninja import Schema


class Error(Schema):
    detail: str
    code: str


class Page(Schema):
    """Envelope of a list: ``count`` is the total, ``items`` one page of it."""

    count: int
    limit: int
    offset: int
