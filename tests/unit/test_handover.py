"""Hand-over of a leaving rep's records: everything moves, nothing else does; who may
do it; the pool option; the record, history and notification; API and CLI."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from loudou.core.exceptions import NotPermitted, ValidationFailed
from loudou.customers.models import Account
from loudou.customers.services import create_account
from loudou.leads import services as leads
from loudou.leads.choices import LeadStatus
from loudou.leads.models import Lead, PoolEvent, PublicPool
from loudou.notifications.models import Notification
from loudou.org import handover
from loudou.org.models import HandOver
from loudou.pipeline.models import Opportunity
from loudou.pipeline.services import create_opportunity, create_pipeline_from_template


@pytest.fixture
def book(org):
    """east_rep owns 2 accounts, 1 opportunity, 2 open leads and 1 converted-looking
    closed lead; east_rep2 owns 1 account and 1 lead that must not move."""
    pipeline = create_pipeline_from_template("classic")
    a1 = create_account(actor=org.east_rep, name="甲公司")
    create_account(actor=org.east_rep, name="乙公司")
    create_opportunity(actor=org.east_rep, pipeline=pipeline, name="甲 · 软件", account=a1)
    for name in ("线索一", "线索二", "线索三"):
        leads.create_lead(actor=org.east_rep, name=name)
    Lead.objects.filter(name="线索三").update(status=LeadStatus.DISQUALIFIED)
    create_account(actor=org.east_rep2, name="丙公司")
    leads.create_lead(actor=org.east_rep2, name="别人的线索")
    return pipeline


def owned_by(user):
    return (
        Account.objects.filter(owner=user).count(),
        Opportunity.objects.filter(owner=user).count(),
        Lead.objects.filter(owner=user).count(),
    )


def test_inventory_finds_every_owned_model(org, book):
    """The inventory lists every OwnedModel subclass (accounts, opportunities, leads and
    any model a later app adds), with the leaving rep's counts."""
    lines = {line.label: line.count for line in handover.inventory(org.east_rep)}
    assert {"customers.account", "pipeline.opportunity", "leads.lead"} <= set(lines)
    assert (lines["customers.account"], lines["pipeline.opportunity"], lines["leads.lead"]) == (
        2, 1, 3
    )  # fmt: skip


def test_hand_over_moves_everything_and_nothing_else(org, book):
    """Everything east_rep owned now belongs to sub_rep; east_rep2's records stay; the
    record counts each kind; each lead has a hand-over history row; the receiver is
    notified once."""
    before_other = owned_by(org.east_rep2)
    record = handover.hand_over(org.east_rep, actor=org.east_mgr, to=org.sub_rep)
    assert owned_by(org.east_rep) == (0, 0, 0)
    assert owned_by(org.sub_rep) == (2, 1, 3)
    assert owned_by(org.east_rep2) == before_other
    assert record.counts == {"customers.account": 2, "pipeline.opportunity": 1, "leads.lead": 3}
    handed = PoolEvent.objects.filter(kind="handover", owner=org.sub_rep)
    assert handed.filter(lead__isnull=False).count() == 3
    assert handed.filter(account__isnull=False).count() == 2
    assert record.items.count() == 6 and record.to_user == org.sub_rep
    assert Lead.objects.filter(owner=org.sub_rep, last_owner=org.east_rep).count() == 3
    assert Notification.objects.filter(user=org.sub_rep, kind="handover").count() == 1


def test_open_leads_into_a_pool_rest_to_receiver(org, book):
    """With a pool, the two open leads go into it (unowned, last owner remembered); the
    closed lead and the accounts go to the receiver."""
    pool = PublicPool.objects.create(name="公海")
    handover.hand_over(org.east_rep, actor=org.admin, to=org.east_rep2, pool=pool)
    assert Lead.objects.filter(pool=pool, owner=None, last_owner=org.east_rep).count() == 2
    assert Lead.objects.filter(owner=org.east_rep2, status=LeadStatus.DISQUALIFIED).count() == 1
    assert Account.objects.filter(owner=org.east_rep2).count() == 3


def test_pool_without_receiver_refused_when_other_records_exist(org, book):
    """Only open leads can go into a pool: without a receiver the hand-over is refused
    and nothing moves."""
    pool = PublicPool.objects.create(name="公海")
    with pytest.raises(ValidationFailed):
        handover.hand_over(org.east_rep, actor=org.admin, pool=pool)
    assert owned_by(org.east_rep) == (2, 1, 3) and not HandOver.objects.exists()


def test_deactivate_sets_left_on(org, book):
    """Deactivating after the hand-over closes the login and records the day."""
    handover.hand_over(org.east_rep, actor=org.admin, to=org.east_rep2, deactivate=True)
    org.east_rep.refresh_from_db()
    assert not org.east_rep.is_active and org.east_rep.left_on is not None


@pytest.mark.parametrize(
    ("actor", "to"),
    [("east_rep2", "east_rep2"), ("south_mgr", "south_rep"), ("east_mgr", "south_rep")],
)
def test_refused_outside_scope_changes_nothing(org, book, actor, to):
    """A rep, a manager of another team, or a manager giving to someone outside their
    subtree is refused; nothing moves."""
    with pytest.raises((NotPermitted, ValidationFailed)):
        handover.hand_over(org.east_rep, actor=getattr(org, actor), to=getattr(org, to))
    assert owned_by(org.east_rep) == (2, 1, 3) and not HandOver.objects.exists()


def test_cannot_hand_over_to_someone_who_left(org, book):
    """A receiver who left is refused."""
    org.sub_rep.is_active = False
    org.sub_rep.save()
    with pytest.raises(ValidationFailed):
        handover.hand_over(org.east_rep, actor=org.admin, to=org.sub_rep)


def test_page_shows_counts_and_hands_over(client, org, book):
    """The page lists what the rep owns, then hands it over once confirmed; without the
    confirmation box nothing moves."""
    client.force_login(org.east_mgr)
    url = reverse("org:handover")
    page = client.get(url, {"from_user": org.east_rep.pk}).content.decode()
    assert 'data-testid="inventory"' in page
    data = {"from_user": org.east_rep.pk, "to": org.sub_rep.pk}
    assert client.post(url, data).status_code == 200
    assert owned_by(org.east_rep) == (2, 1, 3)
    response = client.post(url, {**data, "confirm": "on"})
    assert response.status_code == 302
    assert owned_by(org.sub_rep) == (2, 1, 3)
    assert client.get(response.url).status_code == 200


def test_page_is_404_for_a_rep(client, org):
    """A rep cannot open the hand-over page."""
    client.force_login(org.east_rep)
    assert client.get(reverse("org:handover")).status_code == 404


def test_api_preview_and_hand_over(client, org, book, bearer):
    """The API previews the counts, refuses a rep with 403, and hands over with 201."""
    headers = bearer(org.east_mgr)
    r = client.get(f"/api/v1/handovers/preview?from_id={org.east_rep.pk}", headers=headers)
    assert r.status_code == 200 and r.json()["total"] == 6
    r = client.post("/api/v1/handovers", {"from_id": org.east_rep.pk, "to_id": org.sub_rep.pk},
                    content_type="application/json", headers=bearer(org.east_rep2))  # fmt: skip
    assert r.status_code == 403
    r = client.post("/api/v1/handovers", {"from_id": org.east_rep.pk, "to_id": org.sub_rep.pk},
                    content_type="application/json", headers=headers)  # fmt: skip
    assert r.status_code == 201, r.content
    assert r.json()["counts"]["customers.account"] == 2 and r.json()["from_id"] == org.east_rep.pk


def test_cli_dry_run_then_hand_over(org, book, capsys):
    """``loudou handover --dry-run`` counts and changes nothing; without it, it moves."""
    call_command("handover", "east_rep", "sub_rep", "--dry-run")
    assert "6 records would move" in capsys.readouterr().out
    assert owned_by(org.east_rep) == (2, 1, 3)
    call_command("handover", "east_rep", "sub_rep")
    assert owned_by(org.sub_rep) == (2, 1, 3)
