"""Fixtures shared by every test: a small organisation with every kind of user.

    company
    ├── east (manager: east_mgr; reps: east_rep, east_rep2)
    │   └── east_sub (rep: sub_rep)
    └── south (manager: south_mgr; rep: south_rep)
    admin (role admin, no team)

``east_mgr`` manages the subtree east + east_sub; ``south_mgr`` only south.
"""

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from loudou.org.models import Region, Role, Team
from loudou.org.services import create_user

PASSWORD = "correct horse battery staple"


class Org:
    """Handles on the fixture organisation's teams, regions and users."""


@pytest.fixture
def org(db):
    o = Org()
    o.east_region = Region.objects.create(name="华东区")
    o.shanghai = Region.objects.create(name="上海", parent=o.east_region)
    o.south_region = Region.objects.create(name="华南区")
    o.east = Team.objects.create(name="East")
    o.east_sub = Team.objects.create(name="East Sub", parent=o.east)
    o.south = Team.objects.create(name="South")

    def user(username, role, team, region):
        return create_user(
            username, password=PASSWORD, name=username, role=role, team=team, region=region
        )

    o.admin = user("admin", Role.ADMIN, None, None)
    o.east_mgr = user("east_mgr", Role.MANAGER, o.east, o.east_region)
    o.east_rep = user("east_rep", Role.REP, o.east, o.shanghai)
    o.east_rep2 = user("east_rep2", Role.REP, o.east, o.shanghai)
    o.sub_rep = user("sub_rep", Role.REP, o.east_sub, o.shanghai)
    o.south_mgr = user("south_mgr", Role.MANAGER, o.south, o.south_region)
    o.south_rep = user("south_rep", Role.REP, o.south, o.south_region)
    return o


@pytest.fixture(autouse=True)
def _postgres_only(request):
    """Tests marked ``postgres_only`` skip on other databases; ``make test`` runs them in
    its PostgreSQL pass."""
    if request.node.get_closest_marker("postgres_only"):
        from django.db import connection

        if connection.vendor != "postgresql":
            pytest.skip("needs PostgreSQL (runs in the PostgreSQL pass of make test)")


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory) -> Path:
    """An empty SQLite database with every migration applied, made once per session by
    ``loudou migrate`` in a child process. Tests that run Loudou in child processes on
    their own SQLite file copy it (``sqlite_copy``) instead of migrating a fresh file,
    which costs some 20 s of CPU each."""
    path = tmp_path_factory.mktemp("migrated") / "template.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "loudou.settings",
           "LOUDOU_DATABASE_URL": f"sqlite:///{path}"}  # fmt: skip
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "loudou.cli", "migrate", "-v0"], env=env, cwd=root,
                   check=True)  # fmt: skip
    # Fold the write-ahead log into the file (the child may exit without checkpointing
    # it) and leave WAL mode, so that copying the one file copies the whole database.
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA journal_mode=DELETE")
    return path


@pytest.fixture
def sqlite_copy(migrated_sqlite_template):
    """``sqlite_copy(path)`` writes a copy of the migrated empty database to ``path``."""

    def copy(path: Path) -> Path:
        shutil.copyfile(migrated_sqlite_template, path)
        return path

    return copy


@pytest.fixture(scope="session")
def demo_snapshot(django_db_setup, django_db_blocker, tmp_path_factory):
    """The demo data set (``load_demo()``), built once per session in the test database
    and saved as JSON; building it runs every service and takes many seconds."""
    import os
    from pathlib import Path

    from django.db import transaction
    from django.test import TestCase

    from loudou.testing import snapshot
    from loudou.web.demo import load_demo

    # The runner shares one snapshot between its SQLite and PostgreSQL runs. Side by
    # side, the PostgreSQL run waits for the one the SQLite run writes (its tests that
    # need the demo run last, see below) unless that run ended without writing one.
    shared = os.environ.get("LOUDOU_TEST_DEMO_SNAPSHOT")
    other_run_done = os.environ.get("LOUDOU_TEST_DEMO_SNAPSHOT_FROM")
    if shared and other_run_done:
        while not Path(shared).is_file() and not Path(other_run_done).exists():
            time.sleep(1)
    if shared and Path(shared).is_file():
        return Path(shared)
    path = Path(shared) if shared else tmp_path_factory.mktemp("demo") / "demo.json"
    with django_db_blocker.unblock(), transaction.atomic():
        # As if load_demo() had committed: its on_commit work runs too.
        with TestCase.captureOnCommitCallbacks(execute=True):
            load_demo()
        snapshot.save(path)
        transaction.set_rollback(True)
    return path


@pytest.fixture
def demo(db, demo_snapshot):
    """The whole demo (users with ``DEMO_PASSWORD``, accounts, opportunities) in this
    test's database, restored from the session's snapshot in a few seconds."""
    from loudou.testing import snapshot

    snapshot.restore(demo_snapshot)


# Fixtures through which a test reaches the database (directly or by a server/subprocess
# that shares it). A test using none of them, and not marked django_db, proves the same
# thing whatever the database.
DATABASE_FIXTURES = {
    "db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback",
    "django_db_setup", "live_server",
}  # fmt: skip


DEMO_FIXTURES = {"demo", "demo_snapshot"}


def pytest_collection_modifyitems(config, items):
    """With ``LOUDOU_TEST_DATABASE_ONLY=1`` (the runner's second database), leave out the
    tests that touch no database: they ran already, identically, in the first run. With
    ``LOUDOU_TEST_DEMO_SNAPSHOT_FROM`` (the same run), put the tests that need the demo
    last, by when the first run has written its snapshot for them."""
    if os.environ.get("LOUDOU_TEST_DEMO_SNAPSHOT_FROM"):
        items.sort(key=lambda item: bool(DEMO_FIXTURES & set(getattr(item, "fixturenames", ()))))
    if os.environ.get("LOUDOU_TEST_DATABASE_ONLY") != "1":
        return
    keep, drop = [], []
    for item in items:
        uses_database = item.get_closest_marker("django_db") is not None or bool(
            DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
        )
        (keep if uses_database else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
