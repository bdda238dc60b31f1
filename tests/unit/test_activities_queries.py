"""Activity queries other apps build on: counts, minutes and visits per owner over local
dates, aggregated by the database."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from loudou.activities import queries
from loudou.activities.models import Activity
from loudou.customers.services import create_account
from loudou.org.models import User

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(y, m, d, hh=10, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


@pytest.fixture
def logged(org, settings):
    """A hand-made week of activities (Shanghai time) for east_rep, east_rep2 and
    south_rep, and the expected numbers worked out by hand below each test."""
    settings.TIME_ZONE = "Asia/Shanghai"
    account = create_account(actor=org.east_rep, name="华东机械")
    rows = [
        # owner, kind, purpose, when, minutes
        (org.east_rep, "call", "prospecting", at(2025, 3, 3, 0, 0), 5),  # first instant: in
        (org.east_rep, "call", "follow_up", at(2025, 3, 4), None),
        (org.east_rep, "visit", "follow_up", at(2025, 3, 5), 90),
        (org.east_rep, "visit", "service", at(2025, 3, 9, 23, 59), 30),  # last minute: in
        (org.east_rep, "visit", "service", at(2025, 3, 10, 0, 0), 60),  # end: out
        (org.east_rep2, "wechat", "prospecting", at(2025, 3, 6), 10),
        (org.east_rep2, "visit", "prospecting", at(2025, 3, 2, 23, 59), 45),  # before: out
        (org.south_rep, "email", "service", at(2025, 3, 7), None),
    ]
    Activity.objects.bulk_create(
        Activity(
            owner=o,
            kind=k,
            purpose=p,
            occurred_at=w,
            duration_minutes=m,
            account=account,
            outcome="reached",
        )  # fmt: skip
        for o, k, p, w, m in rows
    )
    return org


START, END = date(2025, 3, 3), date(2025, 3, 10)


def test_counts_per_owner_over_local_days(logged):
    """Counts group by owner over local days: the first instant of ``start`` counts, the
    first instant of ``end`` does not."""
    o = logged
    assert queries.counts_by_owner(START, END) == {
        o.east_rep.pk: 4,
        o.east_rep2.pk: 1,
        o.south_rep.pk: 1,
    }


def test_counts_filtered_by_kind_purpose_and_owner(logged):
    """Kinds, purposes and owners (ids or a queryset) narrow the counts."""
    o = logged
    assert queries.counts_by_owner(START, END, kinds=["visit"]) == {o.east_rep.pk: 2}
    assert queries.counts_by_owner(START, END, purposes=["prospecting"]) == {
        o.east_rep.pk: 1,
        o.east_rep2.pk: 1,
    }
    assert queries.counts_by_owner(START, END, owners=[o.east_rep2.pk, o.south_rep.pk]) == {
        o.east_rep2.pk: 1,
        o.south_rep.pk: 1,
    }
    team = User.objects.filter(team=o.east)
    assert queries.counts_by_owner(START, END, owners=team, kinds=["call", "wechat"]) == {
        o.east_rep.pk: 2,
        o.east_rep2.pk: 1,
    }


def test_minutes_per_owner_skip_missing_durations(logged):
    """Minutes are summed per owner; an activity without a duration adds nothing and an
    owner with no duration at all is absent (5 + 90 + 30 for east_rep)."""
    o = logged
    assert queries.minutes_by_owner(START, END) == {o.east_rep.pk: 125, o.east_rep2.pk: 10}
    assert queries.minutes_by_owner(START, END, kinds=["visit"], purposes=["service"]) == {
        o.east_rep.pk: 30
    }


def test_counts_are_one_grouped_query(logged, django_assert_num_queries):
    """The database does the grouping: one query whatever the number of rows."""
    with django_assert_num_queries(1):
        queries.counts_by_owner(START, END, owners=User.objects.filter(team=logged.east))


def test_visits_by_week_starts_on_local_monday(logged):
    """Visits are counted per owner and local week (Monday): the visit on Sunday 23:59
    belongs to the week of 3 March, the one at Monday 00:00 to the week of 10 March, the
    one on Sunday 2 March 23:59 to the week of 24 February."""
    o = logged
    result = queries.visits_by_week(date(2025, 2, 24), date(2025, 3, 17))
    assert result == {
        o.east_rep.pk: {date(2025, 3, 3): 2, date(2025, 3, 10): 1},
        o.east_rep2.pk: {date(2025, 2, 24): 1},
    }


def test_counts_and_minutes_per_week_in_one_query(logged, django_assert_num_queries):
    """Counts and minutes per owner and local week, each in one query; a week cut by
    ``end`` counts only its days inside (the visit at Monday 10 March 00:00 is out)."""
    o = logged
    with django_assert_num_queries(1):
        counts = queries.counts_by_owner_and_week(START, END, kinds=["call", "visit"])
    assert counts == {o.east_rep.pk: {date(2025, 3, 3): 4}}
    with django_assert_num_queries(1):
        minutes = queries.minutes_by_owner_and_week(date(2025, 2, 26), END)
    assert minutes == {
        o.east_rep.pk: {date(2025, 3, 3): 125},
        o.east_rep2.pk: {date(2025, 2, 24): 45, date(2025, 3, 3): 10},
    }
