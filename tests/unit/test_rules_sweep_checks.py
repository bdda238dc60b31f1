"""The hourly sweep reads only what changed (issue 6): a rule edited since the previous
run (or its stage limits, or the calendar) re-reads all its records, a record saved
since the previous hourly run or whose last contact an edit moved back is checked
again, everything else is left to the daily run that reads every record; working-hour
due times computed by the database equal the Python clock; rule tasks are created in
bulk, idempotent on their key."""

import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from loudou.activities.services import log_activity, update_activity
from loudou.customers.services import create_account, create_contact
from loudou.leads.services import create_lead
from loudou.notifications.models import Notification
from loudou.pipeline import services as pipeline_services
from loudou.rules import engine
from loudou.rules.calendar import (
    DEFAULT_WEEK,
    Calendar,
    add_working_hours,
    load_calendar,
    working_due_pieces,
)
from loudou.rules.models import Breach, FollowUpRule, Requirement
from loudou.rules.sweep import sweep
from loudou.tasks.models import Task
from loudou.tasks.services import create_system_tasks, create_task
from tests.unit.test_rules_sweep import backdate, only
from tests.unit.test_rules_sweep import default_rule as rule_of

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 9, 29, 14, tzinfo=TZ)  # a Monday
HOUR = timedelta(hours=1, minutes=1)


@pytest.fixture
def account(org):
    account = create_account(actor=org.east_rep, name="恒信科技有限公司")
    return backdate(account, created_at=NOW - timedelta(days=200), grade="C")


def test_runs_read_everything_first_daily_and_when_asked(org, account):
    """The first run, a run asked for as full and the first run a day after the last
    such one read every record; five-minute and hourly runs do not."""
    only(rule_of(Requirement.CONTACT_EVERY, grades=["C"]))
    assert sweep(NOW).exhaustive
    assert not sweep(NOW + timedelta(minutes=5)).exhaustive
    hourly = sweep(NOW + HOUR)
    assert hourly.mode == "full" and not hourly.exhaustive
    assert sweep(NOW + HOUR + timedelta(minutes=1), full=True).exhaustive
    assert not sweep(NOW + 2 * HOUR + timedelta(minutes=1)).exhaustive
    assert sweep(NOW + timedelta(days=1, hours=2)).exhaustive


def test_rule_edited_without_a_trace_is_read_again(org, account):
    """A rule whose N changed (here by SQL, its updated_at untouched) reads all its
    records at the next run: an account called 10 days ago breaks "every 7 days" at
    once, although no record changed."""
    rule = rule_of(Requirement.CONTACT_EVERY, grades=["C"])
    only(rule)
    log_activity(org.east_rep, kind="call", outcome="reached",
                 occurred_at=NOW - timedelta(days=10), account=account)  # fmt: skip
    sweep(NOW)
    sweep(NOW + HOUR)
    assert not Breach.objects.exists()
    FollowUpRule.objects.filter(pk=rule.pk).update(amount=7)
    run = sweep(NOW + HOUR + timedelta(minutes=5))
    assert run.mode == "incremental" and run.counts["rules"][str(rule.pk)]["checked"]
    breach = Breach.objects.get()
    assert (breach.account, breach.due_at) == (account, NOW - timedelta(days=3))


@pytest.mark.parametrize("listed", [2000, 0])
def test_grade_change_is_checked_by_the_hourly_run(org, account, listed, monkeypatch):
    """An opportunity moved from stage C to B makes its account grade B (a grade written
    without touching the account's updated_at; the opportunity carries the trace): the
    next run settles the C breach and the hourly run, which does not read every record,
    finds the B one — with the changed records passed as ids or, when there are more
    than the list holds, as subqueries."""
    monkeypatch.setattr(engine, "SAVED_LIST_MAX", listed)
    c_rule = rule_of(Requirement.CONTACT_EVERY, grades=["C"])
    b_rule = rule_of(Requirement.CONTACT_EVERY, grades=["B"])
    only(c_rule, b_rule)
    pipeline = pipeline_services.create_pipeline_from_template("dcba")
    pipeline.checklist_mode = "advisory"
    pipeline.save()
    stages = list(pipeline.open_stages())
    opp = pipeline_services.create_opportunity(
        actor=org.east_rep, pipeline=pipeline, account=account, name="试点", stage=stages[1]
    )
    log_activity(org.east_rep, kind="call", outcome="reached",
                 occurred_at=NOW - timedelta(days=20), account=account)  # fmt: skip
    assert backdate(account, updated_at=NOW - timedelta(days=30)).grade == "C"
    sweep(NOW)
    first = Breach.objects.get()
    pipeline_services.move_opportunity(opp, stages[2], actor=org.east_rep)
    assert backdate(account, updated_at=NOW - timedelta(days=30)).grade == "B"
    run = sweep(NOW + HOUR)
    assert run.mode == "full" and not run.exhaustive
    first.refresh_from_db()
    assert first.resolution == "out_of_scope"
    assert Breach.objects.open().get().rule == b_rule


def test_untraced_change_waits_for_the_daily_run(org, account):
    """A grade written by SQL (no updated_at) is not seen by the hourly run, and is by
    the next run that reads every record."""
    only(rule_of(Requirement.CONTACT_EVERY, grades=["B"]))
    log_activity(org.east_rep, kind="call", outcome="reached",
                 occurred_at=NOW - timedelta(days=20), account=account)  # fmt: skip
    sweep(NOW)
    backdate(account, grade="B", updated_at=NOW - timedelta(days=30))
    sweep(NOW + HOUR)
    assert not Breach.objects.exists()
    assert sweep(NOW + timedelta(days=1, minutes=5)).exhaustive
    assert Breach.objects.get().account == account


def test_activity_moved_back_is_checked_by_the_hourly_run(org, account):
    """A call edited to a date 20 days back makes the account overdue for "every 14
    days" long ago: the hourly run finds it (its follow-up state was edited)."""
    only(rule_of(Requirement.CONTACT_EVERY, grades=["C"]))
    call = log_activity(org.east_rep, kind="call", outcome="reached",
                        occurred_at=NOW - timedelta(days=2), account=account)  # fmt: skip
    sweep(NOW)
    update_activity(call, actor=org.east_rep, occurred_at=NOW - timedelta(days=20))
    run = sweep(NOW + HOUR)
    assert not run.exhaustive
    breach = Breach.objects.get()
    assert breach.due_at == NOW - timedelta(days=6)


def test_stage_limit_change_rereads_the_stale_rule(org, account):
    """A stage's "stale after" shortened from 14 to 5 days makes a 10-day-old stay
    stale at the next run, through the rule's fingerprint."""
    rule = rule_of(Requirement.STALE_IN_STAGE)
    only(rule)
    pipeline = pipeline_services.create_pipeline_from_template("classic")
    stage = list(pipeline.open_stages())[0]
    pipeline_services.update_stage(stage, stale_after_days=14)
    pipeline_services.create_opportunity(
        actor=org.east_rep, pipeline=pipeline, account=account, name="试点",
        when=NOW - timedelta(days=10),
    )  # fmt: skip
    sweep(NOW)
    sweep(NOW + HOUR)
    assert not Breach.objects.exists()
    pipeline_services.update_stage(stage, stale_after_days=5)
    run = sweep(NOW + HOUR + timedelta(minutes=5))
    assert run.counts["rules"][str(rule.pk)]["checked"]
    assert Breach.objects.get().due_at == NOW - timedelta(days=5)


# --- working hours in SQL ------------------------------------------------------------------


def test_working_due_pieces_equal_the_clock():
    """Cut into pieces, the working-hours due time equals add_working_hours at every
    break point, on both sides of it, and at random moments, with holidays and make-up
    days (调休)."""
    cal = Calendar(
        week=DEFAULT_WEEK, holidays=frozenset({date(2025, 10, 1), date(2025, 10, 2)}),
        workdays={date(2025, 9, 28): 0}, tz=TZ,
    )  # fmt: skip
    low, high = datetime(2025, 9, 20, 3, tzinfo=TZ), datetime(2025, 10, 8, 20, tzinfo=TZ)
    rng = random.Random(6)
    for hours in (1, 5, 9, 0.5):
        pieces = working_due_pieces(low, high, hours, cal)
        assert pieces[0].start == low and pieces[-1].end == high + timedelta(microseconds=1)
        assert all(a.end == b.start for a, b in zip(pieces, pieces[1:], strict=False))
        moments = [m for p in pieces for m in (p.start, p.end - timedelta(microseconds=1))]
        span = int((high - low).total_seconds())
        moments += [low + timedelta(seconds=rng.randrange(span)) for _ in range(500)]
        for moment in moments:
            piece = next(p for p in pieces if p.start <= moment < p.end)
            assert piece.due(moment) == add_working_hours(moment, hours, cal), (hours, moment)


def test_first_contact_due_times_from_the_database_equal_the_clock(org):
    """Leads that arrived at all hours of a week (weekend and evenings included) get
    breaches due exactly when five working hours after their arrival end."""
    rule = rule_of(Requirement.FIRST_CONTACT_WITHIN)
    only(rule)
    arrivals = [NOW - timedelta(hours=h, minutes=7 * h) for h in range(6, 150, 7)]
    for i, arrived in enumerate(arrivals):
        lead, _d = create_lead(actor=org.east_rep, owner=org.east_rep, name=f"线索{i}")
        backdate(lead, created_at=arrived, owned_since=arrived)
    sweep(NOW)
    calendar = load_calendar()
    rows = list(Breach.objects.values_list("basis_at", "due_at"))
    assert rows and all(due <= NOW for _basis, due in rows)
    assert sorted(rows) == sorted(
        (basis, add_working_hours(basis, 5, calendar)) for basis, _due in rows
    )
    expected = [a for a in arrivals if add_working_hours(a, 5, calendar) <= NOW]
    assert sorted(b for b, _d in rows) == sorted(expected)


# --- tasks in bulk -----------------------------------------------------------------------------


def _row(org, key, **extra):
    return {"title": "回访", "owner_id": org.east_rep.pk, "key": key, "kind": "visit",
            "due_at": NOW, "source": "rule", **extra}  # fmt: skip


def test_bulk_tasks_are_idempotent_on_key(org, account):
    """create_system_tasks creates one task per new key, none for a key create_task
    used before or twice in the rows; the owner is its assignee and a contact brings its
    account, as with create_task."""
    create_task(None, title="已有", owner=org.east_rep, key="k1")
    contact = create_contact(account, actor=org.east_rep, name="李四")
    made = create_system_tasks([
        _row(org, "k1"), _row(org, "k2", contact_id=contact.pk), _row(org, "k2"),
        _row(org, "k3"),
    ])  # fmt: skip
    assert made == 2
    assert sorted(Task.objects.values_list("key", flat=True)) == ["k1", "k2", "k3"]
    task = Task.objects.get(key="k2")
    assert (task.account, task.contact, task.source) == (account, contact, "rule")
    assert list(task.assignees.values_list("pk", flat=True)) == [org.east_rep.pk]
    assert Task.objects.get(key="k1").title == "已有"
    assert create_system_tasks([_row(org, "k2"), _row(org, "k3")]) == 0
    assert Task.objects.count() == 3


def test_bulk_tasks_reads_do_not_grow(org):
    """A thousand tasks are read and checked with the same few queries as ten: only
    the INSERT batches grow (one per thousand rows on PostgreSQL)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    reads = []
    for n in (10, 1000):
        with CaptureQueriesContext(connection) as queries:
            create_system_tasks([_row(org, f"q{n}-{i}") for i in range(n)])
        reads.append(sum(1 for q in queries if not q["sql"].startswith("INSERT")))
    assert reads[0] == reads[1] <= 4
    assert Task.objects.filter(key__startswith="q").count() == 1010


def test_sweep_tasks_and_notifications_once(org, account):
    """The revisit rule's tasks (now created in bulk) and its reminders are made once:
    a second sweep at the same moment adds none."""
    rule = rule_of(Requirement.REVISIT)
    only(rule)
    others = [create_account(actor=org.east_rep, name=f"客户{i}") for i in range(3)]
    for a in [account, *others]:
        backdate(a, revisit_class="20", created_at=NOW - timedelta(days=100))
    sweep(NOW)
    counts = (Task.objects.count(), Notification.objects.count())
    assert counts == (4, 1)
    assert set(Task.objects.values_list("breach__account", flat=True)) == {
        a.pk for a in [account, *others]
    }
    sweep(NOW)
    assert (Task.objects.count(), Notification.objects.count()) == counts


def test_birthday_added_later_the_same_day_is_found(org, account):
    """Later runs of the same day read only the contacts and accounts that changed: a
    contact added with a birthday in two days is greeted by the next run, a contact
    seen before is not found twice."""
    rule = rule_of(Requirement.GREETING, occasions=["birthday"])
    only(rule)
    create_contact(account, actor=org.east_rep, name="李四", birthday=date(1988, 10, 1))
    sweep(NOW)
    assert Breach.objects.count() == 1
    late = create_contact(account, actor=org.east_rep, name="王五", birthday=date(1990, 9, 30))
    run = sweep(NOW + timedelta(minutes=5))
    assert run.mode == "incremental" and run.opened == 1
    assert Breach.objects.filter(contact=late).count() == 1
    assert Task.objects.filter(contact=late).count() == 1
