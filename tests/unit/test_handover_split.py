"""Hand-over split across several reps (in turn, by region, per kind), accounts into a
pool, each record's hand-over history, one ``handed_over`` event per hand-over, refusals
that change nothing, and the page, API and CLI for all of it."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from loudou.core import hooks
from loudou.core.exceptions import ValidationFailed
from loudou.customers.models import Account
from loudou.customers.services import create_account
from loudou.leads import services as leads
from loudou.leads.models import Lead, PoolEvent, PublicPool
from loudou.notifications.models import Notification
from loudou.org import handover
from loudou.org.models import HandOver, HandOverItem
from loudou.pipeline.models import Opportunity
from loudou.pipeline.services import create_opportunity, create_pipeline_from_template


@pytest.fixture
def book(org):
    """east_rep owns 5 accounts (3 in 上海, 2 in 华南区), each with one opportunity, and 4
    open leads without an account; east_rep2 owns one account that must not move."""
    pipeline = create_pipeline_from_template("classic")
    regions = [org.shanghai, org.shanghai, org.south_region, org.shanghai, org.south_region]
    for i, region in enumerate(regions):
        account = create_account(actor=org.east_rep, name=f"客户{i}", region=region)
        create_opportunity(actor=org.east_rep, pipeline=pipeline, name=f"单{i}", account=account)
    for i in range(4):
        leads.create_lead(actor=org.east_rep, name=f"线索{i}", region=org.shanghai)
    create_account(actor=org.east_rep2, name="别人的客户")
    return pipeline


def snapshot():
    """Every owner and pool of every account, opportunity and lead, and the history rows:
    a refused hand-over must leave all of it as it was."""
    return (
        list(Account.objects.order_by("pk").values_list("pk", "owner_id", "pool_id", "version")),
        list(Opportunity.objects.order_by("pk").values_list("pk", "owner_id", "version")),
        list(Lead.objects.order_by("pk").values_list("pk", "owner_id", "pool_id", "version")),
        PoolEvent.objects.count(),
        HandOver.objects.count(),
        HandOverItem.objects.count(),
        Notification.objects.count(),
    )


def owners(model, **filters):
    return list(model.objects.filter(**filters).order_by("pk").values_list("owner_id", flat=True))


def test_round_robin_split_is_exact_and_deals_follow_their_accounts(org, book):
    """Split in turn between east_rep2 and sub_rep: the 5 accounts alternate by id (3 and
    2), each opportunity goes with its account, the 4 leads alternate (2 and 2); the
    record has no single receiver, its shares say who got what, and every record has its
    own hand-over item."""
    a, b = org.east_rep2, org.sub_rep
    mine = Account.objects.filter(owner=org.east_rep).order_by("pk")
    account_ids = list(mine.values_list("pk", flat=True))
    record = handover.hand_over(org.east_rep, actor=org.east_mgr, receivers=[a, b])
    assert owners(Account, pk__in=account_ids) == [a.pk, b.pk, a.pk, b.pk, a.pk]
    for opp in Opportunity.objects.filter(account_id__in=account_ids):
        assert opp.owner_id == opp.account.owner_id
    assert owners(Lead, name__startswith="线索") == [a.pk, b.pk, a.pk, b.pk]
    assert record.to_user is None and record.receiver_ids == [a.pk, b.pk]
    shares = {(s["label"], s["to_id"]): s["count"] for s in record.shares}
    assert shares == {
        ("customers.account", a.pk): 3, ("customers.account", b.pk): 2,
        ("pipeline.opportunity", a.pk): 3, ("pipeline.opportunity", b.pk): 2,
        ("leads.lead", a.pk): 2, ("leads.lead", b.pk): 2,
    }  # fmt: skip
    assert record.counts == {"customers.account": 5, "pipeline.opportunity": 5, "leads.lead": 4}
    assert HandOverItem.objects.filter(handover=record).count() == 14
    first_opp = Opportunity.objects.get(account_id=account_ids[0])
    assert [i.to_user_id for i in handover.history_of(first_opp)] == [a.pk]
    assert Notification.objects.filter(kind="handover", user=a).count() == 1
    assert Notification.objects.filter(kind="handover", user=b).count() == 1
    assert owners(Account, name="别人的客户") == [org.east_rep2.pk]


def test_split_by_region_gives_each_receiver_their_region(org, book):
    """By region: the 上海 receiver gets the 3 上海 accounts and their deals, the 华南区
    receiver the 2 southern ones; the leads (all 上海) go to the 上海 receiver."""
    east, south = org.sub_rep, org.south_rep
    handover.hand_over(org.east_rep, receivers=[south, east], split="region")
    assert set(owners(Account, region=org.shanghai)) == {east.pk}
    assert owners(Account, region=org.south_region) == [south.pk, south.pk]
    assert set(owners(Opportunity, account__region=org.south_region)) == {south.pk}
    assert owners(Lead, name__startswith="线索") == [east.pk] * 4


def test_per_kind_receiver_and_deals_follow_the_accounts(org, book):
    """Accounts to east_rep2, everything else to sub_rep: the opportunities follow their
    accounts to east_rep2, the leads go to sub_rep."""
    record = handover.hand_over(org.east_rep, actor=org.admin, to=org.sub_rep,
                                by_kind={"customers.account": org.east_rep2})  # fmt: skip
    assert Account.objects.filter(owner=org.east_rep2).count() == 6
    assert Opportunity.objects.filter(owner=org.east_rep2).count() == 5
    assert Lead.objects.filter(owner=org.sub_rep).count() == 4
    assert record.to_user is None


def test_accounts_and_open_leads_into_pools(org, book):
    """Accounts into one pool, open leads into another: both pooled with the leaver as
    last owner and a "handed over" pool history row; the opportunities need a person and
    go to the receiver; the record counts the pooled kinds apart."""
    accounts_pool = PublicPool.objects.create(name="客户公海")
    leads_pool = PublicPool.objects.create(name="线索公海")
    record = handover.hand_over(org.east_rep, actor=org.admin, to=org.sub_rep,
                                pool=leads_pool, account_pool=accounts_pool)  # fmt: skip
    pooled = Account.objects.filter(pool=accounts_pool)
    assert pooled.count() == 5 and not pooled.exclude(owner=None).exists()
    assert set(pooled.values_list("last_owner_id", flat=True)) == {org.east_rep.pk}
    assert PoolEvent.objects.filter(account__in=pooled, kind="handover",
                                    pool=accounts_pool).count() == 5  # fmt: skip
    assert Lead.objects.filter(pool=leads_pool, owner=None).count() == 4
    assert Opportunity.objects.filter(owner=org.sub_rep).count() == 5
    assert record.counts == {"customers.account:pool": 5, "leads.lead:pool": 4,
                             "pipeline.opportunity": 5}  # fmt: skip
    # a pooled account can be claimed again by a rep of the pool at once
    claimed = leads.claim_account(pooled.first(), rep=org.east_rep2)
    assert claimed.owner_id == org.east_rep2.pk


def test_only_pools_when_the_rep_owns_nothing_else(org):
    """A rep with only open leads and accounts can be handed over to pools alone."""
    create_account(actor=org.east_rep, name="甲")
    leads.create_lead(actor=org.east_rep, name="乙")
    pool = PublicPool.objects.create(name="公海")
    record = handover.hand_over(org.east_rep, pool=pool, account_pool=pool)
    assert record.total == 2 and record.to_user is None
    assert not Account.objects.filter(owner=org.east_rep).exists()


@pytest.mark.parametrize(
    "options",
    [
        {"receivers": ["sub_rep", "left_rep"]},  # a receiver who left
        {"receivers": ["sub_rep", "east_rep"]},  # the leaver himself
        {"to": "sub_rep", "split": "alphabetical"},  # unknown split
        {"to": "sub_rep", "by_kind": {"no.such": "sub_rep"}},  # unknown kind
        {"account_pool": "closed"},  # a closed pool, and nobody for the deals
        {"account_pool": "open"},  # deals and leads without a receiver
    ],
)
def test_refused_hand_over_changes_nothing(org, book, options):
    """Each refusal raises before anything is written: owners, pools, versions, history,
    hand-over records and notifications are as before, and the leaver stays active."""
    org.left_rep = org.east_rep2
    org.left_rep.is_active = False
    org.left_rep.save()
    pools = {"closed": PublicPool.objects.create(name="关", is_active=False),
             "open": PublicPool.objects.create(name="开")}  # fmt: skip

    def resolve(value):
        if isinstance(value, list):
            return [getattr(org, v) for v in value]
        if isinstance(value, dict):
            return {k: getattr(org, v) for k, v in value.items()}
        return pools[value] if value in pools else getattr(org, value, value)

    kwargs = {k: resolve(v) for k, v in options.items()}
    before = snapshot()
    with pytest.raises(ValidationFailed):
        handover.hand_over(org.east_rep, actor=org.admin, deactivate=True, **kwargs)
    assert snapshot() == before
    org.east_rep.refresh_from_db()
    assert org.east_rep.is_active


def test_a_failing_listener_rolls_the_whole_hand_over_back(org, book):
    """The handed_over listeners run inside the transaction: one that fails undoes every
    move, record and notification."""

    def broken(record, **context):
        raise ValidationFailed("listener refuses")

    before = snapshot()
    hooks.on("handed_over", broken)
    try:
        with pytest.raises(ValidationFailed):
            handover.hand_over(org.east_rep, receivers=[org.east_rep2, org.sub_rep])
    finally:
        hooks.off("handed_over", broken)
    assert snapshot() == before


def test_handed_over_is_emitted_once_and_says_who_got_what(org, book):
    """A split hand-over emits one event; its record maps every opportunity to the rep
    who received it (what the tasks module reads to reassign task assignees)."""
    seen = []

    def listener(record, **context):
        seen.append((record.pk, record.moved_to("pipeline.opportunity"), context["actor"]))

    hooks.on("handed_over", listener)
    try:
        record = handover.hand_over(org.east_rep, actor=org.admin,
                                    receivers=[org.east_rep2, org.sub_rep])  # fmt: skip
    finally:
        hooks.off("handed_over", listener)
    assert len(seen) == 1 and seen[0][0] == record.pk and seen[0][2] == org.admin
    expected = dict(Opportunity.objects.filter(account__name__startswith="客户")
                    .values_list("pk", "owner_id"))  # fmt: skip
    assert seen[0][1] == expected and set(expected.values()) == {org.east_rep2.pk,
                                                                 org.sub_rep.pk}  # fmt: skip


def test_split_deactivates_the_leaver(org, book):
    """The split hand-over deactivates the leaver in the same step."""
    handover.hand_over(org.east_rep, receivers=[org.east_rep2, org.sub_rep], deactivate=True)
    org.east_rep.refresh_from_db()
    assert not org.east_rep.is_active and org.east_rep.left_on is not None


def test_api_plan_and_split_hand_over(client, org, book, bearer):
    """The API previews the split (nothing written), then hands over with 201 and the
    shares; an unknown kind is 422, a leaver outside the manager's scope 404."""
    headers = bearer(org.east_mgr)
    body = {"from_id": org.east_rep.pk, "receiver_ids": [org.east_rep2.pk, org.sub_rep.pk]}
    r = client.post("/api/v1/handovers/plan", body, content_type="application/json",
                    headers=headers)  # fmt: skip
    assert r.status_code == 200, r.content
    assert r.json()["total"] == 14 and Account.objects.filter(owner=org.east_rep).count() == 5
    r = client.post("/api/v1/handovers", {**body, "by_kind": {"x.y": org.sub_rep.pk}},
                    content_type="application/json", headers=headers)  # fmt: skip
    assert r.status_code == 422
    r = client.post("/api/v1/handovers", {**body, "from_id": org.south_rep.pk},
                    content_type="application/json", headers=headers)  # fmt: skip
    assert r.status_code == 404
    r = client.post("/api/v1/handovers", body, content_type="application/json", headers=headers)
    assert r.status_code == 201, r.content
    assert r.json()["to_id"] is None
    got = {(s["label"], s["to_id"]): s["count"] for s in r.json()["shares"]}
    assert got[("customers.account", org.east_rep2.pk)] == 3


def test_api_accounts_into_a_pool(client, org, book, bearer):
    """account_pool_id puts the accounts into the pool through the API."""
    pool = PublicPool.objects.create(name="客户公海")
    r = client.post("/api/v1/handovers", {"from_id": org.east_rep.pk, "to_id": org.sub_rep.pk,
                    "account_pool_id": pool.pk}, content_type="application/json",
                    headers=bearer(org.admin))  # fmt: skip
    assert r.status_code == 201, r.content
    assert Account.objects.filter(pool=pool).count() == 5


def test_cli_split_with_a_kind_receiver(org, book, capsys):
    """``loudou handover east_rep east_rep2 sub_rep --kind leads.lead=east_mgr --dry-run``
    prints who would get what and changes nothing; without --dry-run it splits."""
    args = ["handover", "east_rep", "east_rep2", "sub_rep", "--kind", "leads.lead=east_mgr"]
    call_command(*args, "--dry-run")
    out = capsys.readouterr().out
    assert "14 records would move" in out and "east_mgr" in out
    assert Account.objects.filter(owner=org.east_rep).count() == 5
    call_command(*args)
    assert Lead.objects.filter(owner=org.east_mgr).count() == 4
    assert set(owners(Account, name__startswith="客户")) == {org.east_rep2.pk, org.sub_rep.pk}


def test_page_previews_then_splits(client, org, book):
    """The page shows who would get what for a split, moves nothing on preview, and
    hands over once confirmed; the detail page lists the shares."""
    client.force_login(org.east_mgr)
    url = reverse("org:handover")
    data = {"from_user": org.east_rep.pk, "receivers": [org.east_rep2.pk, org.sub_rep.pk],
            "split": "round_robin"}  # fmt: skip
    page = client.post(url, {**data, "preview": "1"}).content.decode()
    assert 'data-testid="handover-preview"' in page and "sub_rep" in page
    assert Account.objects.filter(owner=org.east_rep).count() == 5
    response = client.post(url, {**data, "confirm": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Account.objects.filter(owner=org.east_rep).exists()
    detail = client.get(response.url).content.decode()
    assert 'data-testid="handover-shares"' in detail


def test_page_per_kind_receiver_field(client, org, book):
    """A per-kind receiver chosen on the page takes that kind."""
    client.force_login(org.admin)
    data = {"from_user": org.east_rep.pk, "to": org.sub_rep.pk,
            "kind__leads__lead": org.east_rep2.pk, "confirm": "on"}  # fmt: skip
    assert client.post(reverse("org:handover"), data).status_code == 302
    assert Lead.objects.filter(owner=org.east_rep2, name__startswith="线索").count() == 4
    assert Account.objects.filter(owner=org.sub_rep).count() == 5
