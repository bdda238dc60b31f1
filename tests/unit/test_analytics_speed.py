"""The faster ways the reports read their numbers give the same numbers as the plain ones
(issue 4 speed work): on a generated data set (bulk-loaded, so the summaries are first
rebuilt by the report itself), the summaries' counts, won totals and stays equal the
queries over the opportunities and their history, and the batched backtest equals the
per-period computation."""

from datetime import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count, Sum

from loudou.analytics import queries, reports
from loudou.analytics.queries import Scope
from loudou.core.db import Cents
from loudou.org.models import User
from loudou.pipeline import summaries
from loudou.pipeline.choices import Status
from loudou.pipeline.models import Pipeline, StageChange

FIXED_NOW = "2026-11-20T12:00:00+08:00"


@pytest.fixture
def generated(db):
    call_command("generate", opportunities=1200, seed=7, now=datetime.fromisoformat(FIXED_NOW),
                 stdout=StringIO())  # fmt: skip
    return Pipeline.objects.get(template="dcba")


def _scopes(pipeline):
    admin = User.objects.get(username="admin")
    manager = User.objects.filter(role="manager").order_by("pk").first()
    rep = User.objects.filter(role="rep").order_by("pk").first()
    return [
        Scope(user=admin, pipeline=pipeline),
        Scope(user=manager, pipeline=pipeline),
        Scope(user=rep, pipeline=pipeline),
        Scope(user=admin, pipeline=pipeline, team=manager.team),
    ]


def test_report_catches_up_and_reads_the_same_counts(generated):
    """After a bulk load the first report rebuilds the summaries; then for an admin, a
    manager, a rep and a team filter the counts, the won totals (count, amount, cycle =
    the won deals' recorded stays in the history) equal the queries over the rows."""
    assert not summaries.is_fresh()
    reports.funnel_report(Scope(user=User.objects.get(username="admin"), pipeline=generated))
    assert summaries.is_fresh()
    for scope in _scopes(generated):
        qs = scope.opportunities()
        rows = queries.scope_counts(scope)
        plain = {(r["furthest_stage_id"], r["status"]): r["n"] for r in queries.furthest_counts(qs)}
        assert {(r["furthest_stage_id"], r["status"]): r["n"] for r in rows} == plain
        won = qs.filter(status=Status.WON)
        expected = won.aggregate(n=Count("pk"), c=Sum(Cents("amount")))
        cycle = StageChange.objects.filter(
            opportunity__in=won.values("pk"), stay_seconds__isnull=False
        ).aggregate(s=Sum("stay_seconds"))["s"]
        totals = queries.won_totals(rows)
        assert totals["count"] == expected["n"] > 0
        assert totals["amount"] == queries.cents_to_decimal(expected["c"])
        assert totals["cycle_seconds"] == cycle
    ids = list(generated.stages.values_list("pk", flat=True))
    qs = _scopes(generated)[0].opportunities()
    assert queries.stay_histograms(qs, stages=ids) == queries.stay_histograms(qs)


def test_batched_backtest_equals_the_per_period_queries(generated):
    """The backtest's three batched passes (learning counts, stays before each start, won
    amounts) give, period by period, what the per-period queries give."""
    scope = _scopes(generated)[0]
    qs = scope.opportunities()
    periods = reports.last_periods("quarter", 4)
    spans = [p.bounds() for p in periods]
    starts = [s for s, _e in spans]
    learned = queries.furthest_counts_before(qs, starts)
    stays = queries.stay_histograms_before(qs, starts)
    won = queries.won_amounts_between_changes(qs, spans)
    assert any(won)
    for i, (start, end) in enumerate(spans):
        known = qs.filter(created_at__lt=start)
        plain = queries.furthest_counts(known.filter(closed_at__lt=start))
        assert sorted((r["furthest_stage_id"], r["status"], r["n"]) for r in learned[i]) == sorted(
            (r["furthest_stage_id"], r["status"], r["n"]) for r in plain
        )
        assert stays[i] == queries.stay_histograms(known, before=start)
        assert won[i] == queries.won_amount_between_changes(
            known.exclude(closed_at__lt=start), start, end
        )
    result = reports.backtest(scope, periods, runs=200)
    assert [r["actual"] for r in result["periods"]] == [str(a) for a in won]


def test_cli_rebuilds_the_summaries(generated):
    """``loudou report rebuild`` brings the summaries level with a bulk-loaded history and
    says how many rows it wrote."""
    out = StringIO()
    assert not summaries.is_fresh()
    call_command("report", "rebuild", stdout=out)
    assert summaries.is_fresh()
    assert out.getvalue().startswith("Rebuilt ")
    scope = _scopes(generated)[0]
    rows = queries.scope_counts(scope)
    plain = queries.furthest_counts(scope.opportunities())
    assert sum(r["n"] for r in rows) == sum(r["n"] for r in plain) > 0
