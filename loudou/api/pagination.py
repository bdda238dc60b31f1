"""The one pagination of API lists: ``limit`` and ``offset`` with bounds.

ninja's own ``LimitOffsetPagination`` accepts any integer, and a huge ``limit`` or
``offset`` overflows the database's 64-bit integer (a 500 instead of a 422). Use this
class with ``@paginate(LimitOffsetPagination)`` on every list endpoint.
"""

from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination as NinjaLimitOffsetPagination
from ninja.pagination import paginate

MAX_LIMIT = 1000
MAX_OFFSET = 2**31 - 1

__all__ = ["LimitOffsetPagination", "paginate", "MAX_LIMIT", "MAX_OFFSET"]


class LimitOffsetPagination(NinjaLimitOffsetPagination):
    class Input(Schema):
        limit: int = Field(100, ge=1, le=MAX_LIMIT, description="Page size (1 to 1000).")
        offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Records to skip.")

    def __init__(self, **kwargs):
        super().__init__(max_limit=MAX_LIMIT, **kwargs)
