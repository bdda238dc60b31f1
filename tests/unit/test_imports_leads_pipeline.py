"""The lead import's pipelined writes (PostgreSQL, all-or-nothing: the background writer):
each batch's duplicate lookups and ids are asked for one batch ahead, before the batch
written just before it is in the database. The answers must be those of the batch-by-batch
path (skip-bad-rows: each batch committed, looked up after the one before)."""

import pytest

from loudou.imports import importers
from loudou.imports.models import JobStatus
from loudou.imports.services import create_job, run_job
from loudou.leads.models import Lead, LeadCount, PoolEvent

from .test_imports_bulk import leads_file


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


# Batches of two: each row's duplicate is in the batch just before (not yet COPYed when
# its lookup ran), two or more batches before (in the database), in its own batch, or an
# older lead.
ROWS = [
    ["甲", "13800000001", "a@example.cn", "1"],
    ["乙", "13800000002", "", "2"],
    ["丙", "", "c@example.cn", "3"],  # batch 2
    ["甲又", "13800000001", "", "4"],  # the batch before
    ["庚", "", "", "5"],  # batch 3: no keys
    ["丙又", "", "C@Example.cn", "6"],  # the batch before (its e-mail, normalised)
    ["乙又", "138-0000-0002", "", "7"],  # batch 4: two batches before
    ["丁", "13800000004", "d@example.cn", "8"],
    ["丁又", "13800000004", "", "9"],  # batch 5: the batch before
    ["戊", "13800000005", "", "10"],
    ["戊又", "", "", "11"],  # batch 6: no keys, not a duplicate
    ["戊三", "13800000005", "", "12"],  # the batch before
    ["老又", "13911112222", "", "13"],  # batch 7: an older lead
    ["己", "13800000006", "", "14"],
    ["己又", "13800000006", "", "15"],  # batch 8: the batch before
]


def outcome(job):
    fields = ("id", "name", "mobile_key", "email_key", "notes", "owner_id", "pool_id", "status")
    leads = list(Lead.objects.order_by("id").values_list(*fields))
    keys = ("owner_key", "pool_key", "source", "status", "count")
    counts = sorted(LeadCount.objects.values_list(*keys))
    new_ids = [row[0] for row in leads[1:]]  # the first: the older lead
    return {
        "leads": [row[1:] for row in leads],
        "events": PoolEvent.objects.count(),
        "counts": counts,
        "job": (job.status, job.counts, job.errors),
        "consecutive": new_ids == list(range(new_ids[0], new_ids[0] + len(new_ids))),
    }


def run(org, path, mode, skip_bad_rows):
    Lead.objects.all().delete()
    PoolEvent.objects.all().delete()
    LeadCount.objects.all().delete()
    Lead.objects.create(name="老线索", mobile="13911112222", mobile_key="13911112222",
                        owner=org.admin, notes="old")  # fmt: skip
    LeadCount.objects.create(owner_key=org.admin.pk, pool_key=0, source="", status="new",
                             count=1)  # fmt: skip
    job = run_job(create_job(actor=org.admin, kind="leads", file=path, on_duplicate=mode,
                             skip_bad_rows=skip_bad_rows))  # fmt: skip
    return outcome(job)


@pytest.mark.parametrize("mode", ["skip", "update", "create"])
def test_pipelined_lead_import_finds_what_the_batch_by_batch_import_finds(
    org, tmp_path, monkeypatch, mode
):
    """Every duplicate (in the batch just before, earlier batches, its own batch, an older
    lead) is found, updated or created as in the path that looks each batch up after the
    one before is written: same leads, keys, notes, events, lead counts, job counts and
    errors, and the new leads' ids still consecutive in file order (the ids a batch's
    duplicates did not use go to the next batch)."""
    monkeypatch.setattr(importers, "BATCH", 2)
    path = leads_file(tmp_path / "l.csv", ROWS)
    pipelined = run(org, path, mode, skip_bad_rows=False)
    assert pipelined == run(org, path, mode, skip_bad_rows=True)
    status, counts, errors = pipelined["job"]
    assert status == JobStatus.DONE and errors == []
    assert pipelined["consecutive"]
    if mode == "create":
        assert counts["new"] == len(ROWS) and counts.get("duplicate", 0) == 0
    else:  # 甲, 乙, 丙, 庚, 丁, 戊, 戊又, 己 are new; 老又 updates the older lead
        assert counts["new"] == 8
        assert counts["duplicate"] + counts["updated"] == len(ROWS) - 8
        older = pipelined["leads"][0]
        assert older[0:4:3] == (("老又", "13") if mode == "update" else ("老线索", "old"))
