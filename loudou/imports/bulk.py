"""Bulk writes for imports: id allocation, many-row INSERTs, id ranges for undo, index
deferral for large loads, and key lookups that skip the ORM's per-value preparation.

``insert_rows`` and ``allocate_ids`` live in ``loudou.core.db`` (shared with the test-data
generator) and are re-exported here, so that callers (and tests) reach them as
``bulk.insert_rows``.

Ids are allocated before the INSERT so that opportunities and their stage history can be
written in one pass: on PostgreSQL from the table's own sequence (``nextval`` for each
row, safe beside concurrent writers); on SQLite from ``max(id, sqlite_sequence)`` inside
the IMMEDIATE write transaction, which no other writer can enter.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.db import DatabaseError, connection, transaction

from loudou.core.db import (
    EPOCH,
    NEXTVAL,
    ONE_MICRO,
    CopyWriter,
    ForeignKeyChecks,
    _sqlite_datetime,
    allocate_ids,
    datetime_param,
    insert_rows,
    insert_tuples,
    numeric_bytes,
    sequence_of,
    whole_rows,
)

__all__ = [
    "NEXTVAL", "CopyWriter", "ForeignKeyChecks", "add_ranges", "allocate_ids", "analyze",
    "datetime_param", "decimal_param", "deferred_indexes", "ids_in", "in_ranges", "no_jit",
    "insert_rows", "insert_tuples", "lookup", "micros", "micros_param", "probe_sql", "sequence_of",
    "whole_rows",
]  # fmt: skip

EPOCH_DAY = date(1970, 1, 1)
DAY_MICROS = 86_400_000_000
_MINUTES = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
_SECONDS = [f"{s:02d}" for s in range(60)]

# SQLite allows 32,766 host parameters per statement (3.32+); stay well below.
LOOKUP_CHUNK = 5_000
# Loads at least this large (and as large as the table) defer their index updates.
DEFER_INDEXES_FROM = 20_000
# PostgreSQL: statistics refreshed after this many rows, then each time the count doubles.
ANALYZE_FROM = 10_000


def micros(moment: datetime) -> int:
    """An aware datetime as whole microseconds since the epoch: exact, and cheaper than a
    datetime to compare, subtract and carry through a deal's history rebuild."""
    return (moment - EPOCH) // ONE_MICRO


def decimal_param():
    """The function that turns a Decimal into what :func:`insert_tuples` passes for a
    DecimalField, made once per value by the caller: on SQLite the text its Decimal
    adapter binds (str); on PostgreSQL the numeric's binary form, which a binary COPY
    writes as it is (core.db.numeric_bytes; a text COPY as the Decimal)."""
    if connection.vendor == "postgresql":
        return numeric_bytes()
    return str


def micros_param():
    """The function that turns microseconds since the epoch (:func:`micros`) into what
    :func:`insert_tuples` passes for a DateTimeField. On PostgreSQL, the microseconds
    themselves: a binary COPY writes them as they are, with no datetime made (nor
    pickled by the preparing process) per value. On SQLite, the very text
    :func:`datetime_param` gives for the same moment (Django's naive UTC text), written
    without making a datetime: each day's date once, then the time."""
    adapt = datetime_param()
    if connection.vendor == "postgresql":  # the microseconds themselves: a binary COPY
        return int  # writes them as they are (insert_tuples), a text COPY as datetimes
    if adapt is not _sqlite_datetime:
        return lambda value: adapt(EPOCH + timedelta(microseconds=value))
    days: dict[int, str] = {}

    def param(value: int) -> str:
        day, rest = divmod(value, DAY_MICROS)
        prefix = days.get(day)
        if prefix is None:
            if len(days) > 100_000:  # bounded: memory stays flat
                days.clear()
            prefix = days[day] = f"{EPOCH_DAY + timedelta(days=day)} "
        minute, rest = divmod(rest, 60_000_000)
        if rest % 1_000_000:  # str(datetime) writes microseconds only when there are some
            return f"{prefix}{_MINUTES[minute]}{rest // 1_000_000:02d}.{rest % 1_000_000:06d}"
        return prefix + _MINUTES[minute] + _SECONDS[rest // 1_000_000]

    return param


def add_ranges(ranges: list[list[int]], ids) -> list[list[int]]:
    """Merge ``ids`` into a sorted list of inclusive [first, last] ranges (compact enough
    to keep a million created ids in a job's JSON). A batch's ids are usually one run
    from a sequence: then no Python step per id (a 100,000-deal import hands 600,000)."""
    ids = sorted(set(ids))
    if not ids:
        return ranges
    if ids[-1] - ids[0] + 1 == len(ids):
        runs = [(ids[0], ids[-1])]
    else:
        runs, start = [], ids[0]
        for before, pk in zip(ids, ids[1:], strict=False):
            if pk != before + 1:
                runs.append((start, before))
                start = pk
        runs.append((start, ids[-1]))
    for first, last in runs:
        if ranges and ranges[-1][0] <= first <= ranges[-1][1] + 1:
            ranges[-1][1] = max(ranges[-1][1], last)
        else:
            ranges.append([first, last])
    return ranges


def ids_in(ranges) -> int:
    return sum(last - first + 1 for first, last in ranges)


def in_ranges(ranges, pk: int) -> bool:
    """Whether ``pk`` lies in one of the sorted, disjoint [first, last] ``ranges``."""
    i = bisect.bisect_right(ranges, [pk, float("inf")]) - 1
    return i >= 0 and ranges[i][0] <= pk <= ranges[i][1]


def lookup(model, columns: Iterable[str], where: str, values: Iterable) -> list[tuple]:
    """``SELECT columns FROM model's table WHERE where IN (values)`` in chunks, straight
    through the cursor: a batch of 2,000 rows asks for 4,000 keys, and the ORM's lookup
    preparation of each value cost more than the query itself."""
    values = [v for v in set(values) if v not in ("", None)]
    if not values:
        return []
    out = []
    probe = probe_sql(model, columns, where)
    if probe is None:
        table, cols, column = _quoted(model, columns, where)
    with connection.cursor() as cursor:
        for start in range(0, len(values), LOOKUP_CHUNK):
            chunk = values[start : start + LOOKUP_CHUNK]
            if probe:
                cursor.execute(probe, [chunk])
            else:
                marks = ", ".join(["%s"] * len(chunk))
                cursor.execute(f"SELECT {cols} FROM {table} WHERE {column} IN ({marks})", chunk)
            out.extend(cursor.fetchall())
    return out


def _quoted(model, columns: Iterable[str], where: str) -> tuple[str, str, str]:
    """The table, the selected columns and the key column of a lookup, quoted."""
    quote = connection.ops.quote_name
    return (quote(model._meta.db_table),
            ", ".join(quote(model._meta.get_field(c).column) for c in columns),
            quote(model._meta.get_field(where).column))  # fmt: skip


def probe_sql(model, columns: Iterable[str], where: str) -> str | None:
    """:func:`lookup`'s statement on PostgreSQL: its one parameter is the array of keys.

    The lookup as one index probe per key: the keys are one array
    parameter (a query text psycopg parses once, not 2,000 ``%s`` per batch), and the
    ``LATERAL … OFFSET 0`` subquery cannot be flattened into a join, so the planner
    cannot trade the probes for a scan of the table. With an IN list it did: at 200,000
    leads, each batch's e-mail lookup was a parallel sequential scan (70 ms, two worker
    processes) instead of 2,000 index probes (3 ms) — the e-mail index is larger than
    the mobile one and the planner priced it above reading the whole table. None
    (the IN list) on SQLite, whose planner always probes, and for key types other than
    text and integers."""
    if connection.vendor != "postgresql":
        return None
    kind = model._meta.get_field(where).db_type(connection) or ""
    if kind.startswith(("varchar", "text", "character varying")):
        array = "text[]"
    elif kind in ("bigint", "integer", "smallint"):
        array = "bigint[]"
    else:
        return None
    table, cols, column = _quoted(model, columns, where)
    return (f"SELECT t.* FROM unnest(%s::{array}) AS k(v) CROSS JOIN LATERAL "
            f"(SELECT {cols} FROM {table} WHERE {column} = k.v OFFSET 0) AS t")  # fmt: skip


def analyze(models_keys: dict) -> None:
    """On PostgreSQL, refresh the planner's statistics of ``models_keys``' tables (model →
    the key columns its lookups read) inside the import's transaction: its own new rows
    count. A table an import fills from empty has none, and the planner then reads a
    batch's ``key IN (…2,000 keys…)`` duplicate lookup as matching most rows and scans
    the whole table for it, batch after batch: the server's time grew with the square of
    the file (1,000,000 leads: about 280 s of server CPU). Only the key columns' own
    statistics are gathered (the table's size comes with them): a whole-table ANALYZE
    also sorted the sample of every other column (100,000 deals: 0.8 s of the import).
    SQLite's planner uses the index without statistics."""
    if connection.vendor != "postgresql" or not models_keys:
        return
    quote = connection.ops.quote_name
    tables = ", ".join(
        f"{quote(model._meta.db_table)} ({', '.join(quote(c) for c in _key_columns(model, keys))})"
        for model, keys in models_keys.items()
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + tables)


def _key_columns(model, keys) -> list[str]:
    return [model._meta.get_field(name).column for name in keys]


def no_jit() -> None:
    """On PostgreSQL, no JIT compilation for the rest of the import's transaction (SET
    LOCAL: it ends with it). The statements that follow a bulk load are estimated costly
    (whole tables) but run once each: the funnel summaries' refresh after 20,000 imported
    deals compiled 0.8 s of JIT code for each of its four UPDATEs (2.5 s each with it),
    more than some took to run."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def _table_rows(model) -> int:
    """About how many rows ``model``'s table holds (from its id range: no scan)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT MIN({quote(model._meta.pk.column)}), MAX({quote(model._meta.pk.column)}) "
            f"FROM {quote(model._meta.db_table)}"
        )
        low, high = cursor.fetchone()
    return 0 if low is None else high - low + 1


@contextlib.contextmanager
def deferred_indexes(models_keep: dict, *, rows: int):
    """Inside one write transaction, drop the secondary indexes of the given tables and
    build them again at the end: a large load then writes each table once and sorts each
    index once, instead of updating a dozen B-trees row by row (SQLite: the bulk of a
    1,000,000-row import's time; PostgreSQL: 100,000 deals and their 400,000 history rows
    took 10.6 s of server time with their indexes, 1.6 s without and 3.1 s to build them).

    ``models_keep``: model → columns whose indexes stay (the duplicate lookups of the
    import need them). Unique indexes always stay. Only when the load is large (``rows``
    at least DEFER_INDEXES_FROM) and inside a transaction (``atomic``): the DDL commits,
    or rolls back (refused, dry run, killed), with the rows.

    Which tables: on SQLite, those holding no more rows than the load — rebuilding an
    index over ten million existing rows would cost more than it saves; readers in other
    connections never see the indexes missing (they read the last commit). On
    PostgreSQL, only empty tables (a team's first import): DROP INDEX locks the table
    against every reader until the import ends, which is harmless only where there is
    nothing to read yet. The lock is taken without waiting (NOWAIT): a table someone is
    reading or writing at that moment keeps its indexes, and nobody is made to wait
    behind the import for it."""
    if rows < DEFER_INDEXES_FROM or not connection.in_atomic_block:
        yield
        return
    if connection.vendor == "sqlite":
        saved = _drop_sqlite_indexes(models_keep, rows)
    elif connection.vendor == "postgresql":
        saved = _drop_postgresql_indexes(models_keep)
    else:
        saved = []
    yield
    with connection.cursor() as cursor:
        for sql in saved:
            cursor.execute(sql)


def _drop_sqlite_indexes(models_keep: dict, rows: int) -> list[str]:
    """Drop the deferrable indexes (deferred_indexes); their CREATE statements."""
    saved: list[str] = []
    with connection.cursor() as cursor:
        for model, keep in models_keep.items():
            if _table_rows(model) > rows:
                continue
            kept = set(_key_columns(model, keep))
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s "
                "AND sql IS NOT NULL",
                [model._meta.db_table],
            )
            for name, sql in cursor.fetchall():
                head = sql.split("(", 1)[0].upper()
                if "UNIQUE" in head:
                    continue
                cursor.execute(f'PRAGMA index_info("{name}")')
                first = [row[2] for row in cursor.fetchall()][:1]
                if first and first[0] in kept:
                    continue
                cursor.execute(f'DROP INDEX "{name}"')
                saved.append(sql)
    return saved


# The secondary indexes of a PostgreSQL table that no constraint owns (a primary key or
# unique constraint stays), with their definitions and first columns.
_PG_INDEXES = """
    SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), a.attname
    FROM pg_index i
    LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = %s::regclass AND NOT i.indisunique AND NOT i.indisprimary
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
    ORDER BY i.indexrelid
"""


def _drop_postgresql_indexes(models_keep: dict) -> list[str]:
    """Drop the deferrable indexes of the empty tables whose lock is free at once
    (deferred_indexes); their CREATE statements. Each table in a savepoint: one that is
    busy, not empty, or not the role's to alter is left as it is."""
    saved: list[str] = []
    quote = connection.ops.quote_name
    for model, keep in models_keep.items():
        table = quote(model._meta.db_table)
        kept = set(_key_columns(model, keep))
        dropped = []
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE NOWAIT")
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")
                if cursor.fetchone()[0]:  # not empty: the savepoint (and lock) rolled back
                    transaction.set_rollback(True)
                    continue
                cursor.execute(_PG_INDEXES, [table])
                for name, sql, first in cursor.fetchall():
                    if first not in kept:
                        cursor.execute(f"DROP INDEX {name}")
                        dropped.append(sql)
        except DatabaseError:  # busy, or not ours to alter: rolled back to the savepoint
            continue
        saved.extend(dropped)
    return saved
