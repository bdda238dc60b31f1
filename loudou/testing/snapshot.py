"""Save the rows of Loudou's own apps to a JSON file and load them back, fast.

Building the demo runs every service (hundreds of opportunities moved through their
stages), which takes many seconds; restoring the same rows with ``loaddata`` takes a
fraction of that. Tests build the demo once per session and restore it per test:

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

from pathlib import Path

from django.apps import apps
from django.core.management import call_command
from django.db import connection


def app_labels() -> list[str]:
    return [c.label for c in apps.get_app_configs() if c.name.startswith("loudou.")]


def save(path: str | Path) -> Path:
    """Write every row of the Loudou apps to ``path`` (JSON)."""
    path = Path(path)
    call_command("dumpdata", *app_labels(), output=str(path), verbosity=0)
    return path


def restore(path: str | Path) -> None:
    """Load rows written by :func:`save` (in one transaction; resets PostgreSQL's
    sequences, so new rows get fresh ids).

    On PostgreSQL the tables are then ANALYZEd (rows of the current transaction count):
    with the statistics of empty tables the planner picks plans that take seconds where
    a production database, analysed by autovacuum, takes milliseconds."""
    call_command("loaddata", str(path), verbosity=0)
    if connection.vendor == "postgresql":
        tables = [
            model._meta.db_table
            for label in app_labels()
            for model in apps.get_app_config(label).get_models(include_auto_created=True)
        ]
        with connection.cursor() as cursor:
            quote = connection.ops.quote_name
            cursor.execute("ANALYZE " + ", ".join(quote(t) for t in tables))
