"""Race safety of the public pool: parallel claims through the real API, one database
connection per thread (DOMAIN §5, issue 5's quality bar)."""

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from django.test import Client

from loudou.leads.models import Lead, PoolEvent, PublicPool
from loudou.leads.services import create_lead
from loudou.org.models import Role
from loudou.org.services import create_token, create_user


@pytest.fixture
def threaded_db(transactional_db, tmp_path):
    """A database that threads can write to concurrently. PostgreSQL already is one. The
    SQLite test database lives in memory with a shared cache, whose table locks fail at
    once instead of waiting; so for the length of the test the (empty, migrated) database
    is copied to a file, where WAL and the IMMEDIATE transactions queue writers exactly as
    in production, and every new connection opens that file."""
    memory = connections["default"]
    if memory.vendor != "sqlite" or not memory.is_in_memory_db():
        yield
        return
    memory.ensure_connection()
    path = tmp_path / "threaded.sqlite3"
    target = sqlite3.connect(path)
    memory.connection.backup(target)
    target.close()
    settings_dict = connections.settings["default"]  # shared by every new connection
    memory_name = settings_dict["NAME"]
    settings_dict["NAME"] = str(path)
    connections["default"] = type(memory)(settings_dict, "default")
    try:
        yield
    finally:
        connections["default"].close()
        settings_dict["NAME"] = memory_name
        connections["default"] = memory


def _parallel_posts(urls_and_headers):
    """POST every (url, headers) at once from its own thread and connection; returns
    (status, json) in order."""
    barrier = threading.Barrier(len(urls_and_headers))

    def post(item):
        url, headers = item
        client = Client()
        try:
            barrier.wait(timeout=30)
            response = client.post(url, headers=headers)
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(urls_and_headers)) as pool:
        return list(pool.map(post, urls_and_headers))


def _headers(user):
    _token, key = create_token(user, name="race")
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.django_db(transaction=True)
def test_twenty_reps_claiming_one_lead_at_once_one_wins(threaded_db, org):
    """Twenty reps claim the same pooled lead at the same moment: exactly one 200, nineteen
    409 "taken", and the lead ends owned by the winner and out of the pool."""
    pool = PublicPool.objects.create(name="公海", daily_claim_limit=5, max_owned=50)
    lead, _dups = create_lead(actor=org.admin, pool=pool, name="抢手线索", company="抢手公司")
    reps = [
        create_user(
            f"racer{i}", name=f"racer{i}", role=Role.REP, team=org.east, region=org.shanghai
        )
        for i in range(20)
    ]
    results = _parallel_posts([(f"/api/v1/leads/{lead.pk}/claim", _headers(r)) for r in reps])
    statuses = sorted(status for status, _body in results)
    assert statuses == [200] + [409] * 19
    assert {body["code"] for status, body in results if status == 409} == {"taken"}
    winner_id = next(body["owner_id"] for status, body in results if status == 200)
    lead.refresh_from_db()
    assert (lead.owner_id, lead.pool_id) == (winner_id, None)
    assert PoolEvent.objects.filter(lead=lead, kind="claim").count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_rep_claiming_ten_leads_at_once_stops_at_the_daily_limit(threaded_db, org):
    """One rep claims ten different pooled leads in parallel with a daily limit of 3:
    exactly three succeed, seven are 409 "limit", and the rep owns exactly three."""
    pool = PublicPool.objects.create(name="公海", daily_claim_limit=3, max_owned=50)
    leads = [
        create_lead(actor=org.admin, pool=pool, name=f"线索{i}", mobile=f"1380000000{i}")[0]
        for i in range(10)
    ]
    headers = _headers(org.east_rep)
    results = _parallel_posts([(f"/api/v1/leads/{lead.pk}/claim", headers) for lead in leads])
    statuses = sorted(status for status, _body in results)
    assert statuses == [200] * 3 + [409] * 7
    assert {body["code"] for status, body in results if status == 409} == {"limit"}
    assert Lead.objects.filter(owner=org.east_rep).count() == 3
    assert Lead.objects.filter(pool=pool).count() == 7


def _stale_leads(org, owner, n, *, days_ago):
    """``n`` leads owned by ``owner`` since ``days_ago`` days, untouched since then."""
    from datetime import timedelta

    from django.utils import timezone

    leads = [create_lead(actor=owner, name=f"久未跟进{i}")[0] for i in range(n)]
    past = timezone.now() - timedelta(days=days_ago)
    Lead.objects.filter(pk__in=[lead.pk for lead in leads]).update(
        owned_since=past, created_at=past, updated_at=past
    )
    return leads


def _in_threads(*calls):
    """Run the callables at the same moment, each on its own connection."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        try:
            barrier.wait(timeout=30)
            return call()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_recycle_and_warn_each_lead_once(threaded_db, org, monkeypatch):
    """Two workers sweep at the same moment over small chunks (so they contend row by
    row, SKIP LOCKED): every stale lead is recycled exactly once with one history row,
    every lead about to expire is warned exactly once, and the two results add up."""
    from loudou.leads import recycle, services
    from loudou.leads.models import RecycleRule
    from loudou.notifications.models import Notification

    monkeypatch.setattr(recycle, "CHUNK", 7)
    pool = PublicPool.objects.create(name="公海")
    RecycleRule.objects.create(name="30天", pool=pool, kind="no_follow_up", days=30,
                               warn_days_before=5)  # fmt: skip
    stale = _stale_leads(org, org.east_rep, 60, days_ago=40)
    soon = _stale_leads(org, org.east_rep2, 40, days_ago=27)
    first, second = _in_threads(services.sweep, services.sweep)
    assert first.recycled + second.recycled == 60
    assert first.warned + second.warned == 40
    assert Lead.objects.filter(pk__in=[x.pk for x in stale], pool=pool, owner=None).count() == 60
    assert PoolEvent.objects.filter(kind="recycle").count() == 60
    assert PoolEvent.objects.filter(kind="recycle").values("lead").distinct().count() == 60
    assert Lead.objects.filter(pk__in=[x.pk for x in soon], recycle_warned_at__isnull=False,
                               owner=org.east_rep2).count() == 40  # fmt: skip
    assert Notification.objects.filter(user=org.east_rep2, kind="recycle_warning").count() <= 2


@pytest.mark.django_db(transaction=True)
def test_sweep_during_claims_never_leaves_a_lead_owned_and_pooled(threaded_db, org):
    """While a sweep returns 15 stale leads to the pool, another rep tries to claim each
    of them: every claim is a 200 (after the recycle) or, before it, a 404 (the lead is
    still someone else's and out of sight) or a 409; every lead ends
    either owned or pooled, and the claims that won are exactly the leads that rep owns."""
    from loudou.leads import services
    from loudou.leads.models import RecycleRule

    pool = PublicPool.objects.create(name="公海", daily_claim_limit=50, max_owned=50)
    RecycleRule.objects.create(name="30天", pool=pool, kind="no_follow_up", days=30,
                               warn_days_before=0)  # fmt: skip
    leads = _stale_leads(org, org.east_rep, 15, days_ago=40)
    headers = _headers(org.east_rep2)
    client_calls = [
        (lambda pk=lead.pk: Client().post(f"/api/v1/leads/{pk}/claim", headers=headers))
        for lead in leads
    ]
    results = _in_threads(services.sweep, *client_calls)
    statuses = [r.status_code for r in results[1:]]
    assert set(statuses) <= {200, 404, 409}
    rows = Lead.objects.filter(pk__in=[x.pk for x in leads]).values_list("owner_id", "pool_id")
    assert all((owner is None) != (pool_id is None) for owner, pool_id in rows)
    assert Lead.objects.filter(owner=org.east_rep2).count() == statuses.count(200)
    assert results[0].recycled == 15
