"""The performance list against figures computed by hand from data entered through the
pipeline and activities services; standards rated on read; who sees which rows; and a
query count that does not grow with the number of reps or opportunities."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loudou.activities.services import log_activity
from loudou.analytics.periods import parse_period
from loudou.customers.services import create_account
from loudou.org.services import create_user
from loudou.pipeline import services as pipeline
from loudou.pipeline.models import LostReason
from loudou.targets import performance, services

NOV = parse_period("2026-11")


def at(day, hour=10):
    return datetime(2026, 11, day, hour, tzinfo=timezone.get_current_timezone())


@pytest.fixture
def dcba(db):
    return pipeline.create_pipeline_from_template("dcba", checklist_mode="advisory")


def deal(rep, dcba, account, amount, *, created, closed=None, outcome=None):
    """An opportunity created on ``created``; won or lost ``closed`` after it."""
    opp = pipeline.create_opportunity(
        actor=rep, pipeline=dcba, account=account, name=f"deal {amount}",
        amount=Decimal(amount), when=created,
    )  # fmt: skip
    if outcome == "won":
        pipeline.win_opportunity(opp, actor=rep, when=closed)
    elif outcome == "lost":
        pipeline.lose_opportunity(opp, LostReason.objects.first(), actor=rep, when=closed)
    return opp


def visits(rep, account, n, kind="visit", day=5):
    for _ in range(n):
        log_activity(rep, account=account, kind=kind, outcome="reached", occurred_at=at(day))


@pytest.fixture
def scene(org, dcba):
    """east_rep: two wins (10,000 created 1 Nov won 11 Nov; 30,000 created 1 Oct won 21
    Nov), one loss, one open deal created in November, 3 visits and 2 calls. east_rep2:
    one win of 5,000 (created and won in November), 1 visit. A win in October does not
    count."""
    account = create_account(actor=org.east_rep, name="恒信")
    a2 = create_account(actor=org.east_rep2, name="宏达")
    deal(org.east_rep, dcba, account, 10_000, created=at(1), closed=at(11), outcome="won")
    deal(org.east_rep, dcba, account, 30_000, created=at(1) - timedelta(days=31),
         closed=at(21), outcome="won")  # fmt: skip
    deal(org.east_rep, dcba, account, 7_000, created=at(2), closed=at(3), outcome="lost")
    deal(org.east_rep, dcba, account, 1_000, created=at(4))
    deal(org.east_rep, dcba, account, 99_000, created=at(1) - timedelta(days=40),
         closed=at(1) - timedelta(days=20), outcome="won")  # fmt: skip
    deal(org.east_rep2, dcba, a2, 5_000, created=at(6), closed=at(7), outcome="won")
    visits(org.east_rep, account, 3)
    visits(org.east_rep, account, 2, kind="call")
    visits(org.east_rep2, a2, 1)
    return org


def _row(report, user):
    return next(r for r in report.rows if r.user_id == user.pk)


def test_rep_figures_match_hand_computation(scene, settings):
    """east_rep in November: signed 40,000 (two wins), won 2, lost 1 → win rate 2/3,
    average deal 20,000, cycle (10 + 51 days)/2 = 30.5, new opportunities 3 (created in
    November), activities 5, visits 3."""
    report = performance.build_report(scene.admin, NOV)
    values = _row(report, scene.east_rep).values
    assert values["signed"] == Decimal("40000.00")
    assert values["won_count"] == 2
    assert values["win_rate"] == pytest.approx(2 / 3)
    assert values["avg_deal"] == Decimal("20000.00")
    assert values["cycle_days"] == 30.5
    assert values["new_opportunities"] == 3
    assert (values["activities"], values["visits"]) == (5, 3)


def test_team_row_sums_its_subtree(scene):
    """The East team's row is east_rep + east_rep2 (+ sub_rep, with nothing): signed
    45,000, won 3, win rate 3/4, average deal 15,000, visits 4."""
    report = performance.build_report(scene.admin, NOV, group="team")
    east = next(r for r in report.rows if r.team_id == scene.east.pk)
    assert east.values["signed"] == Decimal("45000.00")
    assert (east.values["won_count"], east.values["visits"]) == (3, 4)
    assert east.values["win_rate"] == pytest.approx(3 / 4)
    assert east.values["avg_deal"] == Decimal("15000.00")
    company = next(r for r in report.rows if r.kind == "company")
    assert company.values["signed"] == Decimal("45000.00")


def test_target_percent_and_tier(scene):
    """A rep target of 30,000 / stretch 38,000 / challenge 50,000 for November: 40,000
    signed is 133% of target and reaches the stretch tier."""
    services.set_target(scene.admin, level="rep", user=scene.east_rep, measure="signed",
                        period="month", start=date(2026, 11, 1), target=30000, stretch=38000,
                        challenge=50000)  # fmt: skip
    row = _row(performance.build_report(scene.admin, NOV), scene.east_rep)
    assert row.percent("signed") == pytest.approx(4 / 3)
    assert row.tier("signed") == "stretch"


def test_changing_a_standard_changes_the_rating(scene):
    """A junior standard of 3 visits a month: east_rep (3) meets it; raised to 4 through
    the service, the same report read again rates east_rep below — nothing cached."""
    std = services.create_standard(scene.admin, measure="visits", period="month",
                                   level="junior", minimum=3)  # fmt: skip
    rating = _row(performance.build_report(scene.admin, NOV), scene.east_rep).ratings[0]
    assert (rating.minimum, rating.actual, rating.meets) == (Decimal("3.00"), 3, True)
    services.update_standard(std, actor=scene.admin, version=std.version, minimum=4)
    rating = _row(performance.build_report(scene.admin, NOV), scene.east_rep).ratings[0]
    assert (rating.minimum, rating.meets) == (Decimal("4.00"), False)


def test_level_standard_overrides_the_any_level_one(scene):
    """A senior-only standard does not apply to a junior; for a junior, the junior
    standard wins over the every-level one of the same measure."""
    services.create_standard(scene.admin, measure="visits", period="month", minimum=10)
    services.create_standard(scene.admin, measure="visits", period="month", level="junior",
                             minimum=2)  # fmt: skip
    services.create_standard(scene.admin, measure="won_count", period="month",
                             level="senior", minimum=5)  # fmt: skip
    ratings = _row(performance.build_report(scene.admin, NOV), scene.east_rep).ratings
    assert [(r.measure, r.minimum, r.meets) for r in ratings] == [("visits", Decimal("2.00"), True)]


def test_month_standard_scales_to_a_quarter(scene):
    """Over Q4 a standard of 2 visits a month asks for 6."""
    services.create_standard(scene.admin, measure="visits", period="month", minimum=2)
    report = performance.build_report(scene.admin, parse_period("2026Q4"))
    rating = _row(report, scene.east_rep).ratings[0]
    assert (rating.minimum, rating.prorated, rating.meets) == (Decimal("6.00"), False, False)


def test_rep_sees_only_themself_and_the_team_average(scene):
    """A rep's list holds one rep row (their own) and the average over the people of
    their team (east_mgr, east_rep, east_rep2: 45,000 / 3 = 15,000 signed)."""
    report = performance.build_report(scene.east_rep2, NOV)
    assert [r.user_id for r in report.rows] == [scene.east_rep2.pk]
    assert report.average.values["signed"] == Decimal("15000.00")
    assert report.average.members == 3


def test_manager_sees_only_their_subtree(scene):
    """south_mgr's list holds south people only; east_mgr's holds east and east_sub."""
    south = {r.user_id for r in performance.build_report(scene.south_mgr, NOV).rows}
    assert south == {scene.south_mgr.pk, scene.south_rep.pk}
    east = {r.user_id for r in performance.build_report(scene.east_mgr, NOV).rows}
    assert east == {scene.east_mgr.pk, scene.east_rep.pk, scene.east_rep2.pk, scene.sub_rep.pk}


def test_ranking_sorts_by_any_measure(scene):
    """Ranking by signed puts east_rep first; bottom-1 by signed is someone with 0."""
    rows = performance.build_report(scene.admin, NOV).rows
    top = performance.sort_rows(rows, "signed", limit=1)
    assert top[0].user_id == scene.east_rep.pk
    bottom = performance.sort_rows(rows, "signed", descending=False, limit=1)
    assert bottom[0].values["signed"] == Decimal("0.00")


def _count_queries(user, period, group="rep"):
    with CaptureQueriesContext(connection) as ctx:
        performance.build_report(user, period, group=group)
    return len(ctx.captured_queries)


@pytest.mark.parametrize("group", ["rep", "team"])
def test_query_count_does_not_grow(scene, dcba, group):
    """Adding ten reps with deals, activities and targets adds no query to the report."""
    services.create_standard(scene.admin, measure="visits", period="month", minimum=1)
    before = _count_queries(scene.admin, NOV, group)
    for i in range(10):
        rep = create_user(f"extra{i}", name=f"extra{i}", team=scene.south)
        account = create_account(actor=rep, name=f"客户{i}")
        deal(rep, dcba, account, 1000 + i, created=at(2), closed=at(3), outcome="won")
        visits(rep, account, 2)
        services.set_target(scene.admin, level="rep", user=rep, measure="visits",
                            period="month", start=date(2026, 11, 1), target=3)  # fmt: skip
    assert _count_queries(scene.admin, NOV, group) == before
