"""The onboarding roadmap computed from real records: reps at every tenure, with a fixed
"today", against activities, accounts, opportunities and targets made through those
apps' services (DOMAIN §9, docs/onboarding.md)."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loudou.activities.services import log_activity
from loudou.customers.models import Account
from loudou.customers.services import create_account
from loudou.onboarding import progress, queries
from loudou.onboarding.models import Band, Metric, Standard
from loudou.org.models import Role
from loudou.org.services import create_user
from loudou.pipeline.services import (
    create_opportunity,
    create_pipeline_from_template,
    win_opportunity,
)
from loudou.targets.services import set_target

pytestmark = pytest.mark.django_db

TODAY = date(2026, 3, 18)  # a Wednesday: this week began on Monday 16 March
LAST_WEEK = date(2026, 3, 9)  # the last finished week, 9–15 March
TRAINING = timedelta(weeks=4)  # the default training band


def at(day: date, hour: int = 10):
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.get_current_timezone())


def quota_clock_hire(months_ago: float) -> date:
    """A hire date whose quota clock (end of training) started ``months_ago`` ago."""
    return TODAY - timedelta(days=round(months_ago * 30.5)) - TRAINING


@pytest.fixture
def pipeline():
    return create_pipeline_from_template("dcba", checklist_mode="advisory")


@pytest.fixture
def rep(org):
    def make(username, hire_date):
        return create_user(
            username, name=username, role=Role.REP, team=org.east, hire_date=hire_date
        )

    return make


def accounts(rep, n, day):
    made = [create_account(actor=rep, name=f"{rep.username} account {i}") for i in range(n)]
    Account.objects.filter(pk__in=[a.pk for a in made]).update(created_at=at(day))
    return made


def activity(rep, account, day, kind, minutes=None, purpose="follow_up", n=1):
    for _ in range(n):
        log_activity(
            rep, account=account, kind=kind, purpose=purpose, occurred_at=at(day),
            duration_minutes=minutes, outcome="" if kind == "research" else "reached",
        )  # fmt: skip


def deal(rep, pipeline, code, amount, *, won_on=None, account=None):
    account = account or create_account(actor=rep, name=f"deal {code} {amount}")
    stage = pipeline.stages.get(code=code)
    opp = create_opportunity(
        actor=rep, pipeline=pipeline, stage=stage, name=f"{code} {amount}", account=account,
        amount=Decimal(amount), when=at(TODAY - timedelta(days=60)),
    )  # fmt: skip
    if won_on:
        opp = win_opportunity(opp, actor=rep, when=at(won_on))
    return opp


def year_quota(admin, rep, amount):
    set_target(
        admin, level="rep", user=rep, measure="signed", period="year",
        start=date(TODAY.year, 1, 1), target=Decimal(amount),
    )  # fmt: skip


def goal(p, metric, index=0):
    return [g for g in p["goals"] if g["metric"] == metric][index]


def weekly(p, metric):
    return next(w for w in p["weekly"] if w["metric"] == metric)


# --- the calendar ------------------------------------------------------------------------


def test_no_hire_date_says_so(rep):
    """A rep without a hire date has no band, no standards and nothing behind."""
    p = queries.roadmap(rep("nohire", None), TODAY)
    assert p["status"] == progress.NO_HIRE_DATE
    assert (p["band"], p["weekly"], p["goals"], p["behind_count"]) == (None, [], [], 0)


def test_graduated_after_the_last_band(rep):
    """Twelve months after training ended the rep has graduated: timeline, no standards."""
    p = queries.roadmap(rep("old", quota_clock_hire(12.5)), TODAY)
    assert p["status"] == progress.GRADUATED
    assert p["band"] is None and p["goals"] == []
    assert [s["state"] for s in p["timeline"]] == ["past"] * 5


def test_timeline_places_training_then_month_bands():
    """Training runs four weeks from the hire date; month 0 starts when it ends; a
    month band ends on the same day of the month (clamped to the month's end)."""
    bands = [
        progress.BandSpec(1, "training", is_training=True, duration_weeks=4),
        progress.BandSpec(2, "0-3", from_month=0, to_month=3),
    ]
    spans = progress.timeline(date(2025, 12, 3), bands)
    assert [(s.start, s.end) for s in spans] == [
        (date(2025, 12, 3), date(2025, 12, 31)),
        (date(2025, 12, 31), date(2026, 3, 31)),
    ]
    assert progress.add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)


# --- each tenure -------------------------------------------------------------------------


def test_training_rep_goals_counted_since_hire(rep, pipeline):
    """In week 2 of training: accounts created + research activities since the hire date
    count towards "20 researched" (on track at 15 of a pro-rata 5); no potential account
    yet is behind the pro-rata 1.3 of 5. Work before the hire date does not count."""
    hire = TODAY - timedelta(days=10)
    r = rep("trainee", hire)
    made = accounts(r, 12, hire + timedelta(days=1))
    activity(r, made[0], hire + timedelta(days=2), "research", n=3)
    activity(r, made[0], hire - timedelta(days=3), "research", n=5)  # before the hire
    p = queries.roadmap(r, TODAY)
    assert (p["status"], p["week"], p["month"]) == (progress.ONBOARDING, 2, None)
    assert p["band_id"] == Band.objects.get(is_training=True).pk
    researched = goal(p, Metric.ACCOUNTS_RESEARCHED)
    assert (researched["actual"], researched["expected"], researched["status"]) == (
        Decimal("15.0"), Decimal("5.0"), progress.OPEN,
    )  # fmt: skip
    potential = goal(p, Metric.POTENTIAL_ACCOUNTS)
    assert (potential["actual"], potential["expected"], potential["status"]) == (
        Decimal(0), Decimal("1.3"), progress.BEHIND,
    )  # fmt: skip
    assert [b["metric"] for b in p["behind"]] == [Metric.POTENTIAL_ACCOUNTS]


def month_one_rep(rep, pipeline):
    """A rep 1.5 months into the quota clock who met every weekly standard last week."""
    r = rep("month1", quota_clock_hire(1.5))
    made = accounts(r, 10, LAST_WEEK + timedelta(days=1))
    activity(r, made[0], LAST_WEEK + timedelta(days=2), "call", 180, "prospecting", n=3)
    activity(r, made[1], LAST_WEEK + timedelta(days=3), "visit", 300, n=2)
    activity(r, made[1], TODAY, "visit", 120)  # this week so far
    for code in ("C", "C", "B"):
        deal(r, pipeline, code, 10000)
    return r


def test_month_one_weekly_standards_met_last_week(rep, pipeline):
    """Months 0–3: last week 10 new profiles, 9 h prospecting and 10 h of visits meet
    ≥10, ≥8 h and ≥10 h; this week's 2 h of visits is still open, not behind."""
    r = month_one_rep(rep, pipeline)
    p = queries.roadmap(r, TODAY)
    assert p["month"] == 1
    assert [c["week"] for c in weekly(p, Metric.NEW_ACCOUNTS)["cells"]][-2:] == [
        LAST_WEEK, date(2026, 3, 16),
    ]  # fmt: skip
    assert [(w["metric"], w["cells"][-2]["actual"], w["cells"][-2]["status"])
            for w in p["weekly"]] == [
        (Metric.NEW_ACCOUNTS, Decimal("10.0"), progress.MET),
        (Metric.PROSPECTING_HOURS, Decimal("9.0"), progress.MET),
        (Metric.VISIT_HOURS, Decimal("10.0"), progress.MET),
    ]  # fmt: skip
    assert weekly(p, Metric.VISIT_HOURS)["this_week"]["actual"] == Decimal("2.0")
    assert weekly(p, Metric.VISIT_HOURS)["this_week"]["status"] == progress.OPEN
    # three open deals at C or beyond (win rate ≥ 25%), one at B or beyond (≥ 50%)
    assert goal(p, Metric.OPPORTUNITIES_AT_STAGE, 0)["actual"] == 3
    assert goal(p, Metric.OPPORTUNITIES_AT_STAGE, 1)["actual"] == 1
    assert goal(p, Metric.POTENTIAL_ACCOUNTS)["actual"] == 3
    assert [b for b in p["behind"] if b["week"]] == []


def test_a_changed_standard_changes_the_verdict(rep, pipeline):
    """Raising "new profiles a week" from 10 to 11 turns last week's 10 into behind."""
    r = month_one_rep(rep, pipeline)
    before = queries.roadmap(r, TODAY)
    assert Metric.NEW_ACCOUNTS not in [b["metric"] for b in before["behind"]]
    Standard.objects.filter(metric=Metric.NEW_ACCOUNTS, scope="weekly").update(value=11)
    after = queries.roadmap(r, TODAY)
    assert weekly(after, Metric.NEW_ACCOUNTS)["cells"][-2]["status"] == progress.BEHIND
    assert [b["metric"] for b in after["behind"] if b["week"]] == [Metric.NEW_ACCOUNTS]
    assert after["behind_count"] == before["behind_count"] + 1


def test_month_four_range_coverage_and_sales(org, rep, pipeline):
    """Months 3–6: 5 visits last week is behind "6–8"; 9 would be met (above the range
    still meets "at least 6"). Coverage = weighted open pipeline ÷ the quota of the rest
    of the year: 500,000 ÷ (1,200,000 × 289/365) = 52.6% ≥ 45%. One sale won since hire."""
    r = rep("month4", quota_clock_hire(4.2))
    made = accounts(r, 1, LAST_WEEK)
    activity(r, made[0], LAST_WEEK, "visit", 60, n=5)
    activity(r, made[0], LAST_WEEK - timedelta(days=7), "visit", 60, n=9)
    deal(r, pipeline, "B", 1_000_000)
    deal(r, pipeline, "A", 50_000, won_on=TODAY - timedelta(days=20))
    year_quota(org.admin, r, 1_200_000)
    p = queries.roadmap(r, TODAY)
    assert p["month"] == 4
    cells = weekly(p, Metric.VISITS)["cells"]
    assert [(c["actual"], c["status"]) for c in cells[-3:-1]] == [
        (Decimal("9.0"), progress.MET), (Decimal("5.0"), progress.BEHIND),
    ]  # fmt: skip
    assert goal(p, Metric.COVERAGE)["actual"] == Decimal("52.6")
    assert goal(p, Metric.COVERAGE)["status"] == progress.MET
    assert goal(p, Metric.SALES)["actual"] == Decimal(1)
    assert goal(p, Metric.SALES)["status"] == progress.MET


def test_no_quota_set_is_not_zero(rep, pipeline):
    """Without a year target, coverage says "no quota" rather than 0% or an error, and
    it does not count as behind."""
    r = rep("noquota", quota_clock_hire(4.2))
    deal(r, pipeline, "B", 100_000)
    p = queries.roadmap(r, TODAY)
    coverage = goal(p, Metric.COVERAGE)
    assert (coverage["actual"], coverage["status"]) == (None, progress.NO_QUOTA)
    assert Metric.COVERAGE not in [b["metric"] for b in p["behind"]]


def test_month_seven_half_the_year_quota(org, rep, pipeline):
    """Months 6–9: 600,000 won this year of a 1,000,000 quota is 60% ≥ 50%; a deal won
    last year does not count."""
    r = rep("month7", quota_clock_hire(7.3))
    deal(r, pipeline, "A", 600_000, won_on=TODAY - timedelta(days=30))
    deal(r, pipeline, "A", 900_000, won_on=date(TODAY.year - 1, 12, 20))
    year_quota(org.admin, r, 1_000_000)
    p = queries.roadmap(r, TODAY)
    assert p["month"] == 7
    done = goal(p, Metric.YEAR_QUOTA_DONE)
    assert (done["actual"], done["status"]) == (Decimal("60.0"), progress.MET)


def test_month_ten_coverage_behind(org, rep, pipeline):
    """Months 9–12: a weighted pipeline of 80,000 against the rest-of-year quota of
    1,000,000 × 289/365 is 10.1%, behind the pro-rata share of 150%."""
    r = rep("month10", quota_clock_hire(10.1))
    deal(r, pipeline, "A", 100_000)  # 80% → 80,000 weighted
    year_quota(org.admin, r, 1_000_000)
    p = queries.roadmap(r, TODAY)
    assert p["month"] == 10
    coverage = goal(p, Metric.COVERAGE)
    assert (coverage["actual"], coverage["status"]) == (Decimal("10.1"), progress.BEHIND)
    assert Metric.COVERAGE in [b["metric"] for b in p["behind"]]


# --- the pure rules ----------------------------------------------------------------------


def test_goal_is_not_behind_in_the_first_week_of_a_band():
    """Pro-rata counts whole weeks: in the band's first week nothing is expected yet."""
    band = progress.BandSpec(1, "b", from_month=0, to_month=3)
    span = progress.Span(band, date(2026, 3, 16), date(2026, 6, 16))
    standard = progress.StandardSpec(1, Metric.POTENTIAL_ACCOUNTS, "goal", Decimal(15))
    assert progress.goal_status(standard, Decimal(0), span, date(2026, 3, 22)) == (
        progress.OPEN, Decimal("0.0"),
    )  # fmt: skip
    assert progress.goal_status(standard, Decimal(0), span, date(2026, 3, 23))[0] == (
        progress.BEHIND
    )
