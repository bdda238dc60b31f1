"""Bulk writes for imports: id allocation, many-row INSERTs, id ranges for undo.

``insert_rows`` is the same fast path as ``loudou.testing.generate.insert_rows`` (one
executemany on SQLite, COPY on PostgreSQL); it is repeated here because product code must
not import the testing package. Both belong in ``loudou.core.db`` (see the report of
issue 7).

Ids are allocated before the INSERT so that opportunities and their stage history can be
written in one pass: on PostgreSQL from the table's own sequence (``nextval`` for each
row, safe beside concurrent writers); on SQLite from ``max(id, sqlite_sequence)`` inside
the IMMEDIATE write transaction, which no other writer can enter.
"""

from __future__ import annotations

from datetime import UTC

from django.conf import settings
from django.db import connection


def _sqlite_datetime(value):
    """What Django's SQLite backend stores for an aware datetime (naive UTC text), without
    its per-value settings lookups: a million history rows make them count."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return str(value)


def _adapter(field):
    ops = connection.ops
    kind = field.get_internal_type()
    if kind == "DateTimeField":
        if connection.vendor == "sqlite" and settings.USE_TZ:
            return _sqlite_datetime
        return ops.adapt_datetimefield_value
    if kind == "DateField":
        return ops.adapt_datefield_value
    if kind == "JSONField":
        return lambda value: field.get_db_prep_save(value, connection)
    return None  # str, int, bool and Decimal go to both drivers as they are


_PLANS: dict = {}


def _plan(model):
    key = (model, connection.vendor)
    if key not in _PLANS:
        fields = list(model._meta.concrete_fields)
        _PLANS[key] = (
            fields,
            [f.attname for f in fields],
            {f.attname: f.get_default() for f in fields if not f.primary_key},
            [_adapter(f) for f in fields],
        )
    return _PLANS[key]


def insert_rows(model, rows: list[dict]) -> None:
    """INSERT ``rows`` (dicts of attnames, each with its ``id``) in one statement batch;
    a column a row leaves out gets the field's default."""
    if not rows:
        return
    fields, names, defaults, adapters = _plan(model)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    pairs = [(name, defaults.get(name)) for name in names]
    adapted = [(i, adapt) for i, adapt in enumerate(adapters) if adapt]
    memo: dict[int, object] = {}  # the same datetime object recurs (now, a deal's times)
    values = []
    for row in rows:
        record = [row[name] if name in row else default for name, default in pairs]
        for i, adapt in adapted:
            value = record[i]
            if value is not None:
                key = id(value)
                done = memo.get(key)
                if done is None:
                    done = memo[key] = (adapt(value), value)
                record[i] = done[0]
        values.append(record)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for record in values:
                    copy.write_row(record)
        else:
            marks = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", values)


def allocate_ids(model, count: int) -> list[int]:
    """``count`` fresh primary keys for ``model``; call inside the write transaction."""
    if count <= 0:
        return []
    table = model._meta.db_table
    column = model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, column, count],
            )
            return [row[0] for row in cursor.fetchall()]
        quote = connection.ops.quote_name
        cursor.execute(f"SELECT MAX({quote(column)}) FROM {quote(table)}")
        top = cursor.fetchone()[0] or 0
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
        start = max(top, row[0] if row else 0) + 1
    return list(range(start, start + count))


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
