"""The roadmap's facts at the edges: weekly activity metrics (one query for every metric
and week) equal the activities app's per-week figures, and counts "since the hire date"
start at local midnight of each rep's own hire date, for reps hired on different days,
without a query per rep."""

from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from loudou.activities import queries as activity_queries
from loudou.activities.services import log_activity
from loudou.customers.models import Account
from loudou.customers.services import create_account
from loudou.onboarding import progress, queries
from loudou.onboarding.models import Metric
from loudou.org.models import Role
from loudou.org.services import create_user

pytestmark = pytest.mark.django_db

TODAY = date(2026, 3, 18)  # a Wednesday
WEEKS = progress.week_starts(TODAY)
ACTIVITY_METRICS = {
    Metric.VISITS, Metric.VISIT_HOURS, Metric.PROSPECTING_HOURS, Metric.ACCOUNTS_RESEARCHED,
}  # fmt: skip


def at(day: date, hour: int, minute: int = 0):
    tz = timezone.get_current_timezone()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


def log(rep, account, when, kind, minutes=None, purpose="follow_up"):
    log_activity(
        rep, account=account, kind=kind, purpose=purpose, occurred_at=when,
        duration_minutes=minutes, outcome="" if kind == "research" else "reached",
    )  # fmt: skip


@pytest.fixture
def reps(org):
    """Three reps, two hired on the same day; each with activities one minute before and
    at local midnight of their hire day and of a Monday, of every kind the metrics read."""
    hires = [TODAY - timedelta(days=10), TODAY - timedelta(days=10), TODAY - timedelta(days=17)]
    made = []
    for i, hired in enumerate(hires):
        rep = create_user(f"new{i}", name=f"new{i}", role=Role.REP, team=org.east,
                          hire_date=hired)  # fmt: skip
        account = create_account(actor=rep, name=f"客户{i}")
        monday = WEEKS[-2 - i]  # a different week for each
        for when in (at(hired, 0, 0) - timedelta(minutes=1), at(hired, 0, 0),
                     at(monday, 0, 0) - timedelta(minutes=1), at(monday, 0, 0)):  # fmt: skip
            log(rep, account, when, "visit", 60 + i)
            log(rep, account, when, "call", 30, "prospecting")
            log(rep, account, when, "research")
        log(rep, account, at(TODAY, 9), "visit")  # no duration: counts, adds no time
        made.append(rep)
    return made


def _reference_weekly(ids):
    """The activities app's figures, one call per metric (the definition)."""
    start, end = WEEKS[0], WEEKS[-1] + timedelta(days=7)
    by = {
        Metric.VISITS: activity_queries.counts_by_owner_and_week(
            start, end, owners=ids, kinds=["visit"]
        ),
        Metric.VISIT_HOURS: activity_queries.minutes_by_owner_and_week(
            start, end, owners=ids, kinds=["visit"]
        ),
        Metric.PROSPECTING_HOURS: activity_queries.minutes_by_owner_and_week(
            start, end, owners=ids, purposes=["prospecting"]
        ),
        Metric.ACCOUNTS_RESEARCHED: activity_queries.counts_by_owner_and_week(
            start, end, owners=ids, kinds=["research"]
        ),
    }
    result = {}
    for metric, per_owner in by.items():
        divisor = 60 if metric in (Metric.VISIT_HOURS, Metric.PROSPECTING_HOURS) else 1
        for owner, weeks in per_owner.items():
            for week, value in weeks.items():
                result.setdefault(owner, {}).setdefault(week, {})[metric] = value / divisor
    return result


def test_weekly_activity_equals_the_activities_figures(reps):
    """All four activity metrics for every week: the same numbers as the activities
    app's per-week counts and minutes, including the activities at 23:59 on a Sunday
    (the week before) and 00:00 on a Monday (the week itself)."""
    ids = [r.pk for r in reps]
    got = queries._weekly_activity(WEEKS, ids, ACTIVITY_METRICS)
    plain = {
        owner: {week: {m: float(v) for m, v in cell.items()} for week, cell in weeks.items()}
        for owner, weeks in got.items()
    }
    assert plain == _reference_weekly(ids)
    # by hand for the first rep (hired Sunday 8 March): the week of Monday 9 March holds
    # the visit at 00:00 that Monday; the week before, those at 23:59 on the 7th and at
    # 00:00 and 23:59 on the 8th
    first = reps[0].pk
    assert got[first][date(2026, 3, 9)][Metric.VISITS] == 1
    assert got[first][date(2026, 3, 2)][Metric.VISITS] == 3


def test_weekly_activity_only_asks_for_the_metrics_in_force(reps):
    """Asking for visits only answers visits only."""
    got = queries._weekly_activity(WEEKS, [reps[0].pk], {Metric.VISITS})
    assert {m for weeks in got.values() for cell in weeks.values() for m in cell} == {Metric.VISITS}


def test_since_hire_starts_at_each_reps_local_midnight(reps):
    """Since the hire date: the activity at 00:00 on the hire day counts, the one at
    23:59 the day before does not — for each rep at their own date, in one query.
    Equals the activities app's totals from each hire date on."""
    hires = {r.pk: r.hire_date for r in reps}
    got = queries._activity_since_hire(hires, ACTIVITY_METRICS)
    for rep in reps:
        start, end = rep.hire_date, TODAY + timedelta(days=1)
        expected = {
            Metric.VISITS: activity_queries.counts_by_owner(
                start, end, owners=[rep.pk], kinds=["visit"]
            ).get(rep.pk, 0),
            Metric.VISIT_HOURS: activity_queries.minutes_by_owner(
                start, end, owners=[rep.pk], kinds=["visit"]
            ).get(rep.pk, 0)
            / 60,
            Metric.PROSPECTING_HOURS: activity_queries.minutes_by_owner(
                start, end, owners=[rep.pk], purposes=["prospecting"]
            ).get(rep.pk, 0)
            / 60,
            Metric.ACCOUNTS_RESEARCHED: activity_queries.counts_by_owner(
                start, end, owners=[rep.pk], kinds=["research"]
            ).get(rep.pk, 0),
        }
        assert {m: float(v) for m, v in got[rep.pk].items()} == pytest.approx(expected)
    # by hand for the first rep: hire-day midnight + the Monday's two + today's visit
    assert got[reps[0].pk][Metric.VISITS] == 4
    assert got[reps[0].pk][Metric.ACCOUNTS_RESEARCHED] == 3


def test_accounts_since_hire_at_the_edges(reps):
    """Accounts created by a rep count from local midnight of their own hire day."""
    for rep in reps:
        before = create_account(actor=rep, name=f"{rep.username} before")
        on = create_account(actor=rep, name=f"{rep.username} on")
        Account.objects.filter(pk=before.pk).update(
            created_at=at(rep.hire_date, 0, 0) - timedelta(minutes=1)
        )
        Account.objects.filter(pk=on.pk).update(created_at=at(rep.hire_date, 0, 0))
    Account.objects.filter(name__startswith="客户").update(
        created_at=at(TODAY - timedelta(days=30), 12)
    )
    hires = {r.pk: r.hire_date for r in reps}
    assert queries._since_hire(Account, "created_by", "created_at", hires) == {
        r.pk: 1 for r in reps
    }
    assert queries._since_hire(Account, "created_by", "created_at", {}) == {}


def test_team_view_goals_equal_each_roadmap_alone(reps, org):
    """Reading many reps at once (each source only for the reps whose goals need it)
    gives every rep the same roadmap as reading that rep alone — with reps in training
    and later bands side by side."""
    senior = create_user("month5", name="month5", role=Role.REP, team=org.east,
                         hire_date=TODAY - timedelta(days=180))  # fmt: skip
    log(senior, create_account(actor=senior, name="老客户"), at(TODAY, 9), "research")
    everyone = [*reps, senior]
    together = dict(queries.roadmaps(everyone, TODAY))
    for rep in everyone:
        assert together[rep] == queries.roadmap(rep, TODAY), rep.username
    researched = [
        g for g in together[reps[0]]["goals"] if g["metric"] == Metric.ACCOUNTS_RESEARCHED
    ]
    assert researched[0]["actual"] == 4  # 3 research activities + 1 account since the hire
