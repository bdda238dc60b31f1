"""The rule sweep with a controlled clock: every default rule finds what it should, at
the moment it should (working hours included), acts once, and settles its breaches when
the requirement is met or no longer applies (DOMAIN §6; loudou.rules.sweep)."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from loudou.activities.models import Activity
from loudou.activities.services import delete_activity, log_activity, update_activity
from loudou.customers.services import create_account, create_contact, update_account
from loudou.leads.models import PublicPool
from loudou.leads.services import create_lead
from loudou.notifications.models import Notification
from loudou.pipeline import services as pipeline_services
from loudou.rules import services
from loudou.rules.calendar import add_working_hours, load_calendar
from loudou.rules.models import AccountFollowUp, Breach, FollowUpRule, Requirement, SweepRun
from loudou.rules.sweep import sweep
from loudou.tasks.models import Task

TZ = ZoneInfo("Asia/Shanghai")


def at(y, m, d, h=0, mi=0):
    return datetime(y, m, d, h, mi, tzinfo=TZ)


# Monday 29 September 2025, 14:00 in Shanghai.
NOW = at(2025, 9, 29, 14)


def default_rule(requirement, **conditions) -> FollowUpRule:
    """The shipped rule of ``requirement`` whose conditions include ``conditions``."""
    for rule in FollowUpRule.objects.filter(requirement=requirement):
        if all(rule.conditions.get(k) == v for k, v in conditions.items()):
            return rule
    raise LookupError(requirement)


def only(*rules):
    """Switch every other rule off, so a sweep shows one rule's doing."""
    FollowUpRule.objects.exclude(pk__in=[r.pk for r in rules]).update(is_active=False)


def backdate(obj, **fields):
    type(obj).objects.filter(pk=obj.pk).update(**fields)
    obj.refresh_from_db()
    return obj


def told() -> set[str]:
    rows = Notification.objects.filter(kind="rule_breach")
    return set(rows.values_list("user__username", flat=True))


def call(user, when, outcome="reached", **links):
    return log_activity(user, kind="call", outcome=outcome, occurred_at=when, **links)


@pytest.fixture
def lead(org):
    lead, _dups = create_lead(actor=org.east_rep, owner=org.east_rep, name="张三", company="恒信")
    # Arrived on Friday 26 September at 17:00.
    return backdate(lead, created_at=at(2025, 9, 26, 17), owned_since=at(2025, 9, 26, 17))


@pytest.fixture
def account(org):
    account = create_account(actor=org.east_rep, name="恒信科技有限公司")
    return backdate(account, created_at=at(2025, 6, 1, 10))


# --- first contact within 5 working hours ----------------------------------------------


def test_new_lead_breaches_after_five_working_hours_not_before(org, lead, english):
    """A lead that arrived on Friday at 17:00 has one working hour on Friday and four on
    Monday: at 13:59 on Monday it is not late, at 14:00 it is — one breach, due 14:00,
    and its owner and the owner's manager are told."""
    rule = default_rule(Requirement.FIRST_CONTACT_WITHIN)
    only(rule)
    sweep(at(2025, 9, 29, 13, 59))
    assert not Breach.objects.exists()
    sweep(NOW)
    breach = Breach.objects.get()
    assert (breach.rule, breach.lead, breach.owner) == (rule, lead, org.east_rep)
    assert breach.due_at == NOW
    assert breach.basis_at == at(2025, 9, 26, 17)
    assert told() == {"east_rep", "east_mgr"}


def test_lead_contacted_in_time_has_no_breach(org, lead):
    """A call on Monday morning meets the five hours: nothing is found."""
    only(default_rule(Requirement.FIRST_CONTACT_WITHIN))
    call(org.east_rep, at(2025, 9, 29, 10), lead=lead)
    sweep(NOW)
    assert not Breach.objects.exists()


def test_contact_settles_the_breach_at_once(org, lead):
    """Logging a call on a late lead settles its breach immediately (the listener), as
    met, without waiting for the next sweep."""
    only(default_rule(Requirement.FIRST_CONTACT_WITHIN))
    sweep(NOW)
    breach = Breach.objects.get()
    call(org.east_rep, at(2025, 9, 29, 15), outcome="not_reached", lead=lead)
    breach.refresh_from_db()
    assert breach.resolution == "met"
    assert breach.resolved_at is not None


def test_without_working_hours_the_clock_runs_at_night(org, lead):
    """The same rule counting every hour makes the Friday 17:00 lead late at 22:00."""
    rule = default_rule(Requirement.FIRST_CONTACT_WITHIN)
    only(rule)
    FollowUpRule.objects.filter(pk=rule.pk).update(use_working_hours=False)
    sweep(at(2025, 9, 26, 21, 59))
    assert not Breach.objects.exists()
    sweep(at(2025, 9, 26, 22))
    assert Breach.objects.get().due_at == at(2025, 9, 26, 22)


# --- grade cadence ---------------------------------------------------------------------


def test_grade_c_account_is_late_after_fourteen_days_without_contact(org, account):
    """A grade C account last called 15 days ago breaches "every 14 days", due 14 days
    after that call; one called 13 days ago does not."""
    rule = default_rule(Requirement.CONTACT_EVERY, grades=["C"])
    only(rule)
    other = backdate(create_account(actor=org.east_rep, name="华通"), created_at=at(2025, 6, 1))
    for a in (account, other):
        backdate(a, grade="C")
    call(org.east_rep, NOW - timedelta(days=15), account=account)
    call(org.east_rep, NOW - timedelta(days=13), account=other)
    sweep(NOW)
    breach = Breach.objects.get()
    assert breach.account == account
    assert breach.due_at == NOW - timedelta(days=1)


def test_grade_change_settles_the_cadence_breach(org, account):
    """The breach of "grade C every 14 days" is settled as "no longer applies" once the
    account is grade B (whose own 7-day rule then finds it)."""
    c_rule = default_rule(Requirement.CONTACT_EVERY, grades=["C"])
    b_rule = default_rule(Requirement.CONTACT_EVERY, grades=["B"])
    only(c_rule, b_rule)
    backdate(account, grade="C")
    call(org.east_rep, NOW - timedelta(days=20), account=account)
    sweep(NOW)
    first = Breach.objects.get()
    backdate(account, grade="B")
    sweep(NOW + timedelta(minutes=5), full=True)
    first.refresh_from_db()
    assert first.resolution == "out_of_scope"
    assert Breach.objects.open().get().rule == b_rule


# --- revisit interval ------------------------------------------------------------------


def test_revisit_interval_breaches_and_creates_a_visit_task(org, account, english):
    """An account with the 20-day revisit interval, last visited 21 days ago, breaches
    the revisit rule and its owner gets a visit task linked to the breach."""
    rule = default_rule(Requirement.REVISIT)
    only(rule)
    backdate(account, revisit_class="20")
    visited = NOW - timedelta(days=21)
    log_activity(
        org.east_rep, kind="visit", outcome="visited", occurred_at=visited, account=account
    )
    sweep(NOW)
    breach = Breach.objects.get()
    task = Task.objects.get(breach=breach)
    assert (task.kind, task.owner, task.account) == ("visit", org.east_rep, account)
    assert task.source == "rule"
    assert task.title == f"Revisit: {account}"


def test_paused_revisit_is_not_checked_and_pausing_settles(org, account):
    """Revisit status "pause" takes an account out of the rule: its open breach is
    settled as no longer applying at the next (full) sweep."""
    only(default_rule(Requirement.REVISIT))
    backdate(account, revisit_class="40")
    call(org.east_rep, NOW - timedelta(days=41), account=account)
    sweep(NOW)
    breach = Breach.objects.get()
    backdate(account, revisit_status="pause")
    sweep(NOW + timedelta(minutes=5), full=True)
    breach.refresh_from_db()
    assert breach.resolution == "out_of_scope"


# --- stale opportunities ----------------------------------------------------------------


@pytest.fixture
def classic(db):
    pipeline = pipeline_services.create_pipeline_from_template("classic")
    pipeline.checklist_mode = "advisory"
    pipeline.save()
    return pipeline


def test_stale_opportunity_breaches_and_settles_when_moved(org, account, classic):
    """An opportunity 15 days in "interest" (stale after 14) breaches, its owner and
    manager are told; moving it on settles the breach as moved."""
    only(default_rule(Requirement.STALE_IN_STAGE))
    entered = NOW - timedelta(days=15)
    opp = pipeline_services.create_opportunity(
        actor=org.east_rep, pipeline=classic, account=account, name="试点", when=entered
    )
    sweep(NOW)
    breach = Breach.objects.get()
    assert (breach.opportunity, breach.due_at) == (opp, entered + timedelta(days=14))
    assert told() == {"east_rep", "east_mgr"}
    stages = list(classic.open_stages())
    pipeline_services.move_opportunity(opp, stages[1], actor=org.east_rep)
    sweep(NOW + timedelta(minutes=5))
    breach.refresh_from_db()
    assert breach.resolution == "moved"


def test_lost_opportunity_settles_as_closed(org, account, classic):
    """Closing a stale opportunity settles its breach as closed."""
    only(default_rule(Requirement.STALE_IN_STAGE))
    opp = pipeline_services.create_opportunity(
        actor=org.east_rep, pipeline=classic, account=account, name="试点",
        when=NOW - timedelta(days=30),
    )  # fmt: skip
    sweep(NOW)
    pipeline_services.ensure_lost_reasons()
    from loudou.pipeline.models import LostReason

    pipeline_services.lose_opportunity(opp, LostReason.objects.first(), actor=org.east_rep)
    sweep(NOW + timedelta(minutes=5))
    assert Breach.objects.get().resolution == "closed"


# --- greetings --------------------------------------------------------------------------


def test_birthday_greeting_task_three_days_ahead(org, account, english):
    """A contact born on 1 October gets a greeting task on Monday 29 September (three
    days ahead), due at 09:00 on the day; the breach is late only after that day."""
    only(default_rule(Requirement.GREETING, occasions=["birthday"]))
    contact = create_contact(account, actor=org.east_rep, name="李四", birthday=date(1988, 10, 1))
    far = create_contact(account, actor=org.east_rep, name="王五", birthday=date(1988, 10, 5))
    sweep(NOW)
    breach = Breach.objects.get()
    assert breach.contact == contact and far.breaches.count() == 0
    assert breach.due_at == at(2025, 10, 2)
    task = Task.objects.get(breach=breach)
    assert (task.kind, task.due_at, task.contact) == ("wechat", at(2025, 10, 1, 9), contact)
    assert task.title == f"Birthday greeting: 李四 · {account}"
    assert not Breach.objects.late(NOW).exists()


def test_greeting_met_by_a_call_on_the_day(org, account):
    """A call with the account on the birthday meets the greeting: settled, never late."""
    only(default_rule(Requirement.GREETING, occasions=["birthday"]))
    create_contact(account, actor=org.east_rep, name="李四", birthday=date(1988, 10, 1))
    sweep(NOW)
    call(org.east_rep, at(2025, 10, 1, 10), account=account)
    breach = Breach.objects.get()
    assert breach.resolution == "met"
    assert not Breach.objects.late(at(2025, 10, 3)).exists()


def test_company_anniversary_seven_days_ahead(org, account):
    """An account founded on 5 October 2010 is greeted: found seven days ahead."""
    only(default_rule(Requirement.GREETING, occasions=["anniversary"]))
    backdate(account, founded_on=date(2010, 10, 5))
    sweep(NOW)
    breach = Breach.objects.get()
    assert (breach.account, breach.contact, breach.due_at) == (account, None, at(2025, 10, 6))


# --- tasks when a call is not answered ----------------------------------------------------


def test_unanswered_call_creates_wechat_and_email_tasks(org, lead, monkeypatch, english):
    """A call logged "not reached" on Friday at 17:30 gives its owner a WeChat and an
    e-mail task at once, due one working hour later: Monday 09:30."""
    monkeypatch.setattr(timezone, "now", lambda: at(2025, 9, 26, 17, 30))
    activity = call(org.east_rep, None, outcome="not_reached", lead=lead)
    tasks = Task.objects.filter(origin_activity=activity).order_by("kind")
    assert [(t.kind, t.owner, t.lead, t.due_at) for t in tasks] == [
        ("email", org.east_rep, lead, at(2025, 9, 29, 9, 30)),
        ("wechat", org.east_rep, lead, at(2025, 9, 29, 9, 30)),
    ]
    assert [t.title for t in tasks] == [f"Send an e-mail: {lead}", f"Add on WeChat: {lead}"]


def test_answered_call_creates_no_task(org, lead):
    """A call that reached the customer creates no follow-up task."""
    call(org.east_rep, None, outcome="reached", lead=lead)
    assert not Task.objects.exists()


def test_changing_the_outcome_later_creates_the_tasks_once(org, lead):
    """Editing a call to "not reached" creates the two tasks; editing it again does not
    create more."""
    from loudou.activities.services import update_activity

    activity = call(org.east_rep, None, outcome="reached", lead=lead)
    activity = update_activity(activity, actor=org.east_rep, outcome="not_reached")
    update_activity(activity, actor=org.east_rep, notes="再打")
    assert Task.objects.filter(origin_activity=activity).count() == 2


def test_sweep_creates_tasks_for_calls_written_in_bulk(org, lead):
    """An unanswered call inserted without the service (an import) gets its tasks from
    the next sweep, once."""
    activity = Activity.objects.create(
        owner=org.east_rep, kind="call", purpose="prospecting", outcome="not_reached",
        occurred_at=timezone.now() - timedelta(hours=2), lead=lead,
    )  # fmt: skip
    only(default_rule(Requirement.TASK_ON_OUTCOME))
    sweep()
    sweep(timezone.now() + timedelta(minutes=1))
    assert Task.objects.filter(origin_activity=activity).count() == 2


# --- idempotency, owners, switching off ---------------------------------------------------


def test_sweeping_twice_changes_nothing(org, lead, account, classic):
    """Two sweeps at the same moment: the same breaches, one notification per person
    and rule, one task per breach; the second run opens nothing."""
    call(org.east_rep, NOW - timedelta(days=40), account=account)
    create_contact(account, actor=org.east_rep, name="李四", birthday=date(1988, 10, 1))
    pipeline_services.create_opportunity(
        actor=org.east_rep, pipeline=classic, account=account, name="试点",
        when=NOW - timedelta(days=30),
    )  # fmt: skip
    backdate(account, grade="won", revisit_class="20")
    first = sweep(NOW)
    rows = lambda: (  # noqa: E731
        sorted(Breach.objects.values_list("key", "resolution")),
        Notification.objects.count(),
        sorted(Task.objects.values_list("key", flat=True)),
    )
    before = rows()
    second = sweep(NOW)
    assert rows() == before
    # the lead's first contact, the account's monthly cadence and revisit, the birthday,
    # the stale opportunity; tasks for the revisit and the birthday
    assert first.opened == 5 and second.opened == 0
    assert len(before[0]) == 5 and len(before[2]) == 2


def test_new_owner_settles_the_old_owners_breach(org, account):
    """Giving the account to another rep settles the old breach as "owner changed"; the
    new owner gets a breach of their own."""
    only(default_rule(Requirement.CONTACT_EVERY, grades=["won"]))
    backdate(account, grade="won")
    sweep(NOW)
    old = Breach.objects.get()
    update_account(account, actor=org.admin, owner=org.east_rep2)
    sweep(NOW + timedelta(minutes=5))
    old.refresh_from_db()
    assert old.resolution == "owner_changed"
    assert Breach.objects.open().get().owner == org.east_rep2


def test_switching_a_rule_off_settles_its_breaches(org, account):
    """A rule switched off has its open breaches settled at once."""
    rule = default_rule(Requirement.CONTACT_EVERY, grades=["won"])
    only(rule)
    backdate(account, grade="won")
    sweep(NOW)
    services.set_rule_active(rule, actor=org.admin, active=False)
    assert Breach.objects.get().resolution == "rule_inactive"


def test_return_to_pool_only_once(org):
    """A rule that returns neglected leads to the pool releases the lead once: the next
    sweep finds it pooled and does nothing more."""
    pool = PublicPool.objects.create(name="公海")
    rule = services.create_rule(
        actor=org.admin, name="三天未跟进退回公海", applies_to="lead",
        requirement="contact_every", amount=3, return_to_pool=True, remind_owner=False,
    )  # fmt: skip
    only(rule)
    lead, _d = create_lead(actor=org.east_rep, owner=org.east_rep, name="赵六")
    backdate(lead, created_at=NOW - timedelta(days=5), owned_since=NOW - timedelta(days=5))
    run = sweep(NOW)
    lead.refresh_from_db()
    assert (lead.owner, lead.pool, lead.last_owner) == (None, pool, org.east_rep)
    assert run.counts["rules"][str(rule.pk)]["actions"]["returned"] == 1
    again = sweep(NOW + timedelta(minutes=5))
    assert again.opened == 0
    assert Breach.objects.get().resolution == "owner_changed"


# --- incremental sweeps -----------------------------------------------------------------


def test_incremental_sweep_finds_what_crossed_the_line_since(org, account):
    """After a full sweep, a later sweep is incremental: it finds the account whose
    14 days ran out in between, and a call inserted in bulk (no event) settles another
    account's breach through the state catch-up."""
    only(default_rule(Requirement.CONTACT_EVERY, grades=["C"]))
    late = backdate(create_account(actor=org.east_rep, name="华通"), created_at=at(2025, 6, 1))
    for a in (account, late):
        backdate(a, grade="C")
    call(org.east_rep, NOW - timedelta(days=20), account=account)
    call(org.east_rep, NOW - timedelta(days=14) + timedelta(minutes=2), account=late)
    sweep(NOW)
    assert list(Breach.objects.values_list("account", flat=True)) == [account.pk]
    Activity.objects.create(
        owner=org.east_rep, kind="call", purpose="follow_up", outcome="reached",
        occurred_at=NOW + timedelta(minutes=1), account=account,
    )  # fmt: skip
    run = sweep(NOW + timedelta(minutes=5))
    assert run.mode == SweepRun.Mode.INCREMENTAL
    assert Breach.objects.get(account=account).resolution == "met"
    assert Breach.objects.open().get().account == late


def test_first_sweep_rebuilds_the_state_from_all_activities(org, account):
    """Activities written before any sweep (in bulk) are counted by the first one."""
    Activity.objects.bulk_create([
        Activity(owner=org.east_rep, kind="call", purpose="follow_up", outcome="reached",
                 occurred_at=NOW - timedelta(days=d), account=account)
        for d in (3, 9, 30)
    ] + [Activity(owner=org.east_rep, kind="research", purpose="prospecting",
                  occurred_at=NOW - timedelta(days=1), account=account)])  # fmt: skip
    run = sweep(NOW)
    assert run.mode == SweepRun.Mode.REBUILD
    state = account.follow_up
    assert (state.contact_count, state.first_contact_at, state.last_contact_at) == (
        3,
        NOW - timedelta(days=30),
        NOW - timedelta(days=3),
    )


def test_outcome_task_due_counts_working_hours(org, lead, monkeypatch):
    """The default rule's due time is one working hour after logging, on the calendar."""
    monkeypatch.setattr(timezone, "now", lambda: at(2025, 9, 29, 11, 30))
    call(org.east_rep, None, outcome="not_reached", lead=lead)
    expected = add_working_hours(at(2025, 9, 29, 11, 30), 1, load_calendar())
    assert expected == at(2025, 9, 29, 13, 30)
    assert set(Task.objects.values_list("due_at", flat=True)) == {expected}


def _follow_up(account):
    row = AccountFollowUp.objects.filter(pk=account.pk).first()
    return None if row is None else (row.contact_count, row.last_contact_at)


def test_deleting_a_contact_counts_the_record_again(org, account):
    """Deleting an activity recounts its record's contacts at once: the latest contact
    goes back to the one before, and a record left without contacts has no state (it
    counts as never contacted) — not the deleted contact's date until a rebuild."""
    older = call(org.east_rep, NOW - timedelta(days=20), account=account)
    newer = call(org.east_rep, NOW - timedelta(days=2), account=account)
    services.state.refresh(accounts=[account.pk])
    assert _follow_up(account) == (2, NOW - timedelta(days=2))
    delete_activity(newer, actor=org.east_rep)
    assert _follow_up(account) == (1, NOW - timedelta(days=20))
    delete_activity(older, actor=org.east_rep)
    assert _follow_up(account) is None


def test_moving_a_contact_to_another_record_recounts_both(org, account):
    """An activity moved from one account to another leaves the first one's count and
    adds to the second's, in the same request."""
    other = create_account(actor=org.east_rep, name="华东机械")
    moved = call(org.east_rep, NOW - timedelta(days=5), account=account)
    call(org.east_rep, NOW - timedelta(days=9), account=account)
    services.state.refresh(accounts=[account.pk])
    update_activity(moved, actor=org.east_rep, account=other)
    assert _follow_up(account) == (1, NOW - timedelta(days=9))
    assert _follow_up(other) == (1, NOW - timedelta(days=5))
