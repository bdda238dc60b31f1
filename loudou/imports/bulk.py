"""Bulk writes for imports: id allocation, many-row INSERTs, id ranges for undo.

``insert_rows`` and ``allocate_ids`` live in ``loudou.core.db`` (shared with the test-data
generator) and are re-exported here, so that callers (and tests) reach them as
``bulk.insert_rows``.

Ids are allocated before the INSERT so that opportunities and their stage history can be
written in one pass: on PostgreSQL from the table's own sequence (``nextval`` for each
row, safe beside concurrent writers); on SQLite from ``max(id, sqlite_sequence)`` inside
the IMMEDIATE write transaction, which no other writer can enter.
"""

from __future__ import annotations

from loudou.core.db import allocate_ids, insert_rows

__all__ = ["add_ranges", "allocate_ids", "ids_in", "insert_rows"]


def add_ranges(ranges: list[list[int]], ids) -> list[list[int]]:
    """Merge ``ids`` into a sorted list of inclusive [first, last] ranges (compact enough
    to keep a million created ids in a job's JSON)."""
    for pk in sorted(ids):
        if ranges and ranges[-1][1] + 1 == pk:
            ranges[-1][1] = pk
        elif ranges and ranges[-1][0] <= pk <= ranges[-1][1]:
            continue
        else:
            ranges.append([pk, pk])
    return ranges


def ids_in(ranges) -> int:
    return sum(last - first + 1 for first, last in ranges)
