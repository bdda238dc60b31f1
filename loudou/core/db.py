"""Database expressions that give the same exact answer on SQLite and PostgreSQL."""

from django.db.models import BigIntegerField, Func


class Cents(Func):
    """A money column as whole cents (an integer), so that SUM is exact on SQLite too,
    where decimals are stored as floating point. PostgreSQL's numeric is exact anyway;
    the cast makes both return the same type."""

    template = "CAST(ROUND(%(expressions)s * 100) AS BIGINT)"
    output_field = BigIntegerField()
