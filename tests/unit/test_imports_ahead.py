"""An opportunity import prepares its batches in a forked process (imports.ahead) while it
writes, and parses its history file in another during its first pass: the very rows,
counts, errors and placeholder owners of the one-process import;
a failure or death of the child stops the import with nothing kept; the child never
uses the database."""

import multiprocessing
import os
import signal

import pytest
from django.db import connection

from loudou.imports import ahead, importers, opportunities
from loudou.imports.engine import undo
from loudou.imports.models import JobStatus
from loudou.org.models import User
from loudou.pipeline.models import Opportunity

from .test_imports_grouped import deals_and_history, facts, interleaved, run_import

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods() or (os.cpu_count() or 1) < 2,
    reason="needs fork and two cores",
)

HEADER = ["id", "name", "account", "amount", "pipeline", "stage", "status", "created_at",
          "closed_at", "owner"]  # fmt: skip


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LOUDOU_IMPORT_AHEAD = True


@pytest.fixture
def pids(monkeypatch, tmp_path):
    """The processes that prepared batches and that parsed the history file (each
    appends its pid to a file): read() → (batch pids, history pids), forgotten then."""
    importer = opportunities.OpportunityImporter
    for name in ("prepare", "_history_events"):
        real = getattr(importer, name)

        def recording(self, *args, _real=real, _path=tmp_path / name):
            with open(_path, "a") as out:
                out.write(f"{os.getpid()}\n")
            return _real(self, *args)

        monkeypatch.setattr(importer, name, recording)

    def read():
        found = []
        for name in ("prepare", "_history_events"):
            path = tmp_path / name
            found.append({int(p) for p in path.read_text().split()} if path.exists() else set())
            path.unlink(missing_ok=True)
        return tuple(found)

    return read


def ugly_deals():
    """deals_and_history's deals and history with owners (a user, placeholders-to-be, an
    empty cell, a name in two spellings of space), a bad amount and a deal named twice."""
    deals, history = deals_and_history(count=40)
    owners = ["", "east_rep", "张三", " 张三 ", "Nobody Known", "李四"]
    rows = [deal + [owners[i % len(owners)]] for i, deal in enumerate(deals)]
    rows[6][3] = "lots"  # a bad amount
    rows.insert(20, list(rows[4]))  # the same deal again: a duplicate
    return rows, history


def run(org, tmp_path, name, deals, history, **options):
    return run_import(org, tmp_path, deals, history, name, deal_header=HEADER, **options)


def placeholders():
    return list(User.objects.filter(is_active=False).order_by("pk").values_list("name", flat=True))


@pytest.mark.parametrize("order", ["grouped", "spooled"])
@pytest.mark.parametrize("options", [
    {"skip_bad_rows": True},
    {"skip_bad_rows": True, "on_duplicate": "create"},
    {},  # all-or-nothing: refused for the bad row
])  # fmt: skip
def test_prepared_ahead_gives_what_one_process_gives(org, tmp_path, monkeypatch, settings,
                                                     pids, order, options):  # fmt: skip
    """The same files imported with batches prepared in a forked process and in the one
    process give identical deals and stage history, pipelines, counts, row errors (same
    order) and placeholder owners (same order of creation), with the history grouped or
    spooled, in skip-bad-rows (duplicates skipped or created) and all-or-nothing runs."""
    monkeypatch.setattr(importers, "BATCH", 4)
    deals, history = ugly_deals()
    if order == "spooled":
        deals, history = interleaved(deals, history)
    outcomes = {}
    for mode in (True, False):
        settings.LOUDOU_IMPORT_AHEAD = mode
        job = run(org, tmp_path, f"ahead-{mode}", deals, history, **options)
        outcomes[mode] = (job.status, job.counts, job.errors, job.message, facts(),
                          placeholders(), pids())  # fmt: skip
        if job.status == JobStatus.DONE:
            undo(job, actor=org.admin)
        assert Opportunity.objects.count() == 0 and placeholders() == []
    *ahead_result, ahead_pids = outcomes[True]
    *one_result, one_pids = outcomes[False]
    assert ahead_result == one_result
    assert one_pids == ({os.getpid()}, {os.getpid()})
    # One child prepared every batch; others parsed the history file (once, or twice for
    # the deal listed twice: grouped found not to hold, then spooled).
    batches, history = ahead_pids
    assert len(batches) == 1 and history and os.getpid() not in batches | history
    assert batches.isdisjoint(history)
    status, counts, errors, _message, (opps, _pipelines), users, _p = outcomes[True]
    if options.get("skip_bad_rows"):
        assert status == JobStatus.DONE
        assert [e["column"] for e in errors if e["file"] == "opportunities"] == ["amount"]
        assert len(opps) == (40 if options.get("on_duplicate") == "create" else 39)
        assert users == ["张三", "Nobody Known", "李四"]  # in file order; east_rep is a user
    else:
        assert status == JobStatus.REFUSED and opps == [] and counts["invalid"] == 2


def test_a_file_of_many_owners_is_prepared_in_one_process(org, tmp_path, monkeypatch, pids):
    """More distinct owners than OWNERS_AHEAD: the owners are not resolved beforehand and
    the batches are prepared in the import's own process (the history file is still read
    in a child), with the same outcome."""
    monkeypatch.setattr(opportunities, "OWNERS_AHEAD", 2)
    deals, history = ugly_deals()
    job = run(org, tmp_path, "many", deals, history, skip_bad_rows=True)
    assert job.status == JobStatus.DONE, job.message
    assert pids()[0] == {os.getpid()}
    assert Opportunity.objects.count() == 39
    assert placeholders() == ["张三", "Nobody Known", "李四"]


def test_without_a_process_to_be_had_the_import_prepares_in_its_own(org, tmp_path,
                                                                   monkeypatch, pids):  # fmt: skip
    """When no process can be forked (OSError: memory, limits), the history file and the
    batches are read in the import's own process, with the same outcome."""
    deals, history = ugly_deals()
    expected = run(org, tmp_path, "forked", deals, history, skip_bad_rows=True)
    pids()
    facts_forked = facts()
    undo(expected, actor=org.admin)

    def refused(*args, **kwargs):
        raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(ahead, "Ahead", refused)
    job = run(org, tmp_path, "unforked", deals, history, skip_bad_rows=True)
    assert pids() == ({os.getpid()}, {os.getpid()})
    assert (job.status, job.counts, job.errors) == (expected.status, expected.counts,
                                                    expected.errors)  # fmt: skip
    assert facts() == facts_forked


def test_an_error_in_the_child_stops_the_import_with_nothing_kept(org, tmp_path, monkeypatch,
                                                                  pids):  # fmt: skip
    """An exception while a batch is prepared in the child reaches the import as that
    exception (the job fails with its message); the all-or-nothing run keeps nothing."""
    monkeypatch.setattr(importers, "BATCH", 4)
    real = opportunities.OpportunityImporter._build

    def failing(self, data, problems):
        if data["name"] == "商机17":
            raise ValueError("boom at 商机17")
        return real(self, data, problems)

    monkeypatch.setattr(opportunities.OpportunityImporter, "_build", failing)
    deals, history = deals_and_history(count=30)
    deals = [deal + [""] for deal in deals]
    job = run(org, tmp_path, "failing", deals, history)
    assert job.status == JobStatus.FAILED
    assert "boom at 商机17" in job.message
    assert os.getpid() not in pids()[0]
    assert Opportunity.objects.count() == 0


def test_ahead_is_on_unless_turned_off(settings):
    """LOUDOU_IMPORT_AHEAD: on by default, on both databases; off, never."""
    from loudou import settings as configured

    if not os.environ.get("LOUDOU_IMPORT_AHEAD"):  # unset here: the default
        assert configured.LOUDOU_IMPORT_AHEAD is True
    settings.LOUDOU_IMPORT_AHEAD = True
    assert ahead.possible()
    settings.LOUDOU_IMPORT_AHEAD = False
    assert not ahead.possible()


def test_the_child_cannot_use_the_database_and_the_parent_still_can(db):
    """A query in the preparing process fails there (PreparingFailed, raised in the
    parent) without touching the parent's connection: the parent queries on, in its
    transaction."""
    User.objects.create(username="before")

    def produce():
        yield "first"
        yield User.objects.count()

    with ahead.Ahead(produce) as source:
        got = []
        with pytest.raises(ahead.PreparingFailed, match="may not use the database"):
            for item in source:
                got.append(item)
    assert got == ["first"]
    assert User.objects.filter(username="before").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_killed_child_is_reported_not_waited_for():
    """A child killed half-way: the items it sent arrive, then PreparingFailed naming its
    exit (the parent does not hang on the pipe)."""

    def produce():
        yield 1
        os.kill(os.getpid(), signal.SIGKILL)
        yield 2

    with ahead.Ahead(produce) as source:
        got = []
        with pytest.raises(ahead.PreparingFailed, match="exit code -9"):
            for item in source:
                got.append(item)
    assert got == [1]


def test_an_exception_that_does_not_pickle_arrives_as_its_traceback():
    """An exception the pipe cannot carry is raised in the parent as PreparingFailed with
    the child's traceback text."""

    class Local(Exception):  # a local class does not pickle
        pass

    def produce():
        raise Local("not picklable")
        yield

    with ahead.Ahead(produce) as source, pytest.raises(ahead.PreparingFailed, match="Local"):
        list(source)
