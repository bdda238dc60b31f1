"""The rolling check (issue 6): each hourly run re-reads one slice of the records and of
their open breaches, whatever changed, so that a cycle of hourly runs reads everything the
daily exhaustive run used to read in one go. A change that leaves no trace (SQL without
``updated_at``) is caught when its record's slice comes and not before; after a cycle the
open breaches are those an exhaustive run finds; a run's queries do not grow with the
records; a cycle that fell behind gives way to a run that reads everything."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from loudou.activities.models import Activity
from loudou.activities.services import log_activity
from loudou.customers.models import Account
from loudou.customers.services import create_account
from loudou.leads.models import Lead
from loudou.leads.services import create_lead
from loudou.pipeline import services as pipeline_services
from loudou.pipeline.models import Opportunity
from loudou.rules.models import AccountFollowUp, Breach, Requirement
from loudou.rules.sweep import SLICES, slice_range, sweep
from tests.unit.test_rules_sweep import backdate, only
from tests.unit.test_rules_sweep import default_rule as rule_of

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 9, 29, 14, tzinfo=TZ)  # a Monday
HOUR = timedelta(hours=1, minutes=1)


def accounts_called(org, n: int, days_ago: int = 2) -> list[Account]:
    """``n`` grade-C accounts created 200 days ago, each called ``days_ago`` days ago."""
    made = []
    for i in range(n):
        account = create_account(actor=org.east_rep, name=f"恒信科技{i}有限公司")
        log_activity(org.east_rep, kind="call", outcome="reached",
                     occurred_at=NOW - timedelta(days=days_ago), account=account)  # fmt: skip
        made.append(backdate(account, created_at=NOW - timedelta(days=200), grade="C"))
    return made


def quiet() -> None:
    """Every row written so far carries no trace for the sweep: created and saved long
    before the first run (the tests' clock is in 2025, the services stamp today)."""
    past = NOW - timedelta(days=30)
    Activity.objects.update(created_at=past, updated_at=past)
    for model in (Account, Opportunity, Lead):
        model.objects.update(updated_at=past)


def untraced_last_contact(account, when) -> None:
    """The account's follow-up state written by SQL: no activity, no ``updated_at``."""
    AccountFollowUp.objects.filter(pk=account.pk).update(last_contact_at=when)


def slice_of(run, kind: str, pk: int) -> int:
    """The index of the slice of ``run``'s cycle that holds record ``pk``."""
    part = run.counts["slice"]
    for index in range(part["of"]):
        low, high = slice_range(part["bounds"][kind], index, part["of"])
        if (low is None or pk >= low) and (high is None or pk < high):
            return index
    raise AssertionError(pk)


def test_slices_cover_every_id_once():
    """The ranges of a cycle's slices follow each other without gap or overlap, the first
    has no lower end and the last no upper one (ids added since the cycle began)."""
    for bounds in ([1, 1], [5, 29], [100, 100_000], [0, 0]):
        ranges = [slice_range(bounds, i, SLICES) for i in range(SLICES)]
        assert ranges[0][0] is None and ranges[-1][1] is None
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
        assert all(a[1] >= a[0] for a in ranges[1:-1])


def test_untraced_overdue_found_when_its_slice_comes(org):
    """An account whose last contact is moved 20 days back by SQL breaks "every 14 days"
    for grade C: the hourly runs before its slice do not see it, the run of its slice
    does, within one cycle."""
    only(rule_of(Requirement.CONTACT_EVERY, grades=["C"]))
    accounts = accounts_called(org, 24)
    target = accounts[13]
    quiet()
    assert sweep(NOW).exhaustive
    untraced_last_contact(target, NOW - timedelta(days=20))
    found_at = None
    for i in range(1, SLICES + 1):
        run = sweep(NOW + i * HOUR)
        assert run.mode == "full" and not run.exhaustive
        assert run.counts["slice"]["index"] == i - 1
        if Breach.objects.exists() and found_at is None:
            found_at = run
    assert found_at is not None
    assert found_at.counts["slice"]["index"] == slice_of(found_at, "account", target.pk) > 0
    breach = Breach.objects.get()
    assert (breach.account, breach.due_at) == (target, NOW - timedelta(days=6))


def test_untraced_contact_settles_when_its_slice_comes(org):
    """An overdue account whose last contact is set to now by SQL has its breach settled
    as met by the run of its slice, not by the hourly runs before it."""
    only(rule_of(Requirement.CONTACT_EVERY, grades=["C"]))
    accounts = accounts_called(org, 24, days_ago=20)
    target = accounts[7]
    quiet()
    sweep(NOW)
    assert Breach.objects.open().count() == 24
    untraced_last_contact(target, NOW)
    for i in range(1, SLICES + 1):
        run = sweep(NOW + i * HOUR)
        index = slice_of(run, "account", target.pk)
        assert Breach.objects.get(account=target).is_open == (run.counts["slice"]["index"] < index)
    breach = Breach.objects.get(account=target)
    assert (breach.resolution, breach.resolved_at) == ("met", NOW)
    assert Breach.objects.open().count() == 23


@pytest.fixture
def spread(org):
    """Records of the three kinds the shipped rules sweep, with breaches and without:
    accounts of grades C and B (some overdue), opportunities in a stage with a 14-day
    limit (some stale), new leads (some past five working hours)."""
    accounts = accounts_called(org, 12) + accounts_called(org, 12, days_ago=40)
    for account in accounts[::3]:
        backdate(account, grade="B")
    pipeline = pipeline_services.create_pipeline_from_template("classic")
    stage = list(pipeline.open_stages())[0]
    pipeline_services.update_stage(stage, stale_after_days=14)
    opps = [
        pipeline_services.create_opportunity(
            actor=org.east_rep, pipeline=pipeline, account=accounts[i], name=f"试点{i}",
            when=NOW - timedelta(days=5 if i % 2 else 20),
        )
        for i in range(12)
    ]  # fmt: skip
    leads = []
    for i in range(12):
        lead, _dups = create_lead(actor=org.east_rep, owner=org.east_rep, name=f"线索{i}")
        arrived = NOW - timedelta(hours=2 if i % 2 else 60)
        leads.append(backdate(lead, created_at=arrived, owned_since=arrived))
    quiet()
    return accounts, opps, leads


def untraced_changes(org, accounts, opps, leads) -> None:
    """Changes by SQL, none with ``updated_at``: contacts moved back and forward, grades,
    stage entries, lead owners."""
    for account in accounts[1::4]:
        untraced_last_contact(account, NOW - timedelta(days=50))
    for account in accounts[2::4]:
        untraced_last_contact(account, NOW - timedelta(hours=3))
    Account.objects.filter(pk__in=[a.pk for a in accounts[3::5]]).update(grade="A")
    Opportunity.objects.filter(pk__in=[o.pk for o in opps[::3]]).update(
        stage_entered_at=NOW - timedelta(days=30)
    )
    Opportunity.objects.filter(pk__in=[o.pk for o in opps[1::4]]).update(
        stage_entered_at=NOW - timedelta(days=1)
    )
    Lead.objects.filter(pk__in=[lead.pk for lead in leads[::3]]).update(owner=org.east_rep2)


def open_breaches() -> set:
    return set(Breach.objects.open().values_list("rule_id", "key"))


def test_a_cycle_reads_what_an_exhaustive_run_reads(org, spread):
    """After the changes that leave no trace, one cycle of hourly runs (every slice once)
    leaves exactly the open breaches an exhaustive run finds at the same moment: that
    run, afterwards, has nothing to open or settle. Then a new cycle begins."""
    only(
        rule_of(Requirement.CONTACT_EVERY, grades=["C"]),
        rule_of(Requirement.CONTACT_EVERY, grades=["B"]),
        rule_of(Requirement.CONTACT_EVERY, grades=["A"]),
        rule_of(Requirement.STALE_IN_STAGE),
        rule_of(Requirement.FIRST_CONTACT_WITHIN),
    )  # fmt: skip
    sweep(NOW)
    before = open_breaches()
    untraced_changes(org, *spread)
    runs = [sweep(NOW + i * HOUR) for i in range(1, SLICES + 1)]
    assert [r.counts["slice"]["index"] for r in runs] == list(range(SLICES))
    assert not any(r.exhaustive for r in runs)
    after_cycle = open_breaches()
    assert after_cycle != before
    settled = {r for r in before - after_cycle}
    assert {r for r in after_cycle - before} and settled
    check = sweep(runs[-1].now, full=True)
    assert check.exhaustive
    assert (check.opened, check.resolved) == (0, 0)
    assert open_breaches() == after_cycle
    following = sweep(runs[-1].now + HOUR)
    assert following.counts["slice"]["index"] == 0 and not following.exhaustive


def test_without_slices_the_hourly_runs_miss_untraced_changes(org, spread):
    """The same changes are not all seen by runs that re-read no slice (five-minute
    runs over the same day): the slices are what finds them."""
    only(
        rule_of(Requirement.CONTACT_EVERY, grades=["C"]),
        rule_of(Requirement.STALE_IN_STAGE),
    )  # fmt: skip
    sweep(NOW)
    untraced_changes(org, *spread)
    for i in range(1, 12):
        assert sweep(NOW + i * timedelta(minutes=5)).mode == "incremental"
    check = sweep(NOW + timedelta(hours=1), full=True)
    assert check.opened and check.resolved


@pytest.mark.parametrize("n", [24, 240])
def test_hourly_run_queries_do_not_grow(org, n, django_assert_max_num_queries):
    """An hourly run that re-reads a slice (and opens breaches in it) makes the same
    number of queries for 24 accounts as for 240."""
    only(rule_of(Requirement.CONTACT_EVERY, grades=["C"]))
    accounts = accounts_called(org, n)
    quiet()
    sweep(NOW)
    for account in accounts:
        untraced_last_contact(account, NOW - timedelta(days=20))
    sweep(NOW + HOUR)  # slice 0: the cycle's bounds are read
    with django_assert_max_num_queries(44):
        run = sweep(NOW + 2 * HOUR)
    assert run.counts["slice"]["index"] == 1 and run.opened == n // SLICES


def test_a_cycle_fallen_behind_reads_everything(org):
    """When the worker was down so long that the slices left, one an hour, cannot finish
    within the limit, the next run reads everything and a new cycle starts after it."""
    only(rule_of(Requirement.CONTACT_EVERY, grades=["C"]))
    accounts_called(org, 3)
    quiet()
    sweep(NOW)
    for i in range(1, 6):
        assert sweep(NOW + i * HOUR).counts["slice"]["index"] == i - 1
    late = sweep(NOW + 5 * HOUR + timedelta(hours=14))
    assert late.exhaustive and "slice" not in late.counts
    assert sweep(late.now + HOUR).counts["slice"]["index"] == 0
