"""Database expressions that give the same exact answer on SQLite and PostgreSQL, and the
bulk-write fast path (many-row INSERTs, id allocation) shared by imports and the test-data
generator."""

import sqlite3
import struct
import sys
import threading
from bisect import bisect_right
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache, partial
from itertools import chain
from operator import attrgetter, is_not, itemgetter
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import NOT_PROVIDED, BigIntegerField, Func


class Cents(Func):
    """A money column as whole cents (an integer), so that SUM is exact on SQLite too,
    where decimals are stored as floating point. PostgreSQL's numeric is exact anyway;
    the cast makes both return the same type."""

    template = "CAST(ROUND(%(expressions)s * 100) AS BIGINT)"
    output_field = BigIntegerField()

    def as_postgresql(self, compiler, connection, **extra_context):
        # numeric is exact already: skip the per-row rounding and cast (a third of the
        # time of a large column's totals). Sums come back as Decimal whole cents.
        template = "(%(expressions)s * 100)"
        return self.as_sql(compiler, connection, template=template, **extra_context)


# Moments as whole microseconds since this epoch (imports.bulk.micros, _MOMENTS).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICRO = timedelta(microseconds=1)


def _sqlite_datetime(value):
    """What Django's SQLite backend stores for an aware datetime (naive UTC text), without
    its per-value settings lookups: a million history rows make them count."""
    tz = value.tzinfo
    if tz is UTC:  # the common case of imported history (POSIX times): no conversion
        return str(value.replace(tzinfo=None))
    if tz is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return str(value)


def _adapter(field):
    ops = connection.ops
    kind = field.get_internal_type()
    if kind == "DateTimeField":
        return datetime_param()
    if kind == "DateField":
        return ops.adapt_datefield_value
    if kind == "JSONField":
        return lambda value: field.get_db_prep_save(value, connection)
    return None  # str, int, bool and Decimal go to both drivers as they are


_PLANS: dict = {}


def _plan(model, with_pk: bool):
    key = (model, connection.vendor, with_pk)
    if key not in _PLANS:
        fields = [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]
        _PLANS[key] = (fields, [f.attname for f in fields], [_adapter(f) for f in fields])
    return _PLANS[key]


def insert_rows(model, rows: list[dict], *, writer=None, checks=None) -> None:
    """INSERT ``rows`` (dicts of attnames) in one statement batch: one executemany on
    SQLite, COPY on PostgreSQL (the ORM's bulk_create spends most of its time building
    model instances). A column a row leaves out gets the field's default; if the first
    row has no primary key, the database assigns them all. Builds the tuples
    :func:`insert_tuples` writes (each distinct datetime adapted once); ``writer`` and
    ``checks`` as there."""
    if not rows:
        return
    pk_name = model._meta.pk.attname
    fields, names, adapters = _plan(model, pk_name in rows[0])
    # per call, not in the plan: a callable default (timezone.now) must not be frozen
    defaults = {f.attname: f.get_default() for f in fields if not f.primary_key}
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
    insert_tuples(model, names, values, adapted=names, writer=writer, checks=checks)


# (table, pk column) → the name of the sequence behind it (PostgreSQL); the same in every
# database of a schema.
_SEQUENCES: dict[tuple[str, str], str] = {}


def allocate_ids(model, count: int) -> list[int]:
    """``count`` fresh primary keys for ``model``; call inside the write transaction."""
    if count <= 0:
        return []
    table = model._meta.db_table
    column = model._meta.pk.column
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(NEXTVAL_RUNS, [sequence_of(model), count])
            return [pk for first, last in cursor.fetchall() for pk in range(first, last + 1)]
    with connection.cursor() as cursor:
        quote = connection.ops.quote_name
        cursor.execute(f"SELECT MAX({quote(column)}) FROM {quote(table)}")
        top = cursor.fetchone()[0] or 0
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
        start = max(top, row[0] if row else 0) + 1
    return list(range(start, start + count))


# ``count`` fresh ids from a sequence (PostgreSQL): [sequence, count].
NEXTVAL = "SELECT nextval(%s::regclass) FROM generate_series(1, %s)"
# The same ids as runs of consecutive values, (first, last) — one row unless another
# session took ids meanwhile: a 100,000-deal import allocates 500,000 ids, and fetching
# them one row each cost its client a second.
NEXTVAL_RUNS = f"""
    SELECT min(id), max(id) FROM (
        SELECT id, id - row_number() OVER (ORDER BY id) AS run FROM ({NEXTVAL}) AS ids (id)
    ) AS numbered GROUP BY run ORDER BY 1
"""


def sequence_of(model) -> str:
    """The name of the sequence behind ``model``'s primary key (PostgreSQL), looked up
    once per process: pg_get_serial_sequence per row made 2,000 ids cost 34 ms of server
    time instead of 4."""
    key = (model._meta.db_table, model._meta.pk.column)
    sequence = _SEQUENCES.get(key)
    if sequence is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", list(key))
            sequence = _SEQUENCES[key] = cursor.fetchone()[0]
    return sequence


def datetime_param():
    """The function that turns an aware datetime into what :func:`insert_tuples` passes
    to the database for a DateTimeField (SQLite: naive UTC text, as Django stores it;
    PostgreSQL: the datetime itself). A caller building many rows takes it once and
    adapts each value once, where it makes the value."""
    if connection.vendor == "sqlite" and settings.USE_TZ:
        return _sqlite_datetime
    return connection.ops.adapt_datetimefield_value


def insert_tuples(
    model, columns, rows, *, adapted=(), constants=None, writer=None, checks=None
) -> None:
    """INSERT ``rows`` given as tuples of the values of ``columns`` (attnames), in that
    order — the path :func:`insert_rows` takes too; called directly for loads of many
    rows: no dict per row, no per-value lookups. A concrete field ``columns`` leaves out
    gets its default (one value for the whole call; the primary key, when left out, is
    assigned by the database). ``constants``: attname → the one value every row has in
    that column (the caller's "now", the actor, a text column the file lacks), given once
    instead of in each tuple. ``adapted``: the columns (of ``columns`` or ``constants``)
    whose values the caller already turned into database parameters (datetimes through
    :func:`datetime_param`; on PostgreSQL a DateTimeField's may also be whole
    microseconds since the epoch, which a binary COPY writes as they are, see
    ``_MOMENTS``, and a DecimalField's its binary form, from :func:`numeric_bytes`); the
    other date, datetime and JSON columns are adapted here.

    On SQLite the constant values (and the defaults) are written into the statement as
    SQL literals, and the rows go many to a statement (``INSERT … VALUES (…), (…), …``):
    SQLite then binds only the values that differ, and runs one statement (one update of
    the table's AUTOINCREMENT counter) per few hundred rows instead of one per row. On
    PostgreSQL the rows are COPYed (in binary when their types allow, see
    ``_binary_types``); with a :class:`CopyWriter` as ``writer``, in its thread: the call
    returns at once and ``rows`` must not change until ``writer.wait()``. With a
    :class:`ForeignKeyChecks` as ``checks`` (and the database role allowed), the rows'
    foreign keys are checked and locked per call instead of by the row-by-row triggers:
    the rows they point to must exist when the call runs (not only at COMMIT)."""
    if not rows:
        return
    meta = model._meta
    by_attname = {f.attname: f for f in meta.concrete_fields}
    given = [by_attname.get(name) or meta.get_field(name) for name in columns]
    constants = dict(constants or {})
    missing = _defaulted(model, set(columns) | set(constants))
    todo = [
        (i, adapt)
        for i, (field, adapt) in enumerate(zip(given, map(_adapter, given), strict=True))
        if adapt is not None and field.attname not in adapted
    ]
    # Constant columns: the caller's, then the defaults of the columns left out (per
    # call: a callable default such as timezone.now must not be frozen).
    fixed = [
        (f, value if value is None or f.attname in adapted or (adapt := _adapter(f)) is None
         else adapt(value))
        for f, value in (
            *((by_attname.get(name) or meta.get_field(name), value)
              for name, value in constants.items()),
            *((f, f.get_default()) for f in missing),
        )
    ]  # fmt: skip
    sqlite = connection.vendor != "postgresql"
    literals = [(f, _sql_literal(value)) for f, value in fixed] if sqlite else []
    literals = [(f, sql) for f, sql in literals if sql is not None]
    as_literal = {f for f, _sql in literals}
    tail = tuple(value for f, value in fixed if f not in as_literal)
    fields = given + [f for f, _value in fixed if f not in as_literal]
    if todo:
        values = []
        for row in rows:
            record = list(row)
            for i, adapt in todo:
                if record[i] is not None:
                    record[i] = adapt(record[i])
            values.append((*record, *tail) if tail else record)
    elif tail:
        values = [(*row, *tail) for row in rows]
    else:
        values = rows
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    names = ", ".join(quote(f.column) for f in fields + [f for f, _sql in literals])
    if not sqlite:
        types = _binary_types(fields, values)
        if types is None:
            values = _as_text_values(fields, values)
        sql = f"COPY {table} ({names}) FROM STDIN" + (" (FORMAT BINARY)" if types else "")
        checked = checks.prepare(model, fields) if checks is not None else None
        if writer is not None:
            writer.submit(sql, types, values, checked)
            return
        with connection.cursor() as cursor, connection.wrap_database_errors:
            _write_copy(cursor.cursor, sql, types, values, checked)
        return
    with connection.cursor() as cursor:
        _sqlite_insert(cursor, f"INSERT INTO {table} ({names}) VALUES ", len(fields),
                       [sql for _f, sql in literals], values)  # fmt: skip


def _defaulted(model, named) -> list:
    """The concrete fields an INSERT naming ``named`` (attnames) gives their default: all
    others but the primary key and a nullable column whose default is None (left out:
    the database stores NULL; Django keeps defaults in Python, not in the database)."""
    return [
        f for f in model._meta.concrete_fields
        if f.attname not in named and not f.primary_key
        and not (f.null and f.db_default is NOT_PROVIDED and f.get_default() is None)
    ]  # fmt: skip


def whole_rows(model, columns, constants) -> tuple[tuple, tuple]:
    """``columns`` followed by every other column :func:`insert_tuples` would write:
    ``constants``, then the defaults of the columns neither names; and the values those
    add to each row. On PostgreSQL, where COPY sends every value of every row anyway, a
    caller that builds its rows whole saves insert_tuples a second tuple per row with
    the constants appended (1,000,000 leads and their events: ~2 s of CPU); SQLite
    writes constants into the statement instead."""
    extra = dict(constants)
    for f in _defaulted(model, set(columns) | set(extra)):
        extra[f.attname] = f.get_default()
    return tuple(columns) + tuple(extra), tuple(extra.values())


# PostgreSQL COPY in binary: the column types it takes (their type oids), and for each the
# Python types whose binary form stores what the text form stores (None fits any column).
# A column of another type, or a value of another Python type (a float for a decimal, a
# text for a number, a naive datetime...), and the call's rows go as text as before: the
# binary format would refuse them, or read them differently.
def _is_int(kind):
    return issubclass(kind, int) and not issubclass(kind, bool)


# The range of each integer type: binary COPY writes the low bytes of a larger value
# (2**31 into an integer column is stored as -2**31) where the text form is refused.
_INT_RANGE = {20: 2**63, 23: 2**31, 21: 2**15}

_BINARY = {
    "bigint": (20, _is_int),
    "integer": (23, _is_int),
    "smallint": (21, _is_int),
    "boolean": (16, lambda kind: kind is bool),
    "text": (25, lambda kind: issubclass(kind, str)),
    "varchar": (1043, lambda kind: issubclass(kind, str)),
    "numeric": (1700, lambda kind: issubclass(kind, Decimal) or _is_int(kind) or kind is bytes),
    "date": (1082, lambda kind: issubclass(kind, date) and not issubclass(kind, datetime)),
    "timestamp with time zone": (1184, lambda kind: issubclass(kind, datetime) or kind is int),
    "jsonb": (3802, lambda kind: issubclass(kind, _jsonb_type())),
}


def _jsonb_type():
    from psycopg.types.json import Jsonb  # what Django's PostgreSQL backend adapts JSON to

    return Jsonb


_COLUMN_TYPES: dict = {}


def _column_type(field):
    """``field``'s PostgreSQL type as (oid, accepts(python type)), or None."""
    kind = _COLUMN_TYPES.get(field)
    if kind is None:
        name = (field.db_type(connection) or "").split("(", 1)[0].strip()
        kind = _COLUMN_TYPES[field] = _BINARY.get(name, False)
    return kind or None


def _binary_types(fields, values) -> list[int] | None:
    """The type oids of ``fields`` for a binary COPY of ``values`` (rows in that column
    order), or None when a column or a value does not fit it (see ``_BINARY``). Binary
    COPY costs the client a sixth of the text form's formatting and the server less
    parsing (200,000 lead rows: 1.4 → 0.23 s of client CPU). The check reads each
    column's distinct Python types, not each value, and runs no Python per value: a
    datetime must be aware (its time zone a ``timezone`` or ``ZoneInfo``, whose offset
    is never None; any other is asked per value), an integer within its column's range
    (1,000,000 lead rows: 2.6 → 1.4 s). A timestamp column holding microseconds (ints)
    is given as ``_MOMENTS``, not its oid, and a numeric column holding its values'
    binary form (bytes, :func:`numeric_bytes`) as ``_NUMERIC_BYTES`` (see there)."""
    kinds = [_column_type(f) for f in fields]
    if None in kinds:
        return None
    oids = [oid for oid, _accepts in kinds]
    for i, (oid, accepts) in enumerate(kinds):
        picked = map(itemgetter(i), values)
        checked = oid == 1184 or oid in _INT_RANGE  # their values are looked at too
        column = list(picked) if checked else None
        seen = set(map(type, column if checked else picked))
        nulls = _NONE in seen
        seen.discard(_NONE)
        if not all(map(accepts, seen)):
            return None
        if oid == 1700 and bytes in seen:  # their binary form (all of the column's, or none)
            if seen != {bytes}:
                return None
            oids[i] = _NUMERIC_BYTES
            continue
        if not (checked and seen):
            continue
        present = list(filter(_NOT_NONE, column)) if nulls else column
        if oid == 1184 and int in seen:  # microseconds (all of the column's, or none)
            if seen != {int} or min(present) < _MICROS_MIN or max(present) > _MICROS_MAX:
                return None
            oids[i] = _MOMENTS
        elif oid == 1184:
            zones = set(map(_TZINFO, present))
            if None in zones:
                return None
            if not all(isinstance(zone, _FIXED_ZONES) for zone in zones) and any(
                value.utcoffset() is None for value in present
            ):
                return None
        else:
            bound = _INT_RANGE[oid]
            if min(present) < -bound or max(present) >= bound:  # the server refuses it as text
                return None
    return oids


def _as_text_values(fields, values):
    """``values`` as a text COPY takes them (the rare call whose rows cannot go in
    binary): a timestamp column's microseconds (ints) as aware datetimes, a numeric
    column's binary forms (bytes) as Decimals."""
    moments = [i for i, f in enumerate(fields) if f.get_internal_type() == "DateTimeField"]
    numbers = [i for i, f in enumerate(fields) if f.get_internal_type() == "DecimalField"]
    columns = [(i, int) for i in moments] + [(i, bytes) for i in numbers]
    if not any(type(row[i]) is kind for row in values for i, kind in columns):
        return values
    load = _numeric_loader()
    out = []
    for row in values:
        row = list(row)
        for i, kind in columns:
            if type(row[i]) is kind:
                row[i] = EPOCH + row[i] * ONE_MICRO if kind is int else load(row[i])
        out.append(row)
    return out


@cache
def _numeric_loader():
    from psycopg import adapters, pq

    return adapters.get_loader(1700, pq.Format.BINARY)(1700).load


def numeric_bytes():
    """The function that turns a Decimal into the binary form of a PostgreSQL numeric
    (psycopg's own encoding; each distinct value once per function), for
    :func:`insert_tuples` to COPY as it is (``_NUMERIC_BYTES``). A load prepared in
    another process (the deal import's) encodes each amount once there: the importer
    then unpickles bytes, not Decimals (~3 µs per Decimal for pickle's round trip,
    against a tenth of it), and the COPY copies them without a Python call per value."""
    from psycopg import adapters, pq

    dump = adapters.get_dumper_by_oid(1700, pq.Format.BINARY)(Decimal).dump
    done: dict = {}  # value → its bytes: a deal's history repeats its amount

    def encode(value) -> bytes:
        data = done.get(value)
        if data is None:
            if len(done) > 100_000:  # bounded: memory stays flat
                done.clear()
            data = done[value] = bytes(dump(value))
        return data

    return encode


_NONE = type(None)
_NOT_NONE = partial(is_not, None)
_TZINFO = attrgetter("tzinfo")
_FIXED_ZONES = (timezone, ZoneInfo)  # their utcoffset() of an aware datetime is never None
# The types whose values a binary COPY encodes once per distinct object (_memo_dumper).
_MEMO_OIDS = (1700, 3802)  # numeric, jsonb
# A timestamp column whose values are whole microseconds since the epoch (ints, what the
# deal import carries its moments as: bulk.micros_param), in _binary_types' answer: the
# COPY writes them as the binary format's own integer (microseconds since 2000), with no
# datetime made per value — 500,000 of them in a 100,000-deal import, made in the
# preparing process and pickled to the importer (~1.5 s of its CPU). Not a type oid:
# _copy puts 1184 back and the moments' dumper in place.
_MOMENTS = -1184
# A numeric column whose values are their binary form already (bytes, numeric_bytes):
# the COPY dumps the column as bytea — what the bytes dumper, in C, writes is the bytes
# themselves; binary COPY sends no type, and the server reads the field as the column's
# numeric. psycopg's numeric dumper (~2.5 µs a Decimal) or the memo's Python call per
# value (~1.4 µs; a 100,000-deal import COPYs a million numbers) then runs nowhere here.
_NUMERIC_BYTES = 17
_PG_EPOCH = (datetime(2000, 1, 1, tzinfo=UTC) - EPOCH) // ONE_MICRO  # the format's zero
# The microseconds a datetime can be (years 1 to 9999): others go as text, and fail there.
_MICROS_MIN = (datetime(1, 1, 1, tzinfo=UTC) - EPOCH) // ONE_MICRO
_MICROS_MAX = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - EPOCH) // ONE_MICRO


class _Memo:
    """The key under which a COPY cursor's memoizing dumpers are registered (they are
    looked up by oid: no value is ever of this type)."""


@cache
def _memo_dumper(oid: int):
    """A psycopg binary dumper for the columns of type ``oid`` that encodes each distinct
    object of one COPY once, through psycopg's own dumper of that type. A load repeats
    the same objects: a deal's amount in each of its history rows, a stage's
    probability, a constant JSON default in every row. psycopg's numeric dumper takes
    ~2 µs per Decimal (a 100,000-deal import writes a million of them), its JSON dumper
    ~10 µs per value; a remembered one ~0.3 µs. The memo lives as long as the COPY's
    dumper (one per COPY), and keeps each object it saw, so that no id is reused."""
    from psycopg import adapters, pq
    from psycopg.adapt import Dumper

    base = adapters.get_dumper_by_oid(oid, pq.Format.BINARY)

    class Memoized(Dumper):
        format = pq.Format.BINARY

        def __init__(self, cls, context=None):
            super().__init__(cls, context)
            self._encode = base(cls, context).dump
            self._memo: dict[int, tuple] = {}

        def dump(self, obj):
            done = self._memo.get(id(obj))
            if done is None:
                done = self._memo[id(obj)] = (self._encode(obj), obj)
            return done[0]

    Memoized.oid = oid
    return Memoized


@cache
def _moments_dumper():
    """A psycopg binary dumper for a timestamptz column of whole microseconds since the
    epoch (ints): the binary format's own integer, microseconds since 2000. Only such
    columns get it (``_binary_types`` marks a column ``_MOMENTS`` when all its values are
    ints; a column mixing datetimes goes as text)."""
    from psycopg import pq
    from psycopg.adapt import Dumper

    pack = struct.Struct(">q").pack

    class Moments(Dumper):
        format = pq.Format.BINARY
        oid = 1184

        def dump(self, obj):
            return pack(obj - _PG_EPOCH)

    return Moments


def _copy(cursor, sql: str, types, values) -> None:
    if types:  # on this cursor only: the connection's other statements dump as before
        for oid in _MEMO_OIDS:
            if oid in types:
                cursor.adapters.register_dumper(_Memo, _memo_dumper(oid))
        if _MOMENTS in types:
            cursor.adapters.register_dumper(_Memo, _moments_dumper())
            types = [1184 if oid == _MOMENTS else oid for oid in types]
    with cursor.copy(sql) as copy:
        if types:
            copy.set_types(types)
        for record in values:
            copy.write_row(record)


def _fetch_all(cursor, statements) -> list[list]:
    out = []
    for statement in statements:
        if statement is None:
            out.append([])
            continue
        cursor.execute(*statement)
        out.append(cursor.fetchall())
    return out


def _write_copy(cursor, sql: str, types, values, checked) -> None:
    """The COPY of ``values`` on the driver's ``cursor``; with ``checked`` (a
    :meth:`ForeignKeyChecks.prepare` answer), its foreign keys checked per batch and the
    COPY run without triggers."""
    if checked is None:
        _copy(cursor, sql, types, values)
    else:
        checked.run(cursor, values, lambda: _copy(cursor, sql, types, values))


class CopyWriter:
    """Runs the COPYs of a PostgreSQL bulk load in a second thread, on the same connection
    and so in the same transaction, while the caller reads and checks the next batch:
    the server inserts (and checks) one batch while the client parses the next — two
    cores instead of one after the other. psycopg connections are thread-safe (each
    statement holds the connection's lock) and wait for the server without the GIL.

    One COPY at a time, in the order submitted. :meth:`wait` returns when the last one has
    ended and raises its error (as Django's database error); call it before any
    statement that must see the rows (a duplicate lookup, ANALYZE) and before the
    transaction ends (:meth:`close`). Only inside one transaction (``atomic``): a batch
    committed on its own must not end before its rows are in.

    Started, it sets the transaction's deferrable constraints (Django's foreign keys)
    IMMEDIATE: each COPY's rows are checked when it ends, in this thread, beside the
    parsing of the next batch, instead of all at COMMIT in the caller's time — rows are
    always written after the rows they point to, so the answer is the same. :meth:`close`
    sets them back to DEFERRED, as Django declares them (INITIALLY DEFERRED), for the
    rest of an enclosing transaction.

    While it runs, the interpreter's thread switch interval is short (SWITCH_INTERVAL): the
    writer needs the GIL for a moment per row it formats, and with Python's default 5 ms
    it waited behind the caller's parsing, the COPY stalling on the server (a 100,000-deal
    import: 38.7 → 34.2 s). Set back by :meth:`close`."""

    SWITCH_INTERVAL = 0.0002

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        connection.ensure_connection()
        self._raw = connection.connection
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="copy-writer")
        self._pending: list = []
        self._failed = False
        # A COPY with ForeignKeyChecks is several statements (checks, replica mode on,
        # COPY, back to origin): the caller's statements (through Django's cursor) wait
        # until the whole of it is done, never run in its replica window unchecked.
        self._window = threading.Lock()
        connection.execute_wrappers.append(self._outside_window)
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(self.SWITCH_INTERVAL)

    def _outside_window(self, execute, sql, params, many, context):
        with self._window:
            return execute(sql, params, many, context)

    def submit(self, sql: str, types, values, checked=None) -> None:
        self._pending.append(self._pool.submit(self._run, sql, types, values, checked))

    def submit_queries(self, statements):
        """Run ``statements`` ((sql, params), or None for none) in the writer's thread,
        after the COPYs handed to it so far: a future of each one's rows (``[]`` for a
        None). A failure fails the load as a COPY's does. (The lead import asks for a
        batch's duplicate lookups and ids this way, one batch ahead.)"""
        return self._pool.submit(self._guarded, _fetch_all, statements)

    def _run(self, sql, types, values, checked) -> None:
        self._guarded(_write_copy, sql, types, values, checked)

    def _guarded(self, work, *args):
        """``work(cursor, *args)`` on the writer's connection, in its window; nothing
        once an earlier piece of the load failed, and a failure stops what follows."""
        if self._failed:  # an earlier COPY failed: the load is lost, write nothing more
            raise DatabaseError("not run: an earlier COPY of this load failed")
        try:
            with self._window, self._raw.cursor() as cursor:
                return work(cursor, *args)
        except BaseException:
            self._failed = True
            raise

    def wait(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            with connection.wrap_database_errors:
                future.result()

    def close(self, *, failed: bool = False) -> None:
        """Wait for the last COPY and stop the thread; ``failed``: the load is ending on
        an error already (the transaction rolls back), so a COPY's own error is dropped."""
        if failed:  # the COPYs not yet started are not run (the transaction is lost)
            self._failed = True
        try:
            self.wait()
        except Exception:
            if not failed:
                raise
        else:
            if not failed:  # back to Django's own (every foreign key INITIALLY DEFERRED)
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        finally:
            self._pool.shutdown()
            sys.setswitchinterval(self._switch_interval)
            if self._outside_window in connection.execute_wrappers:
                connection.execute_wrappers.remove(self._outside_window)


_INTEGER_KEYS = {"AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField"}


class ForeignKeyChecks:
    """PostgreSQL: the foreign keys of bulk-loaded rows checked once per batch instead of
    once per row (see docs/import.md, "Foreign keys checked per batch").

    A foreign key is a pair of triggers: for each inserted row, one runs
    ``SELECT 1 FROM ONLY <referenced table> x WHERE <key> = $1 FOR KEY SHARE OF x`` (and
    raises ForeignKeyViolation when nothing is found) — also for a NULL key, which it then
    lets pass. A million imported leads and their pool events fired 15 million of them: over
    half the import's server time. Here, for each COPY (:func:`insert_tuples` with
    ``checks=``), every foreign-key column of the model (from its ``_meta``: a new key is
    covered without a change here) has its distinct non-NULL values of the batch looked up
    and locked the same way, one statement per column and batch
    (``… WHERE <key> = ANY(%s) FOR KEY SHARE OF x``); a value not found raises the error the
    trigger raises, before a row is written. The lookups and the COPY run with
    ``session_replication_role = replica`` (set locally: no trigger fires) and the
    setting is put back to ``origin`` right after the COPY, so every other statement of
    the transaction is checked by its triggers as before (with a :class:`CopyWriter`, the
    caller's statements wait until it is back).

    Left out of the lookups: the primary keys of the rows these COPYs wrote in the same
    transaction (no other transaction can see, so delete, them before COMMIT; the caller
    does not delete them itself) — a batch's pool events point at the leads the COPY
    before wrote, a deal's history at its deal. A new transaction (another server
    transaction id) or the end of a savepoint they were written in forgets them.

    Taken only where it is as safe as the triggers: on PostgreSQL, inside a transaction,
    when the database role may set ``session_replication_role`` (a superuser, or on
    PostgreSQL 15+ ``GRANT SET ON PARAMETER session_replication_role TO <role>``; tried
    once in a savepoint), and for a table whose only INSERT triggers are the foreign-key
    checks of the model's own keys — a trigger or a deferrable unique constraint (a
    trigger too) added to the table later makes its COPYs take the triggers' path again.
    Elsewhere :meth:`prepare` answers None and the COPY runs as before."""

    # Id ranges remembered per table; past this, forgotten (memory stays flat).
    MEMO_LIMIT = 100_000

    def __init__(self):
        self._permitted: bool | None = None
        self._plans: dict = {}  # model → its foreign keys, or None (not eligible)
        self._xid = None
        self._memo: dict = {}  # savepoint tag → {(table, pk column): id ranges written}
        self._lock = threading.Lock()  # the writer's thread and the caller's
        self.fast = 0  # COPYs written this way
        self.fast_tables: dict[str, int] = {}  # table → its COPYs written this way
        self.checked = 0  # values looked up and locked

    @property
    def permitted(self) -> bool:
        """Whether the database role may set session_replication_role (asked once, inside
        a transaction, in a savepoint that takes the setting back)."""
        if self._permitted is None:
            self._permitted = self._detect()
        return self._permitted

    def _detect(self) -> bool:
        from psycopg.errors import InsufficientPrivilege

        sid = connection.savepoint()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('session_replication_role')")
                if cursor.fetchone()[0] != "origin":  # set otherwise on purpose: keep out
                    return False
                cursor.execute("SET LOCAL session_replication_role = replica")
        except DatabaseError as error:
            if isinstance(error.__cause__, InsufficientPrivilege):
                return False
            raise
        finally:
            connection.savepoint_rollback(sid)  # the SET with it
            connection.savepoint_commit(sid)
        return True

    def prepare(self, model, fields):
        """What :func:`_write_copy` needs to check a COPY of ``fields`` (in that column
        order) of ``model`` itself and run it without triggers, or None: the triggers'
        path (not PostgreSQL, no transaction, not permitted, the table not eligible)."""
        if connection.vendor != "postgresql" or not connection.in_atomic_block:
            return None
        if not self.permitted:
            return None
        plan = self._plans.get(model, False)
        if plan is False:
            plan = self._plans[model] = self._plan(model)
        if plan is None:
            return None
        position = {f.attname: i for i, f in enumerate(fields)}
        columns = []
        for key in plan["keys"]:
            i = position.get(key["attname"])
            if i is None:
                if key["db_default"]:  # the database fills it in: not ours to check
                    return None
                continue  # left out: NULL
            columns.append((i, key))
        pk = position.get(model._meta.pk.attname)
        if model._meta.pk.get_internal_type() not in _INTEGER_KEYS:
            pk = None  # written ids remembered as integer ranges only
        return _CheckedCopy(self, columns, pk, plan, tuple(connection.savepoint_ids))

    def _plan(self, model) -> dict | None:
        """``model``'s foreign keys (column, referenced table and column, the check
        statement, the constraint's name), or None when its table has an INSERT trigger
        that replica mode would skip other than the checks of those very keys."""
        meta = model._meta
        quote = connection.ops.quote_name
        keys = []
        for f in meta.concrete_fields:
            if not (f.is_relation and (f.many_to_one or f.one_to_one) and f.db_constraint):
                continue
            target = f.target_field
            table, column = target.model._meta.db_table, target.column
            kind = target.rel_db_type(connection).split("(", 1)[0]
            keys.append({
                "attname": f.attname, "column": f.column, "target": (table, column),
                "db_default": f.db_default is not NOT_PROVIDED,
                "sql": f"SELECT {quote(column)} FROM ONLY {quote(table)} x "
                       f"WHERE {quote(column)} = ANY(%s::{kind}[]) FOR KEY SHARE OF x",
            })  # fmt: skip
        with connection.cursor() as cursor:
            # Every trigger that fires on INSERT and is not ALWAYS (those fire in replica
            # mode too); for a foreign-key check, its one column and what it points to.
            cursor.execute(
                "SELECT t.tgenabled = 'O' AND t.tgfoid = '\"RI_FKey_check_ins\"'::regproc "
                "AND c.contype = 'f' AND cardinality(c.conkey) = 1, c.conname, a.attname, "
                "c.confrelid::regclass::text, fa.attname "
                "FROM pg_trigger t "
                "LEFT JOIN pg_constraint c ON c.oid = t.tgconstraint "
                "LEFT JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
                "LEFT JOIN pg_attribute fa "
                "ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1] "
                "WHERE t.tgrelid = %s::regclass AND t.tgtype & 4 <> 0 "
                "AND t.tgenabled NOT IN ('D', 'A')",
                [quote(meta.db_table)],
            )
            triggers = cursor.fetchall()
            cursor.execute("SELECT t, t::regclass::text FROM unnest(%s::text[]) AS t",
                           [sorted({quote(key["target"][0]) for key in keys})])  # fmt: skip
            shown = dict(cursor.fetchall())  # "table" → as pg_constraint's regclass shows it
        by_column = {key["column"]: key for key in keys}
        for is_key_check, name, column, ref_table, ref_column in triggers:
            key = by_column.get(column)
            if (
                not is_key_check
                or key is None
                or (ref_table, ref_column) != (shown[quote(key["target"][0])], key["target"][1])
            ):
                return None
            key["constraint"] = name
        for key in keys:  # a key the database does not declare: checked all the same
            key.setdefault("constraint", f"{meta.db_table}_{key['column']}_fk")
        return {"keys": keys, "self": (meta.db_table, meta.pk.column), "table": meta.db_table}

    def _known(self, xid, tag) -> list:
        """The id ranges remembered that hold at savepoint ``tag`` of transaction ``xid``."""
        if xid != self._xid:
            self._xid, self._memo = xid, {}
        for old in [t for t in self._memo if t != tag[: len(t)]]:
            del self._memo[old]  # its savepoint is gone (rolled back or released)
        return list(self._memo.values())

    def _written(self, tag, target, ids) -> None:
        ranges = self._memo.setdefault(tag, {}).setdefault(target, [])
        if len(ranges) > self.MEMO_LIMIT:
            ranges.clear()
        _merge_ranges(ranges, ids)


class _CheckedCopy:
    """One COPY's foreign-key checks (ForeignKeyChecks.prepare), run where the COPY runs."""

    def __init__(self, checks, columns, pk, plan, tag):
        self.checks, self.columns, self.pk, self.tag = checks, columns, pk, tag
        self.target, self.table = plan["self"], plan["table"]

    def run(self, cursor, values, copy) -> None:
        from psycopg.pq import TransactionStatus

        checks = self.checks
        with checks._lock:
            # The transaction's id (are the rows remembered as written still ours?) and
            # replica mode on, in one round trip: the lookups below are SELECTs, which no
            # trigger concerns; the setting is back to origin when this ends, error or not.
            cursor.execute("SELECT pg_current_xact_id()::text, "
                           "set_config('session_replication_role', 'replica', true)")  # fmt: skip
            try:
                known = checks._known(cursor.fetchone()[0], self.tag)
                self._check(cursor, values, known)
                copy()
            finally:
                if cursor.connection.info.transaction_status == TransactionStatus.INTRANS:
                    cursor.execute("SET LOCAL session_replication_role = origin")
            checks.fast += 1
            checks.fast_tables[self.table] = checks.fast_tables.get(self.table, 0) + 1
            if self.pk is not None:
                checks._written(self.tag, self.target, map(itemgetter(self.pk), values))

    def _check(self, cursor, values, known) -> None:
        """Look up and lock (FOR KEY SHARE) each key column's distinct values not
        remembered as written; raise the trigger's error for a value not found."""
        from psycopg.errors import ForeignKeyViolation

        checks = self.checks
        for i, key in self.columns:
            target = key["target"]
            wanted = set(map(itemgetter(i), values))
            wanted.discard(None)
            for memo in known:
                ranges = memo.get(target)
                if ranges and wanted:
                    at = _range_of(ranges, min(wanted))
                    if at >= 0 and at == _range_of(ranges, max(wanted)):
                        wanted = set()  # all in one range (a batch's own leads)
                    else:
                        wanted = {v for v in wanted if not _in_ranges(ranges, v)}
            if not wanted:
                continue
            cursor.execute(key["sql"], [sorted(wanted)])
            found = {row[0] for row in cursor.fetchall()}
            checks.checked += len(wanted)
            missing = wanted - found
            if missing:
                value = next(row[i] for row in values if row[i] in missing)
                raise ForeignKeyViolation(
                    f'insert or update on table "{self.table}" violates '
                    f'foreign key constraint "{key["constraint"]}"\n'
                    f"DETAIL:  Key ({key['column']})=({value}) is not present in table "
                    f'"{target[0]}".'
                )


def _merge_ranges(ranges: list, ids) -> None:
    """Add ``ids`` to ``ranges`` (sorted, disjoint inclusive [first, last] lists). A
    batch's ids come from a sequence: usually one run, after the last range."""
    ids = sorted(set(ids))
    if not ids:
        return
    if ids[-1] - ids[0] + 1 == len(ids):
        runs = [[ids[0], ids[-1]]]
    else:
        runs, start = [], ids[0]
        for before, pk in zip(ids, ids[1:], strict=False):
            if pk != before + 1:
                runs.append([start, before])
                start = pk
        runs.append([start, ids[-1]])
    if not ranges or runs[0][0] > ranges[-1][1] + 1:
        ranges.extend(runs)
        return
    ranges.extend(runs)
    ranges.sort()
    merged = [ranges[0]]
    for first, last in ranges[1:]:
        if first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    ranges[:] = merged


INF = float("inf")


def _range_of(ranges, pk) -> int:
    """The index of the range of ``ranges`` that holds ``pk``, or -1."""
    i = bisect_right(ranges, [pk, INF]) - 1
    return i if i >= 0 and ranges[i][0] <= pk <= ranges[i][1] else -1


def _in_ranges(ranges, pk) -> bool:
    return _range_of(ranges, pk) >= 0


# Rows per multi-row INSERT on SQLite: past a few hundred values per statement the
# per-statement work no longer shows (measured: 4 columns, 50 rows 0.68 s, 200 rows
# 0.60 s per 400,000 rows, against 1.9 s one row per statement).
SQLITE_VALUES_PER_STATEMENT = 2_000


def _sqlite_insert(cursor, head: str, width: int, literals: list[str], values) -> None:
    """Run ``head`` + ``(?, …, literals…), (…)…`` over ``values`` (sequences of
    ``width`` parameters), many rows to a statement. The statements are written with
    SQLite's own ``?`` marks and run on the driver's cursor (Django's errors still):
    rewriting thousands of ``%s`` per statement cost as much as a tenth of the INSERT."""
    marks = ", ".join(["?"] * width + literals)
    row_sql = f"({marks})"
    per = max(1, min(len(values), SQLITE_VALUES_PER_STATEMENT // max(width, 1)))
    limit = _sqlite_max_params()
    if width * per > limit:
        per = max(1, limit // max(width, 1))
    flat = list(chain.from_iterable(values))
    step = per * width
    full = len(values) // per
    if full:
        sql = head + ", ".join([row_sql] * per)
        chunks = [flat[i : i + step] for i in range(0, full * step, step)]
        with connection.wrap_database_errors:
            if len(chunks) == 1:
                sqlite3.Cursor.execute(cursor.cursor, sql, chunks[0])
            else:
                sqlite3.Cursor.executemany(cursor.cursor, sql, chunks)
    rest = len(values) - full * per
    if rest:
        with connection.wrap_database_errors:
            sqlite3.Cursor.execute(cursor.cursor, head + ", ".join([row_sql] * rest),
                                   flat[full * step :])  # fmt: skip


def _sqlite_max_params() -> int:
    """The most host parameters one SQLite statement may take (999 before 3.32)."""
    raw = connection.connection
    try:
        return raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except AttributeError:  # Python < 3.11
        return 999


def _sql_literal(value) -> str | None:
    """``value`` (a database parameter) as an SQLite literal that stores exactly what
    binding it stores, or None when it is not one of the plain kinds (it stays bound)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):  # IntegerChoices too
        return str(int(value))
    if isinstance(value, str) and "\x00" not in value:  # TextChoices: their value
        return "'" + str.replace(value, "'", "''") + "'"
    return None
