"""Recycling accounts: rules per pool, customer grade and product line, each condition
(no follow-up, not converted, no won deal) with a controlled clock, the warning N days
before, the target pool, idempotence, and a set-based sweep whose query count does not
grow with the number of records."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loudou.activities.services import log_activity
from loudou.customers.models import Account
from loudou.customers.services import create_account
from loudou.leads import recycle, services
from loudou.leads.choices import PoolEventKind, RecycleKind, RecycleTarget
from loudou.leads.models import Lead, PoolEvent, PublicPool, RecycleRule
from loudou.notifications.models import Notification
from loudou.pipeline.models import Opportunity, ProductLine
from loudou.pipeline.services import create_pipeline_from_template

NOW = timezone.make_aware(timezone.datetime(2026, 6, 1, 10, 0))


@pytest.fixture
def pool(org):
    pool = PublicPool.objects.create(name="华东客户公海", reclaim_block_days=10)
    pool.regions.set([org.east_region])
    return pool


@pytest.fixture
def pipeline(db):
    return create_pipeline_from_template("classic")


def account(org, *, days_ago, owner=None, region=None, grade="", name="客户"):
    """An account created (and owned) ``days_ago`` days before NOW."""
    acc = create_account(actor=org.admin, owner=owner or org.east_rep, name=name,
                         region=region or org.shanghai)  # fmt: skip
    since = NOW - timedelta(days=days_ago)
    Account.objects.filter(pk=acc.pk).update(created_at=since, updated_at=since, grade=grade)
    return acc


def deal(acc, pipeline, *, status="open", closed_days_ago=None, product=None):
    stage = pipeline.stages.order_by("position").first()
    closed = NOW - timedelta(days=closed_days_ago) if closed_days_ago is not None else None
    return Opportunity.objects.create(
        name="单", account=acc, owner=acc.owner, pipeline=pipeline, stage=stage,
        furthest_stage=stage, status=status, closed_at=closed, product_line=product,
    )  # fmt: skip


def rule(pool, kind, days, **extra):
    extra.setdefault("warn_days_before", 0)
    extra.setdefault("applies_to", RecycleTarget.ACCOUNTS)
    return RecycleRule.objects.create(name=f"客户 {kind} {days}", pool=pool, kind=kind, days=days,
                                      **extra)  # fmt: skip


def state(acc):
    return Account.objects.filter(pk=acc.pk).values_list("owner_id", "pool_id").get()


def test_no_follow_up_recycles_accounts_after_n_days_only(org, pool):
    """No follow-up for 30 days: an account owned 31 days without an activity goes to the
    pool (previous owner remembered and blocked for the pool's days, one "recycled" row);
    one with an activity 29 days ago stays; one owned only 29 days stays."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30)
    stale = account(org, days_ago=31)
    followed = account(org, days_ago=60)
    log_activity(
        org.east_rep, account=followed, outcome="reached", occurred_at=NOW - timedelta(days=29)
    )
    young = account(org, days_ago=29)
    result = services.sweep(now=NOW)
    assert result.recycled == 1
    assert state(stale) == (None, pool.pk)
    assert state(followed) == (org.east_rep.pk, None)
    assert state(young) == (org.east_rep.pk, None)
    row = Account.objects.get(pk=stale.pk)
    assert (row.last_owner_id, row.claim_blocked_until) == (org.east_rep.pk, NOW + timedelta(10))
    assert PoolEvent.objects.filter(account=stale, kind=PoolEventKind.RECYCLE).count() == 1


def test_owned_since_counts_from_the_latest_claim(org, pool):
    """An old account claimed 5 days ago is not "owned 30 days": the claim restarts the
    clock; 31 days after the claim it goes back."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30)
    acc = account(org, days_ago=400)
    PoolEvent.objects.create(account=acc, kind=PoolEventKind.CLAIM, by=org.east_rep,
                             owner=org.east_rep, at=NOW - timedelta(days=5))  # fmt: skip
    services.sweep(now=NOW)
    assert state(acc) == (org.east_rep.pk, None)
    services.sweep(now=NOW + timedelta(days=26))
    assert state(acc) == (None, pool.pk)


def test_not_converted_means_never_won_for_accounts(org, pool, pipeline):
    """Not converted within 90 days: an account owned 91 days with only an open deal goes
    back; one with a deal won long ago stays (it converted)."""
    rule(pool, RecycleKind.NOT_CONVERTED, 90)
    open_only = account(org, days_ago=91)
    deal(open_only, pipeline)
    customer = account(org, days_ago=500)
    deal(customer, pipeline, status="won", closed_days_ago=300)
    services.sweep(now=NOW)
    assert state(open_only) == (None, pool.pk)
    assert state(customer) == (org.east_rep.pk, None)


def test_no_won_deal_within_n_days_for_accounts(org, pool, pipeline):
    """No won deal within 180 days: a customer whose last win was 200 days ago goes back;
    one who won 100 days ago stays."""
    rule(pool, RecycleKind.NO_WON_DEAL, 180)
    dormant = account(org, days_ago=800)
    deal(dormant, pipeline, status="won", closed_days_ago=200)
    active = account(org, days_ago=800)
    deal(active, pipeline, status="won", closed_days_ago=100)
    services.sweep(now=NOW)
    assert state(dormant) == (None, pool.pk)
    assert state(active) == (org.east_rep.pk, None)


def test_rule_per_grade_touches_that_grade_only(org, pool):
    """A rule for grade D recycles D accounts and leaves C accounts, however stale."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, grade="D")
    d = account(org, days_ago=100, grade="D")
    c = account(org, days_ago=100, grade="C")
    services.sweep(now=NOW)
    assert state(d) == (None, pool.pk) and state(c) == (org.east_rep.pk, None)


def test_rule_per_product_line_touches_accounts_with_deals_in_it(org, pool, pipeline):
    """A rule for product line 软件 recycles accounts having a deal in that line only."""
    software = ProductLine.objects.create(name="软件", code="SW")
    hardware = ProductLine.objects.create(name="硬件", code="HW")
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, product_interest=software)
    soft = account(org, days_ago=100)
    deal(soft, pipeline, product=software)
    hard = account(org, days_ago=100)
    deal(hard, pipeline, product=hardware)
    services.sweep(now=NOW)
    assert state(soft) == (None, pool.pk) and state(hard) == (org.east_rep.pk, None)


def test_rules_choose_their_target_pool_and_region(org, pool):
    """Two rules, two pools: each region's stale accounts go to its rule's pool; an
    account outside both regions stays."""
    south = PublicPool.objects.create(name="华南客户公海")
    south.regions.set([org.south_region])
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30)
    rule(south, RecycleKind.NO_FOLLOW_UP, 30)
    east = account(org, days_ago=40)
    southern = account(org, days_ago=40, owner=org.south_rep, region=org.south_region)
    nowhere = account(org, days_ago=40)
    Account.objects.filter(pk=nowhere.pk).update(region=None)
    services.sweep(now=NOW)
    assert state(east) == (None, pool.pk)
    assert state(southern) == (None, south.pk)
    assert state(nowhere) == (org.east_rep.pk, None)


def test_lead_rules_leave_accounts_alone_and_account_rules_leave_leads(org, pool):
    """A rule for leads never moves an account, and one for accounts never a lead."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, applies_to=RecycleTarget.LEADS)
    acc = account(org, days_ago=100)
    services.sweep(now=NOW)
    assert state(acc) == (org.east_rep.pk, None)
    RecycleRule.objects.all().delete()
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30)
    lead, _ = services.create_lead(actor=org.admin, owner=org.east_rep, name="线索",
                                   region=org.shanghai)  # fmt: skip
    old = NOW - timedelta(days=100)
    Lead.objects.filter(pk=lead.pk).update(owned_since=old, created_at=old, updated_at=old)
    services.sweep(now=NOW)
    assert Lead.objects.get(pk=lead.pk).owner_id == org.east_rep.pk


def test_warning_before_recycling_once_then_again_after_a_follow_up(org, pool):
    """Warn 3 days ahead: at day 28 of 30 the owner gets one warning (a "warned" history
    row, one notification); a second sweep the next day warns nobody; after an activity
    the clock restarts and a new warning comes at the new moment; the account goes back
    only when due."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, warn_days_before=3)
    acc = account(org, days_ago=28)
    first = services.sweep(now=NOW)
    assert (first.recycled, first.warned) == (0, 1)
    assert PoolEvent.objects.filter(account=acc, kind=PoolEventKind.WARN).count() == 1
    warnings = Notification.objects.filter(user=org.east_rep, kind="recycle_warning")
    assert warnings.count() == 1 and "1" in warnings.get().text
    again = services.sweep(now=NOW + timedelta(days=1))
    assert (again.recycled, again.warned) == (0, 0)
    assert state(acc) == (org.east_rep.pk, None)
    log_activity(
        org.east_rep, account=acc, outcome="reached", occurred_at=NOW + timedelta(days=1, hours=1)
    )
    assert services.sweep(now=NOW + timedelta(days=2)).warned == 0
    later = services.sweep(now=NOW + timedelta(days=29))
    assert (later.recycled, later.warned) == (0, 1)
    assert services.sweep(now=NOW + timedelta(days=32)).recycled == 1
    assert state(acc) == (None, pool.pk)


def test_due_page_lists_warned_accounts_and_leads(client, org, pool):
    """The "going back soon" page shows the rep's warned account."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, warn_days_before=3)
    account(org, days_ago=28, name="快回收的客户")
    account(org, days_ago=5, name="新客户")
    services.sweep(now=NOW)
    client.force_login(org.east_rep)
    page = client.get("/leads/due/").content.decode()
    assert "快回收的客户" in page and "新客户" not in page


def test_sweep_twice_changes_nothing_the_second_time(org, pool):
    """The second sweep at the same moment recycles, warns and notifies nothing."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, warn_days_before=3)
    account(org, days_ago=40)
    account(org, days_ago=28)
    first = services.sweep(now=NOW)
    notes = Notification.objects.count()
    events = PoolEvent.objects.count()
    second = services.sweep(now=NOW)
    assert (first.recycled, first.warned) == (1, 1)
    assert (second.recycled, second.warned) == (0, 0)
    assert (Notification.objects.count(), PoolEvent.objects.count()) == (notes, events)


def test_dry_run_counts_accounts_and_changes_nothing(org, pool):
    """A dry run counts what is due and what would be warned, and writes nothing."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, warn_days_before=3)
    account(org, days_ago=40)
    account(org, days_ago=28)
    result = services.sweep(now=NOW, dry_run=True)
    assert (result.recycled, result.warned) == (1, 1)
    assert not PoolEvent.objects.exists() and not Notification.objects.exists()
    assert Account.objects.filter(pool__isnull=False).count() == 0


def test_grade_on_a_lead_rule_is_refused(org, pool):
    """The grade belongs to account rules: a lead rule with a grade does not validate."""
    from django.core.exceptions import ValidationError

    bad = RecycleRule(name="x", pool=pool, kind=RecycleKind.NO_FOLLOW_UP, days=3, grade="D")
    with pytest.raises(ValidationError):
        bad.full_clean()


def _sweep_queries(now) -> int:
    with CaptureQueriesContext(connection) as ctx:
        services.sweep(now=now)
    return len(ctx.captured_queries)


def test_sweep_query_count_does_not_grow_with_records(org, pool):
    """The sweep is set-based: recycling and warning 3 accounts and 3 leads costs exactly
    as many queries as 30 of each (the rows never pass one by one through Python)."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, warn_days_before=3)
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, warn_days_before=3,
         applies_to=RecycleTarget.LEADS)  # fmt: skip

    def make(n, shift):
        for i in range(n):
            for days in (40, 28):
                account(org, days_ago=days - shift, name=f"a{i}")
                lead, _ = services.create_lead(actor=org.admin, owner=org.east_rep,
                                               name=f"l{i}", region=org.shanghai)  # fmt: skip
                when = NOW - timedelta(days=days - shift)
                Lead.objects.filter(pk=lead.pk).update(owned_since=when, created_at=when,
                                                       updated_at=when)  # fmt: skip

    make(3, 0)
    small = _sweep_queries(NOW)
    assert Account.objects.filter(pool=pool).count() == 3
    make(30, 100)  # 30 due and 30 to warn 100 days later; the 3 warned earlier are due
    large = _sweep_queries(NOW + timedelta(days=100))
    assert Account.objects.filter(pool=pool).count() == 3 + 33
    assert Lead.objects.filter(pool=pool).count() == 3 + 33
    assert PoolEvent.objects.filter(kind=PoolEventKind.WARN).count() == 3 + 30
    assert small == large


def test_recycle_batch_table_is_per_range(org, pool, monkeypatch):
    """With ranges of 2 ids, 5 stale accounts are all recycled once each (the batch table
    is emptied between ranges)."""
    monkeypatch.setattr(recycle, "CHUNK", 2)
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30)
    accounts = [account(org, days_ago=40, name=f"a{i}") for i in range(5)]
    assert services.sweep(now=NOW).recycled == 5
    assert PoolEvent.objects.filter(account__in=accounts, kind="recycle").count() == 5


def test_pool_page_links_new_lead_import_and_due(client, org, pool):
    """The pool page offers a new lead straight into this pool (the form comes with the
    pool chosen), the import (managers and admins) and the "going back soon" list."""
    client.force_login(org.east_mgr)
    page = client.get(f"/leads/pool/{pool.pk}/").content.decode()
    actions = page[page.index('data-testid="pool-actions"') :].split("</div>")[0]
    assert f"/leads/new/?pool={pool.pk}" in actions and "/leads/due/" in actions
    assert "/imports/" in actions
    form = client.get(f"/leads/new/?pool={pool.pk}").content.decode()
    assert f'<option value="{pool.pk}" selected' in form
    client.force_login(org.east_rep)
    page = client.get(f"/leads/pool/{pool.pk}/").content.decode()
    assert "/imports/" not in page[page.index('data-testid="pool-actions"') :].split("</div>")[0]
