"""Merging duplicates: every related row survives on the kept record, history is kept,
fields come from where the user chose, and records outside the user's scope are refused."""

import pytest
from django.urls import reverse

from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.customers.models import Account, Contact
from loudou.customers.services import create_account, create_contact
from loudou.leads import merge, services
from loudou.leads.models import Lead, MergeRecord, PoolEvent, PublicPool
from loudou.pipeline.models import Opportunity
from loudou.pipeline.services import create_opportunity, create_pipeline_from_template


def related_rows(account):
    return (
        Contact.objects.filter(account=account).count(),
        Opportunity.objects.filter(account=account).count(),
        Lead.objects.filter(converted_account=account).count(),
    )


@pytest.fixture
def accounts(org):
    """Two accounts of east_rep for the same company, each with contacts, an opportunity,
    a lead converted into it and a collaborator."""
    pipeline = create_pipeline_from_template("classic")
    a = create_account(actor=org.east_rep, name="上海东方医疗器械有限公司", phone="021-1",
                       shared_with=[org.east_rep2])  # fmt: skip
    b = create_account(actor=org.east_rep, name="上海东方医疗器械", industry="医疗",
                       shared_with=[org.sub_rep])  # fmt: skip
    for acc, who in ((a, "甲"), (b, "乙"), (b, "丙")):
        create_contact(acc, actor=org.east_rep, name=who)
    create_opportunity(actor=org.east_rep, pipeline=pipeline, name="A", account=a)
    create_opportunity(actor=org.east_rep, pipeline=pipeline, name="B", account=b)
    lead, _ = services.create_lead(actor=org.east_rep, name="旧线索")
    Lead.objects.filter(pk=lead.pk).update(converted_account=b)
    return a, b


def test_account_merge_keeps_every_related_row(org, accounts):
    """After merging b into a: a has all 3 contacts, both opportunities, the converted
    lead and both collaborators; b is gone; the record keeps b's fields as JSON."""
    a, b = accounts
    total = tuple(x + y for x, y in zip(related_rows(a), related_rows(b), strict=True))
    record = merge.merge("account", a.pk, b.pk, actor=org.east_rep, take=["industry"])
    assert related_rows(a) == total == (3, 2, 1)
    assert not Account.objects.filter(pk=b.pk).exists()
    a.refresh_from_db()
    assert (a.industry, a.phone) == ("医疗", "021-1")
    assert set(a.shared_with.values_list("username", flat=True)) == {"east_rep2", "sub_rep"}
    assert record.merged_data["fields"]["name"] == "上海东方医疗器械"
    assert record.moved["customers.contact.account"] == 2


def test_merge_outside_scope_is_refused_and_changes_nothing(org, accounts):
    """A rep of another team may not merge east_rep's accounts: 403, both remain."""
    a, b = accounts
    with pytest.raises(NotPermitted):
        merge.merge("account", a.pk, b.pk, actor=org.south_rep)
    assert Account.objects.filter(pk__in=[a.pk, b.pk]).count() == 2
    assert related_rows(b) == (2, 1, 1) and not MergeRecord.objects.exists()


def test_merge_one_visible_one_not_is_refused(org, accounts):
    """Even when the user sees the kept record, a second record outside their scope is
    refused."""
    a, _b = accounts
    theirs = create_account(actor=org.south_rep, name="上海东方医疗器械有限公司")
    with pytest.raises(NotPermitted):
        merge.merge("account", a.pk, theirs.pk, actor=org.east_rep)
    assert Account.objects.filter(pk=theirs.pk).exists()


def test_lead_merge_keeps_history_and_refreshes_keys(org):
    """Merging two leads moves the removed lead's pool history to the kept one, adds a
    merge line, and recomputes the duplicate keys from the chosen mobile."""
    keep, _ = services.create_lead(actor=org.east_rep, name="王伟")
    lose, _ = services.create_lead(actor=org.east_rep, name="王伟", mobile="139 0000 1111")
    events = PoolEvent.objects.filter(lead__in=[keep, lose]).count()
    merge.merge("lead", keep.pk, lose.pk, actor=org.east_rep, take=["mobile"])
    keep.refresh_from_db()
    assert keep.mobile_key == "13900001111"
    assert PoolEvent.objects.filter(lead=keep).count() == events + 1
    assert PoolEvent.objects.filter(lead=keep, kind="merge").count() == 1


def test_pooled_lead_merge_needs_admin(org):
    """A rep cannot merge a lead that sits in a pool (claim it first)."""
    pool = PublicPool.objects.create(name="公海")
    mine, _ = services.create_lead(actor=org.east_rep, name="甲")
    pooled, _ = services.create_lead(actor=org.admin, pool=pool, name="甲")
    with pytest.raises(NotPermitted):
        merge.merge("lead", mine.pk, pooled.pk, actor=org.east_rep)
    assert Lead.objects.filter(pk=pooled.pk).exists()


def test_converted_lead_is_not_merged_into_an_open_one(org):
    """Merging a converted lead away into an open one would lose its conversion: 409."""
    open_lead, _ = services.create_lead(actor=org.east_rep, name="甲")
    done, _ = services.create_lead(actor=org.east_rep, name="甲")
    Lead.objects.filter(pk=done.pk).update(status="converted")
    with pytest.raises(Conflict):
        merge.merge("lead", open_lead.pk, done.pk, actor=org.east_rep)


def test_bad_input_is_refused(org):
    """The same record twice, or an unknown field, is a 422."""
    lead, _ = services.create_lead(actor=org.east_rep, name="甲")
    other, _ = services.create_lead(actor=org.east_rep, name="乙")
    with pytest.raises(ValidationFailed):
        merge.merge("lead", lead.pk, lead.pk, actor=org.east_rep)
    with pytest.raises(ValidationFailed):
        merge.merge("lead", lead.pk, other.pk, actor=org.east_rep, take=["owner"])


def test_contact_merge_moves_opportunity_links(org, accounts):
    """Two contacts merged: the opportunity that named the removed contact now names the
    kept one (a many-to-many link from another model)."""
    a, _b = accounts
    c1 = create_contact(a, actor=org.east_rep, name="李", mobile="13900002222")
    c2 = create_contact(a, actor=org.east_rep, name="李先生", mobile="+86 139-0000-2222")
    opp = Opportunity.objects.filter(account=a).first()
    opp.contacts.add(c2)
    assert [c.pk for c in merge.candidates(c1, org.east_rep)] == [c2.pk]
    merge.merge("contact", c1.pk, c2.pk, actor=org.east_rep)
    assert list(opp.contacts.values_list("pk", flat=True)) == [c1.pk]


def test_merge_page_and_api(client, org, accounts, bearer):
    """The merge screen shows both records side by side; posting merges; the API merges
    with 201 and answers 403 outside scope."""
    a, b = accounts
    client.force_login(org.east_rep)
    url = reverse("leads:merge")
    page = client.get(url, {"model": "account", "keep": a.pk}).content.decode()
    assert f"lose={b.pk}" in page  # b is listed as a candidate
    page = client.get(url, {"model": "account", "keep": a.pk, "lose": b.pk})
    assert 'data-testid="merge-table"' in page.content.decode()
    other = create_account(actor=org.east_rep, name="上海东方医疗器械有限公司")
    r = client.post("/api/v1/merges", {"model": "account", "keep_id": a.pk, "lose_id": other.pk},
                    content_type="application/json", headers=bearer(org.south_rep))  # fmt: skip
    assert r.status_code == 403
    r = client.post(url, {"model": "account", "keep": a.pk, "lose": b.pk, "take": ["industry"]})
    assert r.status_code == 302 and not Account.objects.filter(pk=b.pk).exists()
    r = client.post("/api/v1/merges", {"model": "account", "keep_id": a.pk, "lose_id": other.pk},
                    content_type="application/json", headers=bearer(org.east_rep))  # fmt: skip
    assert r.status_code == 201 and r.json()["kept_id"] == a.pk
