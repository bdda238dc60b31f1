"""The auto-recycle sweep: each rule with a controlled clock, warnings once, idempotence,
scope, and the scheduler that enqueues it."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from loudou.core import schedule
from loudou.core.models import ScheduledJob
from loudou.leads import services
from loudou.leads.choices import LeadStatus, RecycleKind
from loudou.leads.models import Lead, PoolEvent, PublicPool, RecycleRule
from loudou.notifications.models import Notification
from loudou.pipeline.models import ProductLine

NOW = timezone.make_aware(timezone.datetime(2026, 6, 1, 10, 0))


@pytest.fixture
def pool(org):
    pool = PublicPool.objects.create(name="华东公海", reclaim_block_days=7, warn_days_before=3)
    pool.regions.set([org.east_region])
    return pool


def owned(org, *, days_ago, owner=None, touched_days_ago=None, region=None, **fields):
    """A lead owned since ``days_ago`` days before NOW, last changed ``touched_days_ago``
    (default: the same) days before NOW."""
    fields.setdefault("name", "客户")
    lead, _ = services.create_lead(
        actor=org.admin, owner=owner or org.east_rep, region=region or org.shanghai, **fields
    )
    since = NOW - timedelta(days=days_ago)
    touched = NOW - timedelta(days=days_ago if touched_days_ago is None else touched_days_ago)
    Lead.objects.filter(pk=lead.pk).update(owned_since=since, created_at=since, updated_at=touched)
    return lead


def state(lead):
    return Lead.objects.filter(pk=lead.pk).values_list("owner_id", "pool_id").get()


def recycle_events(lead):
    return PoolEvent.objects.filter(lead=lead, kind="recycle").count()


def rule(pool, kind, days, **extra):
    return RecycleRule.objects.create(name=f"{kind} {days}", pool=pool, kind=kind, days=days,
                                      **extra)  # fmt: skip


def test_no_follow_up_recycles_after_n_days_only(org, pool):
    """No follow-up for 30 days: a lead untouched for 31 days goes to the pool, one
    untouched for 29 days (owned 40 days) stays; the recycled one remembers its owner,
    blocks them from re-claiming for the pool's days and has one history row."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, warn_days_before=0)
    stale = owned(org, days_ago=31)
    fresh = owned(org, days_ago=40, touched_days_ago=29)
    result = services.sweep(now=NOW)
    assert result.recycled == 1
    assert state(stale) == (None, pool.pk)
    assert state(fresh) == (org.east_rep.pk, None)
    row = Lead.objects.get(pk=stale.pk)
    assert (row.last_owner_id, row.claim_blocked_until) == (org.east_rep.pk, NOW + timedelta(7))
    assert recycle_events(stale) == 1 and recycle_events(fresh) == 0


def test_not_converted_counts_from_ownership_not_from_edits(org, pool):
    """Not converted within 60 days: a lead owned 61 days ago goes back even though it was
    edited yesterday; one owned 59 days ago stays; a converted lead is never swept."""
    rule(pool, RecycleKind.NOT_CONVERTED, 60, warn_days_before=0)
    old = owned(org, days_ago=61, touched_days_ago=1)
    young = owned(org, days_ago=59)
    done = owned(org, days_ago=100)
    Lead.objects.filter(pk=done.pk).update(status=LeadStatus.CONVERTED)
    services.sweep(now=NOW)
    assert state(old) == (None, pool.pk)
    assert state(young) == (org.east_rep.pk, None)
    assert state(done) == (org.east_rep.pk, None)


def test_no_won_deal_behaves_as_not_converted_for_leads(org, pool):
    """No won deal within 90 days: an open lead owned 91 days has no deal and goes back;
    one owned 89 days stays."""
    rule(pool, RecycleKind.NO_WON_DEAL, 90, warn_days_before=0)
    old, young = owned(org, days_ago=91), owned(org, days_ago=89)
    services.sweep(now=NOW)
    assert (state(old), state(young)) == ((None, pool.pk), (org.east_rep.pk, None))


def test_pool_settings_apply_to_the_pools_regions_only(org, pool):
    """A pool's own "no follow-up" setting recycles stale leads of its regions, not a
    stale lead of another region."""
    PublicPool.objects.filter(pk=pool.pk).update(no_follow_up_days=30, warn_days_before=0)
    east = owned(org, days_ago=31)
    south = owned(org, days_ago=31, owner=org.south_rep, region=org.south_region)
    services.sweep(now=NOW)
    assert state(east) == (None, pool.pk)
    assert state(south) == (org.south_rep.pk, None)


def test_rule_by_product_line_leaves_other_products_alone(org, pool):
    """A rule for one product line recycles only leads interested in it."""
    cloud = ProductLine.objects.create(name="云", code="cloud")
    other = ProductLine.objects.create(name="硬件", code="hw")
    rule(pool, RecycleKind.NO_FOLLOW_UP, 10, warn_days_before=0, product_interest=cloud)
    hit = owned(org, days_ago=11, product_interest=cloud)
    miss = owned(org, days_ago=11, product_interest=other)
    services.sweep(now=NOW)
    assert (state(hit), state(miss)) == ((None, pool.pk), (org.east_rep.pk, None))


def test_warning_n_days_before_is_sent_once(org, pool):
    """Warn 3 days before a 30-day rule: a lead untouched 28 days is warned (one summary
    to its owner), a lead untouched 26 days is not; sweeping again the same day and the
    next day sends no second warning; after the owner follows up, a new period warns
    again."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, warn_days_before=3)
    soon = owned(org, days_ago=28)
    later = owned(org, days_ago=26)
    first = services.sweep(now=NOW)
    assert (first.warned, first.recycled) == (1, 0)
    warnings = Notification.objects.filter(kind="recycle_warning")
    assert list(warnings.values_list("user_id", flat=True)) == [org.east_rep.pk]
    assert Lead.objects.get(pk=later.pk).recycle_warned_at is None
    assert services.sweep(now=NOW).warned == 0
    assert services.sweep(now=NOW + timedelta(hours=20)).warned == 0
    assert warnings.count() == 1
    # A follow-up (an edit) restarts the clock; 28 days later the owner is warned again.
    Lead.objects.filter(pk=soon.pk).update(updated_at=NOW + timedelta(days=1))
    assert services.sweep(now=NOW + timedelta(days=29)).warned >= 1
    assert warnings.count() == 2


def test_sweep_twice_gives_the_same_result(org, pool):
    """Running the sweep twice at the same moment changes nothing the second time: same
    owners and pools, no new history rows, no new notifications."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, warn_days_before=5)
    leads = [owned(org, days_ago=d) for d in (10, 26, 27, 31, 45)]
    services.sweep(now=NOW)
    snapshot = (
        [state(lead) for lead in leads],
        PoolEvent.objects.count(),
        Notification.objects.count(),
    )
    second = services.sweep(now=NOW)
    assert (second.recycled, second.warned) == (0, 0)
    assert snapshot == (
        [state(lead) for lead in leads],
        PoolEvent.objects.count(),
        Notification.objects.count(),
    )
    assert snapshot[0] == [(org.east_rep.pk, None)] * 3 + [(None, pool.pk)] * 2
    assert Notification.objects.filter(kind="recycled").count() == 1


def test_dry_run_counts_and_changes_nothing(org, pool):
    """--dry-run reports what would be recycled and warned, and writes nothing."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, warn_days_before=3)
    stale, soon = owned(org, days_ago=40), owned(org, days_ago=28)
    result = services.sweep(now=NOW, dry_run=True)
    assert (result.recycled, result.warned) == (1, 1)
    assert state(stale) == (org.east_rep.pk, None)
    assert Lead.objects.get(pk=soon.pk).recycle_warned_at is None
    assert not Notification.objects.filter(kind__in=["recycle_warning", "recycled"]).exists()
    assert not PoolEvent.objects.filter(kind="recycle").exists()


def test_pool_sweep_command(org, pool, capsys):
    """``loudou pool sweep --at`` runs the rules at that moment and prints the totals."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, warn_days_before=0)
    stale = owned(org, days_ago=31)
    call_command("pool", "sweep", "--at", NOW.isoformat())
    assert "recycled 1" in capsys.readouterr().out
    assert state(stale) == (None, pool.pk)


def test_scheduler_enqueues_a_due_job_once(db, settings):
    """Two scheduler ticks at the same moment enqueue the sweep once; it is due again only
    after its interval."""
    from django_tasks_db.models import DBTaskResult

    t0 = NOW
    assert schedule.tick(t0, only={"leads.sweep_pools"}) == ["leads.sweep_pools"]
    assert schedule.tick(t0, only={"leads.sweep_pools"}) == []
    assert schedule.tick(t0 + timedelta(minutes=59), only={"leads.sweep_pools"}) == []
    assert schedule.tick(t0 + timedelta(hours=1), only={"leads.sweep_pools"}) == [
        "leads.sweep_pools"
    ]
    assert DBTaskResult.objects.filter(task_path="loudou.leads.tasks.sweep_pools").count() == 2
    assert ScheduledJob.objects.get(name="leads.sweep_pools").next_run_at == t0 + timedelta(hours=2)


def test_sweep_task_runs_the_sweep(org, pool):
    """The background task recycles like the command does."""
    from loudou.leads.tasks import sweep_pools

    rule(pool, RecycleKind.NOT_CONVERTED, 1, warn_days_before=0)
    lead = owned(org, days_ago=400)
    assert sweep_pools.call()["recycled"] == 1
    assert state(lead) == (None, pool.pk)


def test_rules_page_lists_recycle_rules_and_previews_the_sweep(client, org, pool):
    """The rules page lists explicit rules and pool settings, and its dry run counts what
    a sweep would do without doing it; a warned lead's page says it is about to return."""
    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, warn_days_before=3)
    PublicPool.objects.filter(pk=pool.pk).update(not_converted_days=90)
    stale = owned(org, days_ago=40)
    client.force_login(org.admin)
    page = client.get("/leads/rules/", {"sweep": "1"}).content.decode()
    assert page.count("华东公海") >= 2 and 'data-testid="sweep-preview"' in page
    assert state(stale) == (org.east_rep.pk, None)
    Lead.objects.filter(pk=stale.pk).update(recycle_warned_at=timezone.now())
    client.force_login(org.east_rep)
    assert 'data-testid="recycle-warning"' in client.get(f"/leads/{stale.pk}/").content.decode()


def test_an_activity_counts_as_follow_up(org, pool):
    """A call logged on the lead 5 days ago keeps it with its owner under a 30-day
    no-follow-up rule, though the lead row itself was last changed 40 days ago; the same
    lead without the call goes back. After a warning, a new activity makes the next
    period warn again."""
    from loudou.activities.models import Activity

    rule(pool, RecycleKind.NO_FOLLOW_UP, 30, warn_days_before=3)
    called, silent = owned(org, days_ago=40), owned(org, days_ago=40)
    Activity.objects.create(owner=org.east_rep, kind="call", purpose="follow_up", lead=called,
                            occurred_at=NOW - timedelta(days=5))  # fmt: skip
    services.sweep(now=NOW)
    assert state(called) == (org.east_rep.pk, None)
    assert state(silent) == (None, pool.pk)
    # 28 days after the call it is warned; a new call then restarts the clock.
    later = NOW + timedelta(days=23)
    assert services.sweep(now=later).warned == 1
    Activity.objects.create(owner=org.east_rep, kind="call", purpose="follow_up", lead=called,
                            occurred_at=later + timedelta(days=1))  # fmt: skip
    assert services.sweep(now=later + timedelta(days=29)).warned == 1
    assert Notification.objects.filter(kind="recycle_warning").count() == 2
