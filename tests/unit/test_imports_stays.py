"""The deal import writes each new deal's stays_seconds (Σ stay_seconds of the history it
rebuilds) in the deal's own INSERT, and tells the funnel summaries that those deals need
no second write; the deals an update-mode import changed, and deals whose history was
written behind the summaries' back, are still recomputed."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loudou.imports import importers
from loudou.imports.models import JobStatus
from loudou.pipeline import summaries
from loudou.pipeline.models import Opportunity, StageChange

from .test_imports_grouped import deals_and_history, interleaved, run_import
from .test_pipeline_summaries import maintained, recomputed

STAYS_UPDATE = 'UPDATE "pipeline_opportunity" SET "stays_seconds"'


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def good_deals_and_history(count=30):
    """deals_and_history without its bad history row (an all-or-nothing import of it is
    refused)."""
    deals, history = deals_and_history(count)
    return deals, [row for row in history if row[2] != "not a date"]


def stays_updates(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith(STAYS_UPDATE)]


@pytest.mark.parametrize("order", ["grouped", "spooled"])
@pytest.mark.parametrize("skip_bad_rows", [False, True])
def test_new_deals_carry_their_stays_and_are_not_updated_again(org, tmp_path, monkeypatch,
                                                                order, skip_bad_rows):  # fmt: skip
    """After an import of new deals with history (read beside the deal file or spooled;
    all-or-nothing or batch by batch, batches of 4) every deal's stays_seconds equals
    the sum of its StageChange rows' stay_seconds (0 for a deal with no closed stay), the
    summaries equal a recomputation, and no UPDATE rewrote the deals' stays_seconds."""
    monkeypatch.setattr(importers, "BATCH", 4)
    deals, history = good_deals_and_history()
    if order == "spooled":
        deals, history = interleaved(deals, history)
    with CaptureQueriesContext(connection) as queries:
        job = run_import(org, tmp_path, deals, history, order, skip_bad_rows=skip_bad_rows)
    assert job.status == JobStatus.DONE, (job.message, job.errors)
    assert job.counts["new"] == 30
    counts, stays, per_opp = recomputed()
    assert maintained() == (counts, stays, per_opp)
    assert len(per_opp) == 30
    assert any(per_opp.values())  # closed stays were summed
    assert 0 in per_opp.values()  # and a deal without one has 0
    assert stays_updates(queries.captured_queries) == []


def test_update_mode_refreshes_the_deals_it_updated(org, tmp_path):
    """An update-mode import of deals that already had history recomputes their
    stays_seconds (here made wrong behind the import's back), while the new deals of the
    same file carry theirs from the INSERT."""
    deals, history = good_deals_and_history(20)
    first = run_import(org, tmp_path, deals[:12], history, "first")
    assert first.status == JobStatus.DONE, (first.message, first.errors)
    old = set(Opportunity.objects.values_list("pk", flat=True))
    assert StageChange.objects.filter(opportunity__in=old, stay_seconds__gt=0).exists()
    Opportunity.objects.update(stays_seconds=12345)
    second = run_import(org, tmp_path, deals, history, "second", on_duplicate="update")
    assert second.status == JobStatus.DONE, (second.message, second.errors)
    assert second.counts["new"] == 8 and second.counts["updated"] == 12
    counts, stays, per_opp = recomputed()
    assert maintained() == (counts, stays, per_opp)
    assert set(per_opp) - old and not any(v == 12345 for v in per_opp.values())


def test_history_written_behind_the_back_is_still_counted(org, tmp_path, monkeypatch):
    """History rows past the summaries' state that are not the import's own (written in
    bulk for an existing deal before the import, among its ids) still make their deal's
    stays_seconds recomputed by the import's rebuild of the summaries."""
    monkeypatch.setattr(importers, "BATCH", 4)
    deals, history = good_deals_and_history(20)
    first = run_import(org, tmp_path, deals[:10], history, "first")
    assert first.status == JobStatus.DONE, (first.message, first.errors)
    opp = Opportunity.objects.filter(stays_seconds__gt=0).first()
    last = StageChange.objects.filter(opportunity=opp).order_by("pk").last()
    StageChange.objects.bulk_create(
        [StageChange(opportunity=opp, kind="moved", from_stage=last.to_stage,
                     to_stage=last.to_stage, changed_at=last.changed_at, changed_by=org.admin,
                     amount=last.amount, probability=last.probability, stay_seconds=777)]
    )  # fmt: skip
    second = run_import(org, tmp_path, deals[10:], history, "second")
    assert second.status == JobStatus.DONE, (second.message, second.errors)
    counts, stays, per_opp = recomputed()
    assert maintained() == (counts, stays, per_opp)
    assert Opportunity.objects.get(pk=opp.pk).stays_seconds == opp.stays_seconds + 777


@pytest.mark.parametrize("gaps_per_query", [200, 2])
def test_past_changes_skip_exactly_the_fresh_ranges(org, tmp_path, monkeypatch,
                                                    gaps_per_query):  # fmt: skip
    """The filters of the changes past the state pick, together, every StageChange row
    with an id above it and outside the fresh ranges (ranges before, across and after
    it, touching, out of order; few or many filters)."""
    monkeypatch.setattr(summaries, "GAPS_PER_QUERY", gaps_per_query)
    deals, history = good_deals_and_history(20)
    job = run_import(org, tmp_path, deals, history, "ids")
    assert job.status == JobStatus.DONE, (job.message, job.errors)
    ids = sorted(StageChange.objects.values_list("pk", flat=True))
    assert len(ids) > 40
    low, high = ids[0], ids[-1]
    cases = [
        (low - 1, []),
        (low + 3, [[low, low + 5]]),
        (low + 3, [[low + 30, low + 31], [low + 10, low + 12], [low + 13, low + 13]]),
        (low + 3, [[high - 2, high + 50]]),
        (low, [[low + 2 * i, low + 2 * i] for i in range(25)]),
        (high, [[low, high]]),
    ]
    for since, fresh in cases:
        picked = set()
        for past in summaries._past_changes(since, fresh):
            picked |= set(StageChange.objects.filter(past).values_list("pk", flat=True))
        expected = {
            pk for pk in ids if pk > since and not any(a <= pk <= b for a, b in fresh)
        }  # fmt: skip
        assert picked == expected, (since, fresh)


def test_deal_import_in_batches_finds_duplicates_of_the_last_batch(org, tmp_path, monkeypatch):
    """An all-or-nothing, update-mode deal import in batches of 2 writes each deal and its
    history once, finds duplicates of the batch before, updates a deal that existed
    before, and leaves every deal's stays_seconds equal to its history's."""
    monkeypatch.setattr(importers, "BATCH", 2)
    deals, history = good_deals_and_history(8)
    # deal 0, and others under other names (so that the pipelines have every stage)
    others = [[f"P{row[0]}", f"旧{row[1]}", *row[2:]] for row in deals[1:]]
    their_history = [[f"P{row[0]}", *row[1:]] for row in history]
    first = run_import(org, tmp_path, [deals[0], *others], history + their_history, "first")
    assert first.status == JobStatus.DONE, (first.message, first.errors)
    existing = Opportunity.objects.get(name=deals[0][1])
    # batches [1, 2], [3, 2 again], [3 again, 4], [5, 6], [7, 0 (imported before)]
    again = [*deals[1:4], ["X2", *deals[2][1:]], ["X3", *deals[3][1:]], *deals[4:], deals[0]]
    job = run_import(org, tmp_path, again, history, "again", on_duplicate="update")
    assert job.status == JobStatus.DONE, (job.message, job.errors)
    assert (job.counts["new"], job.counts["duplicate"], job.counts["updated"]) == (7, 2, 1)
    assert Opportunity.objects.count() == 15
    assert Opportunity.objects.filter(name=existing.name).get().pk == existing.pk
    counts, stays, per_opp = recomputed()
    assert maintained() == (counts, stays, per_opp)
