"""Database expressions that give the same exact answer on SQLite and PostgreSQL, and the
bulk-write fast path (many-row INSERTs, id allocation) shared by imports and the test-data
generator."""

import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import chain
from operator import itemgetter

from django.conf import settings
from django.db import connection
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


def insert_rows(model, rows: list[dict]) -> None:
    """INSERT ``rows`` (dicts of attnames) in one statement batch: one executemany on
    SQLite, COPY on PostgreSQL (the ORM's bulk_create spends most of its time building
    model instances). A column a row leaves out gets the field's default; if the first
    row has no primary key, the database assigns them all. Builds the tuples
    :func:`insert_tuples` writes (each distinct datetime adapted once)."""
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
    insert_tuples(model, names, values, adapted=names)


# (table, pk column) → the name of the sequence behind it (PostgreSQL); the same in every
# database of a schema.
_SEQUENCES: dict[tuple[str, str], str] = {}


def allocate_ids(model, count: int) -> list[int]:
    """``count`` fresh primary keys for ``model``; call inside the write transaction."""
    if count <= 0:
        return []
    table = model._meta.db_table
    column = model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sequence = _SEQUENCES.get((table, column))
            if sequence is None:
                cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
                sequence = _SEQUENCES[table, column] = cursor.fetchone()[0]
            # The sequence named once, not pg_get_serial_sequence per row: that catalog
            # lookup made 2,000 ids cost 34 ms of server time instead of 4.
            cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
                           [sequence, count])  # fmt: skip
            return [row[0] for row in cursor.fetchall()]
        quote = connection.ops.quote_name
        cursor.execute(f"SELECT MAX({quote(column)}) FROM {quote(table)}")
        top = cursor.fetchone()[0] or 0
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
        start = max(top, row[0] if row else 0) + 1
    return list(range(start, start + count))


def datetime_param():
    """The function that turns an aware datetime into what :func:`insert_tuples` passes
    to the database for a DateTimeField (SQLite: naive UTC text, as Django stores it;
    PostgreSQL: the datetime itself). A caller building many rows takes it once and
    adapts each value once, where it makes the value."""
    if connection.vendor == "sqlite" and settings.USE_TZ:
        return _sqlite_datetime
    return connection.ops.adapt_datetimefield_value


def insert_tuples(model, columns, rows, *, adapted=(), constants=None, writer=None) -> None:
    """INSERT ``rows`` given as tuples of the values of ``columns`` (attnames), in that
    order — the path :func:`insert_rows` takes too; called directly for loads of many
    rows: no dict per row, no per-value lookups. A concrete field ``columns`` leaves out
    gets its default (one value for the whole call; the primary key, when left out, is
    assigned by the database). ``constants``: attname → the one value every row has in
    that column (the caller's "now", the actor, a text column the file lacks), given once
    instead of in each tuple. ``adapted``: the columns (of ``columns`` or ``constants``)
    whose values the caller already turned into database parameters (datetimes through
    :func:`datetime_param`); the other date, datetime and JSON columns are adapted here.

    On SQLite the constant values (and the defaults) are written into the statement as
    SQL literals, and the rows go many to a statement (``INSERT … VALUES (…), (…), …``):
    SQLite then binds only the values that differ, and runs one statement (one update of
    the table's AUTOINCREMENT counter) per few hundred rows instead of one per row. On
    PostgreSQL the rows are COPYed (in binary when their types allow, see
    ``_binary_types``); with a :class:`CopyWriter` as ``writer``, in its thread: the call
    returns at once and ``rows`` must not change until ``writer.wait()``."""
    if not rows:
        return
    meta = model._meta
    by_attname = {f.attname: f for f in meta.concrete_fields}
    given = [by_attname.get(name) or meta.get_field(name) for name in columns]
    constants = dict(constants or {})
    named = set(columns) | set(constants)
    missing = [
        f
        for f in meta.concrete_fields
        if f.attname not in named
        and not f.primary_key
        # a nullable column whose default is None is left out of the INSERT: the
        # database stores NULL (no DB default: Django keeps defaults in Python)
        and not (f.null and f.db_default is NOT_PROVIDED and f.get_default() is None)
    ]
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
        sql = f"COPY {table} ({names}) FROM STDIN" + (" (FORMAT BINARY)" if types else "")
        if writer is not None:
            writer.submit(sql, types, values)
            return
        with connection.cursor() as cursor:
            _copy(cursor.cursor, sql, types, values)
        return
    with connection.cursor() as cursor:
        _sqlite_insert(cursor, f"INSERT INTO {table} ({names}) VALUES ", len(fields),
                       [sql for _f, sql in literals], values)  # fmt: skip


# PostgreSQL COPY in binary: the column types it takes (their type oids), and for each the
# Python types whose binary form stores what the text form stores (None fits any column).
# A column of another type, or a value of another Python type (a float for a decimal, a
# text for a number, a naive datetime...), and the call's rows go as text as before: the
# binary format would refuse them, or read them differently.
def _is_int(kind):
    return issubclass(kind, int) and not issubclass(kind, bool)


_BINARY = {
    "bigint": (20, _is_int),
    "integer": (23, _is_int),
    "smallint": (21, _is_int),
    "boolean": (16, lambda kind: kind is bool),
    "text": (25, lambda kind: issubclass(kind, str)),
    "varchar": (1043, lambda kind: issubclass(kind, str)),
    "numeric": (1700, lambda kind: issubclass(kind, Decimal) or _is_int(kind)),
    "date": (1082, lambda kind: issubclass(kind, date) and not issubclass(kind, datetime)),
    "timestamp with time zone": (1184, lambda kind: issubclass(kind, datetime)),
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
    parsing (200,000 lead rows: 1.4 → 0.23 s of client CPU); the check reads each
    column's distinct Python types, not each value (datetimes: each must be aware)."""
    kinds = [_column_type(f) for f in fields]
    if None in kinds:
        return None
    none = type(None)
    for i, (oid, accepts) in enumerate(kinds):
        seen = set(map(type, map(itemgetter(i), values)))
        seen.discard(none)
        if not all(map(accepts, seen)):
            return None
        if oid == 1184 and seen:
            if any(v is not None and v.utcoffset() is None for v in map(itemgetter(i), values)):
                return None
    return [oid for oid, _accepts in kinds]


def _copy(cursor, sql: str, types, values) -> None:
    with cursor.copy(sql) as copy:
        if types:
            copy.set_types(types)
        for record in values:
            copy.write_row(record)


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
    rest of an enclosing transaction."""

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        connection.ensure_connection()
        self._raw = connection.connection
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="copy-writer")
        self._pending: list = []

    def submit(self, sql: str, types, values) -> None:
        self._pending.append(self._pool.submit(self._run, sql, types, values))

    def _run(self, sql, types, values) -> None:
        with self._raw.cursor() as cursor:
            _copy(cursor, sql, types, values)

    def wait(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            with connection.wrap_database_errors:
                future.result()

    def close(self, *, failed: bool = False) -> None:
        """Wait for the last COPY and stop the thread; ``failed``: the load is ending on
        an error already (the transaction rolls back), so a COPY's own error is dropped."""
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
