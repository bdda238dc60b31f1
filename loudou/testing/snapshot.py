"""Save the rows of Loudou's own apps to a JSON file and load them back, fast.

Building the demo runs every service (hundreds of opportunities moved through their
stages), which takes many seconds; inserting the same rows again takes a fraction of
that. Tests build the demo once per session and restore it per test:

    with transaction.atomic():
        load_demo()
        save(path)
        transaction.set_rollback(True)
    ...
    restore(path)      # inside a test's database

Only the ``loudou.*`` apps are saved (users, teams, accounts, opportunities, ...), not
Django's own tables (content types, sessions) nor queued tasks.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

from django.apps import apps
from django.core import serializers
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection, models, transaction


def app_labels() -> list[str]:
    return [c.label for c in apps.get_app_configs() if c.name.startswith("loudou.")]


def save(path: str | Path) -> Path:
    """Write every row of the Loudou apps to ``path`` (JSON)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")  # never a half-written snapshot
    call_command("dumpdata", *app_labels(), output=str(partial), verbosity=0)
    partial.replace(path)
    return path


@contextmanager
def _saved_timestamps(rows):
    """Keep the saved ``auto_now``/``auto_now_add`` values: bulk inserts would set them
    to now (``loaddata`` saves "raw" for the same reason)."""
    switched = []
    for model in rows:
        for field in model._meta.concrete_fields:
            flags = {k: getattr(field, k, False) for k in ("auto_now", "auto_now_add")}
            if any(flags.values()):
                switched.append((field, flags))
                field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, flags in switched:
            field.auto_now, field.auto_now_add = flags["auto_now"], flags["auto_now_add"]


def restore(path: str | Path) -> None:
    """Insert the rows written by :func:`save`, in one transaction, and reset the
    sequences so that new rows get fresh ids.

    Like ``loaddata`` but with one bulk INSERT per table instead of one per row (ten
    times faster on the demo); foreign keys are checked at commit (Django declares them
    deferrable), so the order of the tables does not matter. On PostgreSQL the tables
    are then ANALYZEd (rows of the current transaction count): with the statistics of
    empty tables the planner picks plans that take seconds instead of milliseconds."""
    rows: dict[type[models.Model], list[models.Model]] = defaultdict(list)
    links: dict[type[models.Model], list[models.Model]] = defaultdict(list)
    with open(path, encoding="utf-8") as stream:
        for item in serializers.deserialize("json", stream, handle_forward_references=True):
            obj = item.object
            rows[type(obj)].append(obj)
            for name, targets in (item.m2m_data or {}).items():
                field = obj._meta.get_field(name)
                through = field.remote_field.through
                source = through._meta.get_field(field.m2m_field_name()).attname
                target = through._meta.get_field(field.m2m_reverse_field_name()).attname
                links[through] += [through(**{source: obj.pk, target: pk}) for pk in targets]
    with transaction.atomic(), _saved_timestamps(rows):
        for model, objs in rows.items():
            if model._meta.parents:  # multi-table inheritance cannot be bulk-inserted
                for obj in objs:
                    models.Model.save_base(obj, raw=True)
                continue
            # Rows a data migration made (e.g. default lost reasons) may be there already.
            fields = [f.name for f in model._meta.concrete_fields if not f.primary_key]
            model.objects.bulk_create(
                objs,
                batch_size=500,
                update_conflicts=bool(fields),
                ignore_conflicts=not fields,
                unique_fields=[model._meta.pk.name] if fields else None,
                update_fields=fields or None,
            )
        for through, objs in links.items():
            through.objects.bulk_create(objs, batch_size=500, ignore_conflicts=True)
        tables = [*rows, *links]
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), tables):
                cursor.execute(sql)
            if connection.vendor == "postgresql":
                quote = connection.ops.quote_name
                cursor.execute("ANALYZE " + ", ".join(quote(m._meta.db_table) for m in tables))
