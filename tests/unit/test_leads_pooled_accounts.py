"""Accounts in a public pool: who sees them, claim and release under the lead rules
(region, daily limit shared with leads, maximum owned, re-claim block), refusals that
change nothing, the API and the pages."""

import pytest
from django.db import IntegrityError, transaction

from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.customers.models import Account
from loudou.customers.services import create_account
from loudou.leads import services
from loudou.leads.models import PoolEvent, PublicPool


@pytest.fixture
def pool(org):
    pool = PublicPool.objects.create(name="华东公海", daily_claim_limit=2, max_owned=5,
                                     reclaim_block_days=7)  # fmt: skip
    pool.regions.set([org.east_region])
    return pool


def pooled(org, pool, name="上海某公司"):
    account = create_account(actor=org.admin, name=name, region=org.shanghai)
    return services.release_account(account, rep=org.admin, reason="公海", pool=pool)


def row(account):
    return Account.objects.filter(pk=account.pk).values_list("owner_id", "pool_id").get()


def test_pooled_account_is_seen_by_pool_members_only(org, pool):
    """An East rep sees the East pool's account; a South rep does not."""
    account = pooled(org, pool)
    assert Account.objects.visible_to(org.east_rep).filter(pk=account.pk).exists()
    assert not Account.objects.visible_to(org.south_rep).filter(pk=account.pk).exists()


def test_claim_then_release_then_blocked(org, pool):
    """A rep claims the account (owned, out of the pool, one history row); releasing it
    needs a reason; claiming it again at once is refused as blocked, changing nothing."""
    account = pooled(org, pool)
    services.claim_account(account, rep=org.east_rep)
    assert row(account) == (org.east_rep.pk, None)
    assert PoolEvent.objects.filter(account=account, kind="claim", by=org.east_rep).count() == 1
    with pytest.raises(ValidationFailed):
        services.release_account(account, rep=org.east_rep, reason=" ")
    services.release_account(account, rep=org.east_rep, reason="无需求", pool=pool)
    assert row(account) == (None, pool.pk)
    with pytest.raises(Conflict) as refused:
        services.claim_account(account, rep=org.east_rep)
    assert refused.value.code == "blocked" and row(account) == (None, pool.pk)


def test_daily_limit_is_shared_with_leads(org, pool):
    """With a limit of 2 a day, a lead and an account claimed use it up: the next account
    claim is refused with "limit"."""
    lead, _ = services.create_lead(actor=org.admin, pool=pool, name="线索")
    services.claim_lead(lead, rep=org.east_rep)
    services.claim_account(pooled(org, pool, "甲"), rep=org.east_rep)
    third = pooled(org, pool, "乙")
    with pytest.raises(Conflict) as refused:
        services.claim_account(third, rep=org.east_rep)
    assert refused.value.code == "limit" and row(third) == (None, pool.pk)


def test_other_region_and_taken_are_refused(org, pool):
    """A South rep may not claim from the East pool ("region"); an owned account is
    "taken"."""
    account = pooled(org, pool)
    with pytest.raises(Conflict) as refused:
        services.claim_account(account, rep=org.south_rep)
    assert refused.value.code == "region"
    services.claim_account(account, rep=org.east_rep)
    with pytest.raises(Conflict) as refused:
        services.claim_account(account, rep=org.east_rep2)
    assert refused.value.code == "taken" and row(account) == (org.east_rep.pk, None)


def test_only_owner_manager_or_admin_releases(org, pool):
    """Another rep cannot release someone's account."""
    account = create_account(actor=org.east_rep, name="甲")
    with pytest.raises(NotPermitted):
        services.release_account(account, rep=org.south_rep, reason="x", pool=pool)
    assert row(account) == (org.east_rep.pk, None)


def test_database_refuses_owned_and_pooled(org, pool):
    """The database itself refuses an account with an owner and a pool."""
    account = create_account(actor=org.east_rep, name="甲")
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=account.pk).update(pool=pool)


def test_api_claim_and_release(client, org, pool, bearer):
    """The API claims (200, then 409 "taken" for a colleague) and releases (422 without
    a reason)."""
    account = pooled(org, pool)
    r = client.post(f"/api/v1/accounts/{account.pk}/claim", headers=bearer(org.east_rep))
    assert r.status_code == 200 and r.json()["owner_id"] == org.east_rep.pk
    r = client.post(f"/api/v1/accounts/{account.pk}/claim", headers=bearer(org.east_mgr))
    assert r.status_code == 409 and r.json()["code"] == "taken"
    r = client.post(f"/api/v1/accounts/{account.pk}/release", {"reason": ""},
                    content_type="application/json", headers=bearer(org.east_rep))  # fmt: skip
    assert r.status_code == 422 and row(account) == (org.east_rep.pk, None)


def test_pool_page_lists_and_claims_accounts(client, org, pool):
    """The pool page lists its accounts with a claim button that works."""
    account = pooled(org, pool)
    client.force_login(org.east_rep)
    page = client.get(f"/leads/pool/{pool.pk}/").content.decode()
    assert f"/leads/accounts/{account.pk}/claim/" in page
    assert client.post(f"/leads/accounts/{account.pk}/claim/").status_code == 302
    assert row(account) == (org.east_rep.pk, None)


def test_pooled_account_cannot_be_merged_by_a_rep(org, pool):
    """Merging a pooled account into one's own would take it without a claim: refused for
    a rep, and both accounts remain."""
    from loudou.leads import merge

    mine = create_account(actor=org.east_rep, name="上海某公司")
    waiting = pooled(org, pool)
    with pytest.raises(NotPermitted):
        merge.merge("account", mine.pk, waiting.pk, actor=org.east_rep)
    assert Account.objects.filter(pk__in=[mine.pk, waiting.pk]).count() == 2


def test_create_account_straight_into_a_pool(client, org, pool, bearer):
    """A manager creates an account straight into a pool through the API (unowned, one
    "created" pool history row, claimable by a rep of the region); a rep is refused with
    403 and nothing is created; the account's pool history lists the later claim."""
    body = {"name": "新建入池客户", "region_id": org.shanghai.pk, "industry": "制造"}
    r = client.post(f"/api/v1/pools/{pool.pk}/accounts", body, content_type="application/json",
                    headers=bearer(org.east_rep))  # fmt: skip
    assert r.status_code == 403 and not Account.objects.filter(name="新建入池客户").exists()
    r = client.post(f"/api/v1/pools/{pool.pk}/accounts", body, content_type="application/json",
                    headers=bearer(org.east_mgr))  # fmt: skip
    assert r.status_code == 201, r.content
    account = Account.objects.get(pk=r.json()["id"])
    assert (account.owner_id, account.pool_id) == (None, pool.pk)
    services.claim_account(account, rep=org.east_rep)
    r = client.get(f"/api/v1/accounts/{account.pk}/pool-history", headers=bearer(org.east_rep))
    assert [e["kind"] for e in r.json()] == ["create", "claim"]
