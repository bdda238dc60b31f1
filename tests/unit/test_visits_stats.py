"""Visit statistics per rep and week: exact counts on controlled data, week boundaries
at local midnight, the far threshold, one query, and the page's table and download."""

import csv
import io
from datetime import date, datetime, time, timedelta

import pytest
from django.utils import timezone

from loudou.activities.queries import week_start
from loudou.activities.visits import services
from loudou.activities.visits.queries import last_weeks, weekly_stats
from loudou.customers.services import create_account
from tests.unit.test_visits_services import NORTH_320, place

pytestmark = pytest.mark.django_db

FAR_5KM = ("31.275400", "121.473700")  # 0.045° north of the account: 5,004 m


def at(monday, day, hour, minute=0):
    """An aware local time ``day`` days after ``monday``."""
    return timezone.make_aware(datetime.combine(monday + timedelta(days=day), time(hour, minute)))


@pytest.fixture
def weeks():
    this = week_start(timezone.localdate())
    return this - timedelta(days=14), this - timedelta(days=7)


@pytest.fixture
def data(org, weeks):
    """east_rep, week A: done near, done far, cancelled; week B: done without check-in,
    one left planned. east_rep2, week A: done with a check-in at an account without
    coordinates."""
    a, b = weeks
    rep, rep2 = org.east_rep, org.east_rep2
    account = place(create_account(actor=rep, name="华东机械"))
    nowhere = create_account(actor=rep2, name="无坐标")

    def visit(owner, acc, when, *, where=None, done=True):
        v = services.plan_visit(owner, account=acc, planned_for=when)
        if where:
            v = services.check_in(v, actor=owner, latitude=where[0], longitude=where[1], at=when)
        if done:
            v = services.record_visit(v, actor=owner, at=when + timedelta(hours=1))
        return v

    visit(rep, account, at(a, 0, 10), where=NORTH_320)
    visit(rep, account, at(a, 2, 15), where=FAR_5KM)
    services.cancel_visit(visit(rep, account, at(a, 4, 9), done=False), actor=rep, reason="改期")
    visit(rep, account, at(b, 1, 10))
    visit(rep, account, at(b, 3, 16), done=False)
    visit(rep2, nowhere, at(a, 1, 11), where=("31.2", "121.4"))


def test_counts_per_rep_and_week(org, weeks, data):
    """Per rep and week: planned, done, cancelled, done with a check-in, far — exact."""
    a, b = weeks
    stats = weekly_stats([a, b], [org.east_rep.pk, org.east_rep2.pk, org.sub_rep.pk])
    rep, rep2 = stats.by_owner[org.east_rep.pk], stats.by_owner[org.east_rep2.pk]
    row = lambda c: (c.planned, c.done, c.cancelled, c.checked_in, c.far)  # noqa: E731
    assert row(rep[a]) == (3, 2, 1, 2, 1)
    assert row(rep[b]) == (2, 1, 0, 0, 0)
    assert row(rep2[a]) == (1, 1, 0, 1, 0)  # no coordinates: never far
    assert row(rep2[b]) == (0, 0, 0, 0, 0)
    assert row(stats.by_owner[org.sub_rep.pk][a]) == (0, 0, 0, 0, 0)
    assert row(stats.owner_total(org.east_rep.pk)) == (5, 3, 1, 2, 1)
    assert row(stats.week_total(a)) == (4, 3, 1, 3, 1)
    assert stats.owner_total(org.east_rep.pk).checked_in_share == pytest.approx(2 / 3)
    assert rep[b].checked_in_share == 0 and rep2[b].checked_in_share is None


def test_far_follows_the_setting(org, weeks, data, settings):
    """Raising LOUDOU_VISIT_FAR_METRES above 5 km leaves no far check-in; lowering it
    under 320 m makes both far."""
    a, _b = weeks
    settings.LOUDOU_VISIT_FAR_METRES = 6000
    assert weekly_stats([a], [org.east_rep.pk]).by_owner[org.east_rep.pk][a].far == 0
    settings.LOUDOU_VISIT_FAR_METRES = 300
    assert weekly_stats([a], [org.east_rep.pk]).by_owner[org.east_rep.pk][a].far == 2


def test_week_boundary_is_local_midnight(org):
    """A visit on Sunday 23:59 local counts in its week, one at Monday 00:00 in the next."""
    account = create_account(actor=org.east_rep, name="边界")
    monday = week_start(timezone.localdate()) - timedelta(days=7)
    services.plan_visit(org.east_rep, account=account, planned_for=at(monday, 6, 23, 59))
    services.plan_visit(org.east_rep, account=account, planned_for=at(monday, 7, 0, 0))
    stats = weekly_stats([monday, monday + timedelta(days=7)], [org.east_rep.pk])
    counts = stats.by_owner[org.east_rep.pk]
    assert [counts[m].planned for m in stats.weeks] == [1, 1]


def test_one_query_whatever_the_weeks(org, data, django_assert_num_queries):
    """Twelve weeks for three people cost one query, like two weeks."""
    people = [org.east_rep.pk, org.east_rep2.pk, org.sub_rep.pk]
    with django_assert_num_queries(1):
        weekly_stats(last_weeks(12), people)
    with django_assert_num_queries(1):
        weekly_stats(last_weeks(2), people)


def test_last_weeks_end_with_this_week():
    """last_weeks(3) is the Mondays of the week before last, last week and this week."""
    day = date(2026, 11, 26)  # a Thursday
    assert [str(m) for m in last_weeks(3, day)] == ["2026-11-09", "2026-11-16", "2026-11-23"]


def test_page_table_and_csv(client, org, weeks, data, english):
    """The manager's visits page shows the team's table; the CSV has one line per
    person and week with the exact counts."""
    a, b = weeks
    client.force_login(org.east_mgr)
    html = client.get("/activities/visits/?weeks=8").content.decode()
    assert html.count('data-testid="stats-row"') == 3  # the three reps of the subtree
    assert 'data-testid="total-planned">6<' in html and 'data-testid="total-done">4<' in html
    response = client.get("/activities/visits/?weeks=8&format=csv")
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert lines[0] == [
        "Person", "Week (Monday)", "Planned", "Done", "Cancelled", "Checked in",
        "Checked-in share", "Far from the address",
    ]  # fmt: skip
    by_key = {(line[0], line[1]): line[2:] for line in lines[1:]}
    assert len(lines) == 1 + 3 * 8
    assert by_key[("east_rep", str(a))] == ["3", "2", "1", "2", "100.0%", "1"]
    assert by_key[("east_rep", str(b))] == ["2", "1", "0", "0", "0.0%", "0"]
    assert by_key[("east_rep2", str(b))] == ["0", "0", "0", "0", "", "0"]


def test_rep_sees_only_own_statistics(client, org, data):
    """A rep's page and download hold only their own row."""
    client.force_login(org.east_rep2)
    html = client.get("/activities/visits/").content.decode()
    assert html.count('data-testid="stats-row"') == 1
    lines = client.get("/activities/visits/?format=csv").content.decode("utf-8-sig").splitlines()
    assert {line.split(",")[0] for line in lines[1:]} == {"east_rep2"}
