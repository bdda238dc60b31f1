"""Lead services: create with dedupe and rules, claim, release, disqualify, convert."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.customers.models import Account, Contact
from loudou.customers.services import create_account, create_contact
from loudou.leads import services
from loudou.leads.models import AssignmentRule, Lead, PoolEvent, PublicPool
from loudou.pipeline.models import Opportunity, ProductLine, StageChange
from loudou.pipeline.services import create_pipeline_from_template


@pytest.fixture
def pool(org):
    """An East pool: reps in 华东区 (and below) may claim, three a day, five owned."""
    pool = PublicPool.objects.create(
        name="华东公海", daily_claim_limit=3, max_owned=5, reclaim_block_days=7
    )
    pool.regions.set([org.east_region])
    return pool


def pooled(org, pool, **fields):
    fields.setdefault("name", "王伟")
    return services.create_lead(actor=org.admin, pool=pool, **fields)[0]


def row(lead):
    return Lead.objects.filter(pk=lead.pk).values().get()


# --- create ----------------------------------------------------------------------------


def test_create_without_owner_or_rule_gives_the_lead_to_its_creator(org):
    """With no owner, no pool and no matching rule, the creator owns the new lead."""
    lead, dups = services.create_lead(actor=org.east_rep, name="李娜", mobile="+86 139 0000 1111")
    assert (lead.owner_id, lead.pool_id, lead.mobile_key) == (org.east_rep.pk, None, "13900001111")
    assert not dups
    assert list(PoolEvent.objects.filter(lead=lead).values_list("kind", flat=True)) == ["create"]


def test_create_into_a_pool_leaves_it_unowned(org, pool):
    """A lead created straight into a pool has no owner."""
    lead = pooled(org, pool)
    assert (lead.owner_id, lead.pool_id) == (None, pool.pk)


def test_create_with_owner_and_pool_is_refused(org, pool):
    """Owner and pool at once is refused and nothing is written."""
    with pytest.raises(ValidationFailed):
        services.create_lead(actor=org.admin, owner=org.east_rep, pool=pool, name="X")
    assert Lead.objects.count() == 0


def test_database_refuses_owned_and_pooled_at_once(org, pool):
    """The check constraint holds even against a raw update."""
    lead = pooled(org, pool)
    with pytest.raises(IntegrityError), transaction.atomic():
        Lead.objects.filter(pk=lead.pk).update(owner=org.east_rep)


def test_create_warns_of_duplicates_by_phone_email_and_company(org):
    """A new lead reports leads, accounts and contacts sharing a normalised key."""
    first, _ = services.create_lead(actor=org.east_rep, name="A", mobile="13812345678")
    account = create_account(actor=org.east_rep, name="上海恒信科技有限公司")
    contact = create_contact(account, actor=org.east_rep, name="B", email="b@hx.cn")
    _lead, dups = services.create_lead(
        actor=org.east_rep, name="C", mobile="+86 138-1234-5678", email=" B@HX.CN ",
        company="上海恒信科技 (有限公司)",
    )  # fmt: skip
    assert [x.pk for x in dups.leads] == [first.pk]
    assert [x.pk for x in dups.accounts] == [account.pk]
    assert [x.pk for x in dups.contacts] == [contact.pk]
    assert dups.hidden == 0


def test_duplicates_out_of_sight_are_only_counted(org):
    """A rep learns that a colleague has a duplicate, without seeing it."""
    services.create_lead(actor=org.south_rep, name="A", mobile="13812345678")
    _lead, dups = services.create_lead(actor=org.east_rep, name="B", mobile="13812345678")
    assert (dups.leads, dups.hidden) == ([], 1)


def test_update_refuses_a_stale_version(org):
    """An edit made from an old copy is a conflict and changes nothing."""
    lead, _ = services.create_lead(actor=org.east_rep, name="A")
    services.update_lead(lead, actor=org.east_rep, version=1, company="新公司")
    before = row(lead)
    with pytest.raises(Conflict):
        services.update_lead(lead, actor=org.east_rep, version=1, company="旧公司")
    assert row(lead) == before


def test_update_keeps_keys_in_step(org):
    """Changing the e-mail changes its dedupe key."""
    lead, _ = services.create_lead(actor=org.east_rep, name="A", email="a@x.cn")
    lead = services.update_lead(lead, actor=org.east_rep, version=1, email="New@X.cn")
    assert lead.email_key == "new@x.cn"


# --- claim -----------------------------------------------------------------------------


def test_claim_makes_the_rep_owner_and_empties_the_pool(org, pool):
    """A claim moves the lead from the pool to the rep and records the event."""
    lead = services.claim_lead(pooled(org, pool), rep=org.east_rep)
    assert (lead.owner_id, lead.pool_id, lead.version) == (org.east_rep.pk, None, 2)
    event = PoolEvent.objects.get(lead=lead, kind="claim")
    assert (event.by_id, event.pool_id, event.owner_id) == (
        org.east_rep.pk,
        pool.pk,
        org.east_rep.pk,
    )


def _refused(lead, rep, code):
    before = row(lead)
    with pytest.raises(Conflict) as info:
        services.claim_lead(lead, rep=rep)
    assert info.value.code == code
    assert row(lead) == before
    return info.value


def test_claim_of_a_taken_lead_is_refused(org, pool):
    """A lead someone owns already is "taken", and stays theirs."""
    lead = services.claim_lead(pooled(org, pool), rep=org.east_rep)
    _refused(lead, org.east_rep2, "taken")


def test_claim_outside_the_pools_region_is_refused(org, pool, english):
    """A rep of 华南区 cannot claim from the 华东区 pool."""
    error = _refused(pooled(org, pool), org.south_rep, "region")
    assert "region" in error.message


def test_claim_beyond_the_daily_limit_is_refused(org, pool, english):
    """The fourth claim of the day against a limit of three is refused."""
    leads = [pooled(org, pool, name=f"L{i}") for i in range(4)]
    for lead in leads[:3]:
        services.claim_lead(lead, rep=org.east_rep)
    error = _refused(leads[3], org.east_rep, "limit")
    assert "3 of 3" in error.message


def test_claim_beyond_max_owned_is_refused(org, pool):
    """A rep who owns the pool's maximum of open leads cannot claim more."""
    for i in range(5):
        services.create_lead(actor=org.east_rep, name=f"own{i}")
    _refused(pooled(org, pool), org.east_rep, "limit")


def test_closed_leads_do_not_count_against_max_owned(org, pool):
    """Disqualified leads are not open, so they leave room under max_owned."""
    for i in range(5):
        lead, _ = services.create_lead(actor=org.east_rep, name=f"own{i}")
        services.disqualify_lead(lead, actor=org.east_rep, reason="空号")
    assert services.claim_lead(pooled(org, pool), rep=org.east_rep).owner_id == org.east_rep.pk


def test_previous_owner_is_blocked_then_allowed(org, pool):
    """After releasing, the rep waits reclaim_block_days; then the claim works."""
    lead = services.claim_lead(pooled(org, pool), rep=org.east_rep)
    lead = services.release_lead(lead, rep=org.east_rep, reason="联系不上")
    _refused(lead, org.east_rep, "blocked")
    assert services.claim_lead(lead, rep=org.east_rep2).owner_id == org.east_rep2.pk
    lead = services.release_lead(Lead.objects.get(pk=lead.pk), rep=org.east_rep2, reason="不需要")
    Lead.objects.filter(pk=lead.pk).update(
        claim_blocked_until=timezone.now() - timedelta(seconds=1)
    )
    assert services.claim_lead(lead, rep=org.east_rep2).owner_id == org.east_rep2.pk


# --- release, assign, disqualify ---------------------------------------------------------


def test_release_needs_a_reason(org, pool):
    """An empty reason is refused and the lead stays owned."""
    lead = services.claim_lead(pooled(org, pool), rep=org.east_rep)
    before = row(lead)
    with pytest.raises(ValidationFailed) as info:
        services.release_lead(lead, rep=org.east_rep, reason="  ")
    assert info.value.field == "reason"
    assert row(lead) == before


def test_release_returns_to_the_pool_it_came_from_with_a_block(org, pool):
    """Release puts the lead back in its pool, remembers the owner and blocks them."""
    lead = services.claim_lead(pooled(org, pool), rep=org.east_rep)
    lead = services.release_lead(lead, rep=org.east_rep, reason="预算不足")
    assert (lead.owner_id, lead.pool_id, lead.last_owner_id) == (None, pool.pk, org.east_rep.pk)
    assert lead.claim_blocked_until - lead.released_at == timedelta(days=7)
    assert PoolEvent.objects.get(lead=lead, kind="release").reason == "预算不足"


def test_a_colleague_cannot_release_someone_elses_lead(org, pool):
    """A rep beside the owner may not release the owner's lead."""
    lead, _ = services.create_lead(actor=org.east_rep, name="A")
    before = row(lead)
    with pytest.raises(NotPermitted):
        services.release_lead(lead, rep=org.east_rep2, reason="x", pool=pool)
    assert row(lead) == before


def test_manager_may_release_a_team_members_lead(org, pool):
    """The owner's manager may release it."""
    lead, _ = services.create_lead(actor=org.east_rep, name="A")
    lead = services.release_lead(lead, rep=org.east_mgr, reason="调整", pool=pool)
    assert (lead.owner_id, lead.pool_id, lead.released_by_id) == (None, pool.pk, org.east_mgr.pk)


def test_disqualify_needs_a_reason_and_keeps_the_row(org):
    """Disqualifying records the reason; an empty reason is refused."""
    lead, _ = services.create_lead(actor=org.east_rep, name="A")
    with pytest.raises(ValidationFailed):
        services.disqualify_lead(lead, actor=org.east_rep, reason="")
    lead = services.disqualify_lead(lead, actor=org.east_rep, reason="空号")
    assert (lead.status, lead.disqualified_reason) == ("disqualified", "空号")
    with pytest.raises(Conflict):
        services.disqualify_lead(lead, actor=org.east_rep, reason="again")


def test_assign_to_someone_the_actor_may_not_give_to_is_refused(org):
    """A rep cannot hand a lead to a rep of another team."""
    lead, _ = services.create_lead(actor=org.east_rep, name="A")
    before = row(lead)
    with pytest.raises(ValidationFailed):
        services.assign_lead(lead, actor=org.east_rep, to=org.south_rep)
    assert row(lead) == before


# --- convert -----------------------------------------------------------------------------


@pytest.fixture
def pipeline(db):
    return create_pipeline_from_template("classic")


def _counts():
    return {
        "leads": Lead.objects.count(),
        "accounts": Account.objects.count(),
        "contacts": Contact.objects.count(),
        "opportunities": Opportunity.objects.count(),
        "stage_changes": StageChange.objects.count(),
        "events": PoolEvent.objects.count(),
    }


def test_conversion_creates_everything_and_loses_nothing(org, pipeline):
    """Conversion adds exactly one account, contact, opportunity, stage change and event,
    keeps the lead row, and carries every field over."""
    cloud = ProductLine.objects.create(code="cloud", name="云平台")
    lead, _ = services.create_lead(
        actor=org.east_rep, name="王伟", company="上海恒信科技有限公司", title="采购经理",
        mobile="13812345678", phone="021-61234567", email="ww@hx.cn", wechat="ww_hx",
        source="exhibition", region=org.shanghai, industry="制造", product_interest=cloud,
        notes="展会上认识",
    )  # fmt: skip
    lead.shared_with.add(org.east_rep2)
    before = _counts()
    lead = services.convert_lead(
        lead, actor=org.east_rep, pipeline=pipeline, amount=Decimal("50000")
    )
    after = _counts()
    assert {k: after[k] - before[k] for k in after} == {
        "leads": 0, "accounts": 1, "contacts": 1, "opportunities": 1, "stage_changes": 1,
        "events": 1,
    }  # fmt: skip
    account, contact, opp = (
        lead.converted_account,
        lead.converted_contact,
        lead.converted_opportunity,
    )
    assert lead.status == "converted"
    assert (account.name, account.industry, account.region_id, account.source, account.phone,
            account.notes, account.owner_id) == (
        "上海恒信科技有限公司", "制造", org.shanghai.pk, "exhibition", "021-61234567",
        "展会上认识", org.east_rep.pk)  # fmt: skip
    assert (contact.account_id, contact.name, contact.title, contact.mobile, contact.phone,
            contact.email, contact.wechat, contact.notes) == (
        account.pk, "王伟", "采购经理", "13812345678", "021-61234567", "ww@hx.cn", "ww_hx",
        "展会上认识")  # fmt: skip
    assert (opp.account_id, opp.amount, opp.product_line_id, opp.source, opp.owner_id,
            opp.description) == (account.pk, Decimal("50000.00"), cloud.pk, "exhibition",
                                 org.east_rep.pk, "展会上认识")  # fmt: skip
    assert list(opp.contacts.all()) == [contact]
    assert list(account.shared_with.all()) == [org.east_rep2]
    assert account.name_key == "上海恒信科技" and contact.mobile_key == "13812345678"


def test_conversion_attaches_to_an_existing_account(org, pipeline):
    """With an account given, no new account is created."""
    account = create_account(actor=org.east_rep, name="恒信科技有限公司")
    lead, _ = services.create_lead(actor=org.east_rep, name="A", company="恒信科技", mobile="1")
    before = Account.objects.count()
    lead = services.convert_lead(lead, actor=org.east_rep, account=account, pipeline=pipeline)
    assert Account.objects.count() == before
    assert lead.converted_contact.account_id == account.pk


def test_conversion_without_required_fields_is_refused_and_writes_nothing(org, pipeline):
    """By default company and a mobile or e-mail are required."""
    lead, _ = services.create_lead(actor=org.east_rep, name="A", company="公司")
    before, lead_row = _counts(), row(lead)
    with pytest.raises(ValidationFailed) as info:
        services.convert_lead(lead, actor=org.east_rep, pipeline=pipeline)
    assert info.value.field == "mobile"
    assert (_counts(), row(lead)) == (before, lead_row)


def test_conversion_requirements_are_configurable(org, pipeline, settings):
    """LOUDOU_CONVERSION_REQUIRED replaces the default requirements."""
    settings.LOUDOU_CONVERSION_REQUIRED = ["wechat"]
    lead, _ = services.create_lead(actor=org.east_rep, name="A", company="公司", mobile="1")
    with pytest.raises(ValidationFailed) as info:
        services.convert_lead(lead, actor=org.east_rep, pipeline=pipeline)
    assert info.value.field == "wechat"


def test_pooled_lead_cannot_be_converted(org, pool, pipeline):
    """A lead must be claimed before it converts."""
    lead = pooled(org, pool, company="公司", mobile="1")
    with pytest.raises(Conflict):
        services.convert_lead(lead, actor=org.admin, pipeline=pipeline)
    assert row(lead)["status"] == "new"


def test_conversion_without_opportunity(org):
    """create_opportunity=False makes an account and a contact only."""
    lead, _ = services.create_lead(actor=org.east_rep, name="A", company="公司", email="a@b.cn")
    before = Opportunity.objects.count()
    lead = services.convert_lead(lead, actor=org.east_rep, create_opportunity=False)
    assert (Opportunity.objects.count(), lead.converted_opportunity) == (before, None)


def test_rules_assign_new_leads(org):
    """A matching rule decides the owner of a lead created without one."""
    rule = AssignmentRule.objects.create(name="上海", region=org.east_region, method="fixed_rep",
                                         fixed_rep=org.east_rep2)  # fmt: skip
    lead, _ = services.create_lead(actor=org.admin, name="A", region=org.shanghai)
    assert lead.owner_id == org.east_rep2.pk
    assert PoolEvent.objects.get(lead=lead).reason == rule.name


def test_rep_cannot_edit_a_pooled_lead_until_claiming_it(org, pool):
    """A lead in the pool is shared by every rep who may claim it: a rep's edit is
    refused (403) and changes nothing; after claiming it, the edit goes through."""
    lead = pooled(org, pool)
    before = row(lead)
    with pytest.raises(NotPermitted):
        services.update_lead(lead, actor=org.east_rep, name="Mine now")
    assert row(lead) == before
    services.claim_lead(lead, rep=org.east_rep)
    lead.refresh_from_db()
    assert services.update_lead(lead, actor=org.east_rep, name="Mine now").name == "Mine now"
