"""A stage history file grouped by deal in the deal file's order is read beside the deal
file instead of spooled to disk; any other order falls back to the spool. Both ways give
the very same rows, errors and pipelines; a killed import leaves nothing or whole
batches either way."""

import csv
import os
import random
import signal
import textwrap
from pathlib import Path

import pytest

from loudou.imports import importers, spool
from loudou.imports.engine import undo
from loudou.imports.models import JobStatus
from loudou.imports.services import create_job, run_job
from loudou.pipeline.models import Opportunity, Pipeline, StageChange

from . import test_imports_kill

ROOT = Path(__file__).resolve().parents[2]
DEAL_HEADER = ["id", "name", "account", "amount", "pipeline", "stage", "status",
               "created_at", "closed_at"]  # fmt: skip


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def write(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(header)
        out.writerows(rows)
    return path


def deals_and_history(count=30, seed=3):
    """Deals O0…O{count-1} (in the order the grouped path reads: "O9" before "O10") over
    two pipelines, and their history rows in deal order — with the ugly cases: a deal
    without history, history of a deal the deal file does not list, two rows at the
    same moment, a deal's rows out of time order, a bad date."""
    rng = random.Random(seed)
    deals, history = [], []
    stages = [("D 识别", 10), ("C 目标", 25), ("B 重点跟进", 50), ("A 订单跟进", 80)]
    for i in range(count):
        pipeline = "东区" if i % 4 else "西区"
        day = 1 + i % 20
        fate = rng.choice(["won", "lost", "open"])
        stage = {"won": "成交", "lost": "B 重点跟进", "open": "C 目标"}[fate]
        closed = f"2024-03-{day:02d}T10:00:00+08:00" if fate != "open" else ""
        deals.append([f"O{i}", f"商机{i}", f"客户{i % 7}", "1,000", pipeline, stage, fate,
                      f"2024-01-{day:02d}T09:00:00+08:00", closed])  # fmt: skip
        if i == 5:
            continue  # no history
        rows = [[f"O{i}", name, f"2024-02-{day:02d}T{8 + k:02d}:00:00+08:00", prob]
                for k, (name, prob) in enumerate(stages[: rng.randint(1, 4)])]  # fmt: skip
        if i == 7 and len(rows) > 1:
            rows[1][2] = rows[0][2]  # the same moment: file order decides
        if i == 8:
            rows.reverse()  # out of time order within the deal
        if i == 11:
            rows.append([f"O{i}", "C 目标", "not a date", 25])
        if fate == "won":
            rows.append([f"O{i}", "成交", closed, 100])
        history += rows
    history.append(["O99", "E 神秘", "2024-02-01T08:00:00Z", 5])  # no such deal
    return deals, history


def facts():
    """Every deal and its stage changes, by names (not ids), and the pipelines."""
    out = []
    for opp in Opportunity.objects.order_by("name").select_related(
        "pipeline", "stage", "furthest_stage"
    ):
        changes = [
            (c.kind, c.from_stage and c.from_stage.name, c.to_stage.name, c.changed_at,
             c.stay_seconds, c.amount, c.probability, c.note)
            for c in StageChange.objects.filter(opportunity=opp)
            .select_related("from_stage", "to_stage").order_by("pk")
        ]  # fmt: skip
        out.append((opp.name, opp.pipeline.name, opp.stage.name, opp.furthest_stage.name,
                    opp.status, opp.amount, opp.probability, opp.stage_entered_at,
                    opp.closed_at, opp.created_at, changes))  # fmt: skip
    pipelines = [
        (p.name, [(s.name, s.kind, s.position, s.default_probability)
                  for s in p.stages.order_by("position")])
        for p in Pipeline.objects.order_by("name")
    ]  # fmt: skip
    return out, pipelines


def run_import(org, tmp_path, deals, history, name, deal_header=DEAL_HEADER, **options):
    deal_path = write(tmp_path / f"{name}-deals.csv", deal_header, deals)
    header = ["opportunity_id", "stage", "changed_at", "probability"]
    hist_path = write(tmp_path / f"{name}-history.csv", header, history)
    return run_job(create_job(actor=org.admin, kind="opportunities", file=deal_path,
                              history=hist_path, **options))  # fmt: skip


@pytest.fixture
def spooled(monkeypatch):
    """How many times the history went to the spool."""
    calls = []
    real = spool.HistorySpool.__init__

    def counting(self):
        calls.append(1)
        real(self)

    monkeypatch.setattr(spool.HistorySpool, "__init__", counting)
    return calls


def interleaved(deals, history, seed=5):
    """The history's rows mixed across deals, each deal's rows in their own order."""
    rng = random.Random(seed)
    queues = {}
    for row in history:
        queues.setdefault(row[0], []).append(row)
    queues = list(queues.values())
    rows = []
    while queues:
        queue = rng.choice(queues)
        rows.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return deals, rows


def one_deal_apart(deals, history):
    """One deal's last row moved to the end of the file (its rows apart)."""
    rows = list(history)
    at = max(i for i, r in enumerate(rows) if r[0] == "O3")
    rows.append(rows.pop(at))
    return deals, rows


def deals_swapped(deals, history):
    """The deal file's last two deals swapped (out of the history's order)."""
    return deals[:-2] + [deals[-1], deals[-2]], history


def a_deal_twice(deals, history):
    """A deal listed twice in the deal file (its second row a duplicate)."""
    return deals[:10] + [deals[3]] + deals[10:], history


@pytest.mark.parametrize("variant", [interleaved, one_deal_apart, deals_swapped, a_deal_twice])
def test_grouped_and_spooled_history_give_the_same_rows(org, tmp_path, monkeypatch, spooled,
                                                        variant):  # fmt: skip
    """A history grouped in the deal file's order (read beside it, batches of 4 deals)
    and the same files in another order — history rows mixed across deals, one deal's
    rows apart, deals swapped or listed twice in the deal file (spooled: detected, not
    assumed) — give identical deals, StageChange rows and created pipelines (stage
    order from the history's positions and probabilities); with the same deal file, the
    same counts and as many errors (skip-bad-rows mode, so that bad rows are reported
    and the rest written)."""
    monkeypatch.setattr(importers, "BATCH", 4)
    deals, history = deals_and_history()
    grouped_job = run_import(org, tmp_path, deals, history, "grouped", skip_bad_rows=True)
    assert grouped_job.status == JobStatus.DONE, grouped_job.message
    assert spooled == []  # read beside the deal file
    grouped = facts()
    assert len(grouped[0]) == 30 and sum(len(f[-1]) for f in grouped[0]) > 60
    assert [e["column"] for e in grouped_job.errors] == ["changed_at"]
    undo(grouped_job, actor=org.admin)
    assert Opportunity.objects.count() == 0
    other_deals, other_history = variant(deals, history)
    spool_job = run_import(org, tmp_path, other_deals, other_history, "spooled",
                           skip_bad_rows=True)  # fmt: skip
    assert spool_job.status == JobStatus.DONE, spool_job.message
    assert spooled == [1]  # the order was found not to hold: spooled
    assert facts() == grouped
    if other_deals == deals:
        assert spool_job.counts == grouped_job.counts
        assert [e["column"] for e in spool_job.errors] == ["changed_at"]


def test_grouped_history_errors_are_the_spools(org, tmp_path, spooled, monkeypatch):
    """The errors of a grouped history file are reported as the spool reports them —
    the same rows, columns and reasons, in the same order, before the deal file's."""
    deals, history = deals_and_history()
    history.insert(3, ["O1", "", "2024-02-01T08:00:00Z", "500"])
    deals[2][3] = "lots"
    grouped = run_import(org, tmp_path, deals, history, "grouped")
    assert spooled == []
    monkeypatch.setattr(spool, "_order", lambda opp: (0, ""))  # every deal "out of order"
    spooled_job = run_import(org, tmp_path, deals, history, "spooled")
    assert spooled == [1]
    assert grouped.status == spooled_job.status == JobStatus.REFUSED
    assert grouped.errors == spooled_job.errors
    assert [(e["file"], e["column"]) for e in grouped.errors] == [
        ("history", "stage"), ("history", "probability"), ("history", "changed_at"),
        ("opportunities", "amount"),
    ]  # fmt: skip


def test_grouped_history_with_all_or_nothing_refuses_on_a_bad_history_row(org, tmp_path,
                                                                         spooled):  # fmt: skip
    """All-or-nothing: a bad row of a grouped history file refuses the whole job (nothing
    written), with the row reported once, as with a spooled one."""
    deals, history = deals_and_history()
    job = run_import(org, tmp_path, deals, history, "refused")
    assert job.status == JobStatus.REFUSED
    assert spooled == []
    assert Opportunity.objects.count() == 0 and StageChange.objects.count() == 0
    bad = [e for e in job.errors if e["file"] == "history"]
    assert [(e["column"], e["reason"] != "") for e in bad] == [("changed_at", True)]
    assert job.counts["invalid"] == len({(e["file"], e["row"]) for e in job.errors})


def test_grouped_history_order_is_shorter_ids_first():
    """The grouped path reads ids in the order shorter first, then by code point ("O9"
    before "O10"; Salesforce's fixed-length ids as text); a deal id coming again, a
    smaller one, or one longer than the deal's kept id is not grouped."""
    events = [("O9", 1, "A", None, None), ("O10", 1, "A", None, None)]
    history = spool.GroupedHistory(lambda: iter(events))
    history.start("Main")
    history.deal("O9", None)
    history.deal("O10", "East")
    history.finish()
    assert history.stage_positions("Main") == [("Main", "A", 0, 1), ("East", "A", 0, 2)]
    for ids in (["O10", "O9"], ["O9", "O9"], ["O" + "9" * 100]):
        history = spool.GroupedHistory(lambda: iter(()))
        history.start("Main")
        with pytest.raises(spool.NotGrouped):
            for opp in ids:
                history.deal(opp, None)
    history = spool.GroupedHistory(lambda: iter([("O1", 1, "A", None, None),
                                                        ("O2", 1, "A", None, None),
                                                        ("O1", 2, "B", None, None)]))  # fmt: skip
    history.start("Main")
    with pytest.raises(spool.NotGrouped):
        history.deal("O1", None)
        history.deal("O2", None)
        history.finish()


CHILD = textwrap.dedent("""
    import csv, json, os, sys, time
    import django
    django.setup()
    from django.core.management import call_command
    from loudou.imports import importers, spool
    from loudou.imports.models import ImportJob
    from loudou.imports.services import create_job, run_job
    from loudou.pipeline.models import Opportunity, StageChange
    from loudou.org.services import create_user

    importers.BATCH = 10
    step, folder = sys.argv[1], sys.argv[2]
    if step == "start":
        def no_spool(self):
            raise AssertionError("the grouped history was spooled")
        spool.HistorySpool.__init__ = no_spool
        call_command("migrate", verbosity=0)
        admin = create_user("admin", role="admin")
        deals, history = os.path.join(folder, "deals.csv"), os.path.join(folder, "history.csv")
        with open(deals, "w", newline="") as d, open(history, "w", newline="") as h:
            dw, hw = csv.writer(d), csv.writer(h)
            dw.writerow(["id", "name", "account", "stage", "status"])
            hw.writerow(["opportunity_id", "stage", "changed_at"])
            for i in range(50):
                dw.writerow([f"O{i}", f"商机{i}", f"客户{i}", "B", "open"])
                for k, stage in enumerate(["D", "C", "B"]):
                    hw.writerow([f"O{i}", stage, f"2024-01-{1 + k:02d}T08:{i:02d}:00Z"])
        job = create_job(actor=admin, kind="opportunities", file=deals, history=history,
                         skip_bad_rows=sys.argv[3] == "skip")
        calls = []
        def progress(done, total):
            calls.append(done)
            if len(calls) == 3:  # inside the third batch's transaction
                print("READY", flush=True)
                time.sleep(600)
        run_job(job, progress=progress)
    else:
        job = ImportJob.objects.get()
        def state():
            per_deal = {}
            for opp_id, in StageChange.objects.values_list("opportunity_id"):
                per_deal[opp_id] = per_deal.get(opp_id, 0) + 1
            return {"deals": Opportunity.objects.count(),
                    "changes": sorted(set(per_deal.values())),
                    "with_history": len(per_deal)}
        out = {**state(), "status": job.status, "resume_after_row": job.resume_after_row}
        if step == "resume":
            job = run_job(job)
            out["after"] = {**state(), "final": job.status, "names": len(set(
                Opportunity.objects.values_list("name", flat=True)))}
        print(json.dumps(out), flush=True)
""")


def child(step, folder, *args, wait=True):
    return test_imports_kill.child(step, folder, *args, wait=wait, script=CHILD)


@pytest.mark.parametrize("mode", ["all", "skip"])
def test_sigkill_half_way_with_grouped_history(tmp_path, mode, sqlite_copy):
    """Killed in its third batch of ten deals while reading a grouped history beside the
    deal file: all-or-nothing leaves no deal and no stage change; skip-bad-rows leaves
    exactly the two committed batches, each deal with its whole history (created + two
    moves), the job stopped after row 21, and resuming imports the other 30 deals with
    theirs, without duplicates."""
    sqlite_copy(tmp_path / "db.sqlite3")
    process = child("start", tmp_path, mode, wait=False)
    try:
        assert process.stdout.readline().strip() == "READY"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    state = child("inspect", tmp_path)
    if mode == "all":
        assert (state["deals"], state["with_history"], state["resume_after_row"]) == (0, 0, 0)
        return
    assert state == {"deals": 20, "changes": [3], "with_history": 20, "status": "running",
                     "resume_after_row": 21}  # fmt: skip
    resumed = child("resume", tmp_path)["after"]
    assert resumed == {"deals": 50, "changes": [3], "with_history": 50, "final": "done",
                       "names": 50}  # fmt: skip


def test_a_workbook_deal_file_is_loaded_once_and_gives_the_csv_rows(org, tmp_path,
                                                                   monkeypatch):  # fmt: skip
    """A deal file given as a workbook (a note row above the header, on a second sheet
    the user chose) is loaded by calamine once for both passes, and gives the very
    deals and stage changes the same rows as CSV give."""
    import python_calamine
    import xlsxwriter

    deals, history = deals_and_history()
    job = run_import(org, tmp_path, deals, history, "csv")
    assert job.status == JobStatus.REFUSED  # the bad history row: nothing written
    job = run_import(org, tmp_path, deals, history, "csv", skip_bad_rows=True)
    from_csv = facts()
    undo(job, actor=org.admin)
    path = str(tmp_path / "deals.xlsx")
    book = xlsxwriter.Workbook(path)
    book.add_worksheet("说明").write(0, 0, "see the next sheet")
    sheet = book.add_worksheet("商机")
    sheet.write(0, 0, "注意：带 * 的列必填")
    sheet.write_row(1, 0, DEAL_HEADER)
    for r, row in enumerate(deals, start=2):
        sheet.write_row(r, 0, row)
    book.close()
    loads = []
    real = python_calamine.CalamineWorkbook.from_path

    def counting(cls_path):
        loads.append(cls_path)
        return real(cls_path)

    monkeypatch.setattr(python_calamine.CalamineWorkbook, "from_path", counting)
    hist_path = write(tmp_path / "h.csv", ["opportunity_id", "stage", "changed_at",
                                           "probability"], history)  # fmt: skip
    job = run_job(create_job(actor=org.admin, kind="opportunities", file=path,
                             history=hist_path, skip_bad_rows=True, sheet="商机"))  # fmt: skip
    assert job.status == JobStatus.DONE, job.message
    assert len(loads) == 1
    assert facts() == from_csv


def test_micros_parser_reads_what_parse_datetime_reads():
    """values.micros_parser gives micros(parse_datetime(cell)) for every cell — ISO text
    with an offset or Z (through its remembered dates and times of day, with memos
    small enough to be cleared), without one (the company's zone, summer times of the
    past included), Excel serials, other formats, empty cells — and the same BadValue
    for a bad one."""
    from loudou.imports.bulk import micros
    from loudou.imports.values import BadValue, micros_parser, parse_datetime

    def answer(parse, cell):
        try:
            return parse(cell)
        except BadValue as error:
            return ("bad", error.reason)
        except (ValueError, OverflowError) as error:
            return ("error", type(error))

    def reference(cell):
        moment = parse_datetime(cell)
        return None if moment is None else micros(moment)

    rng = random.Random(1)
    cells = [
        f"{rng.choice([1, 1969, 1988, 2024, 9999]):04d}-{rng.randint(1, 12):02d}-"
        f"{rng.randint(1, 31):02d}{rng.choice('T ')}{rng.randint(0, 24):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        + rng.choice(["", "+08:00", "Z", "-05:30", ".123456+08:00", "+0800", " "])
        for _ in range(4_000)
    ] + ["", "  ", "45352.5", "3/5/2024", "2024年3月5日", 45352.0, None, "1970-01-01T00:00:00Z"]
    parse = micros_parser(size=50)
    for cell in cells * 2:  # the second time through the memos
        assert answer(parse, cell) == answer(reference, cell), cell
    assert parse("1970-01-01T00:00:00Z") == 0


def test_a_duplicate_rows_history_is_not_checked_a_new_rows_is(org, tmp_path):
    """Importing again: a row that duplicates a deal already in the database is counted
    as a duplicate and its history is not checked (it is not written), while a new deal
    whose history names a stage the pipeline lacks is refused with that reason. (Each
    row's deal is built before the duplicate lookup — beside the previous batch's COPY on
    PostgreSQL — and its problems count only if it is written.)"""
    deals = [["O1", "商机1", "客户1", "1,000", "东区", "C 目标", "open",
              "2024-01-02T09:00:00+08:00", ""]]  # fmt: skip
    history = [["O1", "D 识别", "2024-01-02T09:00:00+08:00", 10],
               ["O1", "C 目标", "2024-01-05T09:00:00+08:00", 25]]  # fmt: skip
    first = run_import(org, tmp_path, deals, history, "first")
    assert first.status == JobStatus.DONE, first.message
    deals.append(["O2", "商机2", "客户1", "2,000", "东区", "C 目标", "open",
                  "2024-01-03T09:00:00+08:00", ""])  # fmt: skip
    history = [["O1", "X 未知", "2024-01-02T09:00:00+08:00", 10],
               ["O2", "Y 未知", "2024-01-03T09:00:00+08:00", 10]]  # fmt: skip
    again = run_import(org, tmp_path, deals, history, "again", skip_bad_rows=True)
    assert again.status == JobStatus.DONE, again.message
    assert again.counts.get("duplicate") == 1 and not again.counts.get("new")
    assert [(e["row"], e["column"]) for e in again.errors] == [(3, "stage")]
    assert "“Y 未知”" in again.errors[0]["reason"]
    assert Opportunity.objects.count() == 1
