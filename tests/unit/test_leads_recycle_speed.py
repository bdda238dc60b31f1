"""The recycle sweep's fast paths (issue 5): SQLite foreign key checks off while a sweep
runs outside a transaction (and back on after), no JIT on PostgreSQL (and the setting
restored), target pools re-checked in each range's transaction, and an account's warning
judged by its latest warning."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from loudou.customers.models import Account
from loudou.customers.services import create_account
from loudou.leads import recycle, services
from loudou.leads.choices import PoolEventKind, RecycleKind, RecycleTarget
from loudou.leads.models import Lead, PoolEvent, PublicPool, RecycleRule

NOW = timezone.make_aware(timezone.datetime(2026, 6, 1, 10, 0))


def _stale_leads(org, n, *, days_ago):
    """``n`` leads of east_rep, owned since ``days_ago`` days before NOW, untouched."""
    leads = [
        services.create_lead(actor=org.east_rep, name=f"久未跟进{i}", region=org.shanghai)[0]
        for i in range(n)
    ]
    past = NOW - timedelta(days=days_ago)
    Lead.objects.filter(pk__in=[x.pk for x in leads]).update(
        owned_since=past, created_at=past, updated_at=past
    )
    return leads


def _setting() -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA foreign_keys")
        else:
            cursor.execute("SHOW jit")
        return str(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_sweep_outside_a_transaction_relaxes_the_connection_and_restores_it(org, monkeypatch):
    """Run as the scheduler runs it (no surrounding transaction): while the ranges are
    written SQLite's foreign key checks are off (PostgreSQL: JIT off), afterwards the
    connection is as before; the stale leads are recycled with one history row each and
    the ones about to expire are warned."""
    pool = PublicPool.objects.create(name="公海", reclaim_block_days=7)
    RecycleRule.objects.create(name="30天", pool=pool, kind="no_follow_up", days=30,
                               warn_days_before=3)  # fmt: skip
    stale = _stale_leads(org, 4, days_ago=40)
    soon = _stale_leads(org, 3, days_ago=28)
    before = _setting()
    seen = []
    run_range = recycle._run_range

    def spy(*args, **kwargs):
        seen.append(_setting())
        return run_range(*args, **kwargs)

    monkeypatch.setattr(recycle, "_run_range", spy)
    result = services.sweep(now=NOW)
    assert (result.recycled, result.warned) == (4, 3)
    assert seen and set(seen) == {"0" if connection.vendor == "sqlite" else "off"}
    assert _setting() == before
    assert Lead.objects.filter(pk__in=[x.pk for x in stale], pool=pool, owner=None).count() == 4
    assert PoolEvent.objects.filter(kind="recycle", lead__in=stale, pool=pool).count() == 4
    warned = Lead.objects.filter(pk__in=[x.pk for x in soon], recycle_warned_at=NOW)
    assert warned.filter(owner=org.east_rep).count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_pool_deleted_after_the_rules_were_read_receives_nothing(org, monkeypatch):
    """The rules are read before the ranges' transactions; if a rule's pool is deleted in
    between, that rule moves nothing (no lead pointing at a missing pool, no failed
    commit), and the other rules still run."""
    gone = PublicPool.objects.create(name="将删除的公海")
    kept = PublicPool.objects.create(name="公海")
    RecycleRule.objects.create(name="先", pool=gone, kind="no_follow_up", days=30, position=0)
    RecycleRule.objects.create(name="后", pool=kept, kind="no_follow_up", days=30, position=1)
    leads = _stale_leads(org, 3, days_ago=40)
    rules = recycle.effective_rules()
    gone_pk = gone.pk
    gone.delete()  # its rule goes with it; the sweep still holds it
    monkeypatch.setattr(recycle, "effective_rules", lambda: rules)
    result = services.sweep(now=NOW)
    by_rule = {o.rule: o.recycled for o in result.outcomes}
    assert by_rule == {"先": 0, "后": 3}
    assert Lead.objects.filter(pk__in=[x.pk for x in leads], pool=kept).count() == 3
    assert not PoolEvent.objects.filter(pool_id=gone_pk).exists()


def test_an_account_is_judged_by_its_latest_warning(org):
    """Warned, then given a new owner, then warned again at the new moment: the next
    sweep does not warn a third time (the first warning has an owner after it, the latest
    has nothing after it), and the account goes back to the pool when due."""
    pool = PublicPool.objects.create(name="华东客户公海")
    RecycleRule.objects.create(name="客户30天", pool=pool, kind=RecycleKind.NO_FOLLOW_UP,
                               days=30, warn_days_before=3,
                               applies_to=RecycleTarget.ACCOUNTS)  # fmt: skip
    acc = create_account(actor=org.admin, owner=org.east_rep, name="客户", region=org.shanghai)
    since = NOW - timedelta(days=28)
    Account.objects.filter(pk=acc.pk).update(created_at=since, updated_at=since)
    assert services.sweep(now=NOW).warned == 1
    PoolEvent.objects.create(account=acc, kind=PoolEventKind.ASSIGN, owner=org.east_rep2,
                             at=NOW + timedelta(days=1))  # fmt: skip
    Account.objects.filter(pk=acc.pk).update(owner=org.east_rep2)
    assert services.sweep(now=NOW + timedelta(days=2)).warned == 0  # owned 1 day only
    assert services.sweep(now=NOW + timedelta(days=29)).warned == 1
    assert services.sweep(now=NOW + timedelta(days=30)).warned == 0
    assert PoolEvent.objects.filter(account=acc, kind=PoolEventKind.WARN).count() == 2
    assert services.sweep(now=NOW + timedelta(days=32)).recycled == 1
    assert Account.objects.filter(pk=acc.pk, pool=pool, owner=None).exists()


def test_rules_of_a_range_take_turns_as_if_each_moved_its_records_at_once(org):
    """The sweep moves a range's records after every rule had its turn on it; the later
    rules still see what the earlier ones did: a lead due for the first rule goes to the
    first rule's pool only (one history row), and a lead the first rule only warns is
    recycled by a later, shorter rule into its pool — as when each rule moved its records
    before the next one ran."""
    first = PublicPool.objects.create(name="先公海")
    second = PublicPool.objects.create(name="后公海")
    RecycleRule.objects.create(name="30天", pool=first, kind="no_follow_up", days=30,
                               warn_days_before=7, position=0)  # fmt: skip
    RecycleRule.objects.create(name="20天", pool=second, kind="no_follow_up", days=20,
                               warn_days_before=3, position=1)  # fmt: skip
    old = _stale_leads(org, 2, days_ago=40)
    newer = _stale_leads(org, 3, days_ago=25)
    result = services.sweep(now=NOW)
    by_rule = {o.rule: (o.recycled, o.warned) for o in result.outcomes}
    assert by_rule == {"30天": (2, 3), "20天": (3, 0)}
    assert Lead.objects.filter(pk__in=[x.pk for x in old], pool=first, owner=None).count() == 2
    assert Lead.objects.filter(pk__in=[x.pk for x in newer], pool=second, owner=None).count() == 3
    events = PoolEvent.objects.filter(kind="recycle")
    assert events.filter(lead__in=old, pool=first).count() == 2
    assert events.filter(lead__in=newer, pool=second).count() == 3
    assert events.count() == 5
    assert services.sweep(now=NOW).recycled == 0


def _batch_size() -> tuple[int, int]:
    """(rows, bytes) of the sweep's batch table on this connection; bytes only on
    PostgreSQL (0 on SQLite)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {recycle.TEMP}")
        rows = cursor.fetchone()[0]
        if connection.vendor != "postgresql":
            return rows, 0
        cursor.execute("SELECT pg_relation_size(%s)", [recycle.TEMP])
        return rows, cursor.fetchone()[0]


def test_each_range_starts_from_an_empty_batch_table(org, monkeypatch):
    """Every range of ids starts with an empty batch table, also on the second sweep of
    the same connection: the earlier ranges' rows are gone, and on PostgreSQL emptied
    outright (no dead rows left for the range's statements to scan again — the table is
    never vacuumed); the records are recycled and warned as before."""
    pool = PublicPool.objects.create(name="公海", reclaim_block_days=7)
    RecycleRule.objects.create(name="30天", pool=pool, kind="no_follow_up", days=30,
                               warn_days_before=3)  # fmt: skip
    stale = _stale_leads(org, 6, days_ago=40)
    soon = _stale_leads(org, 4, days_ago=28)
    monkeypatch.setattr(recycle, "CHUNK", 3)
    at_start = []
    run_range = recycle._run_range

    def spy(rule, outcome, rows, now, reason, tag=0, pending=False):
        if tag == 0:
            at_start.append(_batch_size())
        return run_range(rule, outcome, rows, now, reason, tag, pending)

    monkeypatch.setattr(recycle, "_run_range", spy)
    result = services.sweep(now=NOW)
    assert (result.recycled, result.warned) == (6, 4)
    first_ranges = len(at_start)
    assert first_ranges >= 4
    assert services.sweep(now=NOW + timedelta(hours=1)).recycled == 0
    assert len(at_start) > first_ranges
    assert set(at_start) == {(0, 0)}
    assert Lead.objects.filter(pk__in=[x.pk for x in stale], pool=pool, owner=None).count() == 6
    assert Lead.objects.filter(pk__in=[x.pk for x in soon], recycle_warned_at=NOW).count() == 4
