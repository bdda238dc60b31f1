"""Database expressions that give the same exact answer on SQLite and PostgreSQL, and the
bulk-write fast path (many-row INSERTs, id allocation) shared by imports and the test-data
generator."""

from datetime import UTC

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


def datetime_param():
    """The function that turns an aware datetime into what :func:`insert_tuples` passes
    to the database for a DateTimeField (SQLite: naive UTC text, as Django stores it;
    PostgreSQL: the datetime itself). A caller building many rows takes it once and
    adapts each value once, where it makes the value."""
    if connection.vendor == "sqlite" and settings.USE_TZ:
        return _sqlite_datetime
    return connection.ops.adapt_datetimefield_value


def insert_tuples(model, columns, rows, *, adapted=()) -> None:
    """INSERT ``rows`` given as tuples of the values of ``columns`` (attnames), in that
    order — the path :func:`insert_rows` takes too; called directly for loads of many
    rows: no dict per row, no per-value lookups. A concrete field ``columns`` leaves out
    gets its default (one value for the whole call; the primary key, when left out, is
    assigned by the database). ``adapted``: the columns whose values the caller already turned into
    database parameters (datetimes through :func:`datetime_param`); the other date,
    datetime and JSON columns are adapted here."""
    if not rows:
        return
    meta = model._meta
    by_attname = {f.attname: f for f in meta.concrete_fields}
    given = [by_attname.get(name) or meta.get_field(name) for name in columns]
    named = set(columns)
    missing = [
        f
        for f in meta.concrete_fields
        if f.attname not in named
        and not f.primary_key
        # a nullable column whose default is None is left out of the INSERT: the
        # database stores NULL (no DB default: Django keeps defaults in Python)
        and not (f.null and f.db_default is NOT_PROVIDED and f.get_default() is None)
    ]
    fields = given + missing
    todo = [
        (i, adapt)
        for i, (field, adapt) in enumerate(zip(given, map(_adapter, given), strict=True))
        if adapt is not None and field.attname not in adapted
    ]
    # per call: a callable default (timezone.now) must not be frozen
    tail = tuple(
        value if (value := f.get_default()) is None or (adapt := _adapter(f)) is None
        else adapt(value)
        for f in missing
    )  # fmt: skip
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
    names = ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for record in values:
                    copy.write_row(record)
        else:
            marks = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)
