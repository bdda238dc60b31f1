""" "At least 7 contacts before closing as lost" (DOMAIN §6): the before_lose check
refuses through the service, the API (422 on a field) and the page (an error message),
changing nothing; enough contacts let the deal be closed."""

import pytest

from loudou.activities.services import log_activity
from loudou.customers.services import create_account
from loudou.leads.services import convert_lead, create_lead
from loudou.org.models import Role
from loudou.pipeline import services as pipeline_services
from loudou.pipeline.models import LostReason, Opportunity
from loudou.rules import services
from loudou.rules.models import FollowUpRule, Requirement


@pytest.fixture
def rule(db):
    """The shipped rule, switched on (it ships switched off)."""
    rule = FollowUpRule.objects.get(requirement=Requirement.CONTACTS_BEFORE_LOST)
    FollowUpRule.objects.filter(pk=rule.pk).update(is_active=True)
    rule.refresh_from_db()
    return rule


@pytest.fixture
def opp(org, rule):
    pipeline = pipeline_services.create_pipeline_from_template("classic")
    pipeline_services.ensure_lost_reasons()
    account = create_account(actor=org.east_rep, name="恒信科技")
    return pipeline_services.create_opportunity(
        actor=org.east_rep, pipeline=pipeline, account=account, name="试点项目"
    )


def calls(user, n, **links):
    for _ in range(n):
        log_activity(user, kind="call", outcome="reached", **links)


def test_the_rule_ships_switched_off(db):
    """Shipped off, so that imported history is not refused; the demo switches it on."""
    rule = FollowUpRule.objects.get(requirement=Requirement.CONTACTS_BEFORE_LOST)
    assert (rule.is_active, rule.amount, rule.applies_to) == (False, 7, "opportunity")


def test_service_refuses_with_six_contacts(org, opp, english):
    """Six contacts are not "more than six": refused on the reason field, still open."""
    calls(org.east_rep, 6, opportunity=opp)
    with pytest.raises(services.ValidationFailed) as refused:
        pipeline_services.lose_opportunity(opp, LostReason.objects.first(), actor=org.east_rep)
    assert refused.value.field == "reason"
    assert refused.value.code == "too_few_contacts"
    assert "at least 7" in refused.value.message and "so far: 6" in refused.value.message
    assert Opportunity.objects.get(pk=opp.pk).status == "open"


def test_contacts_on_account_and_lead_count(org, rule):
    """Contacts on the opportunity, on its account (not on another deal) and on the lead
    it was converted from all count; research and cancelled ones do not."""
    pipeline = pipeline_services.create_pipeline_from_template("classic")
    lead, _d = create_lead(actor=org.east_rep, owner=org.east_rep, name="张三", company="华通",
                           mobile="13800000000")  # fmt: skip
    calls(org.east_rep, 2, lead=lead)
    lead = convert_lead(lead, actor=org.east_rep, pipeline=pipeline)
    opp = lead.converted_opportunity
    other = pipeline_services.create_opportunity(
        actor=org.east_rep, pipeline=pipeline, account=opp.account, name="另一个"
    )
    calls(org.east_rep, 2, opportunity=opp)
    calls(org.east_rep, 2, account=opp.account)
    calls(org.east_rep, 3, opportunity=other)
    log_activity(org.east_rep, kind="research", account=opp.account)
    log_activity(org.east_rep, kind="visit", outcome="cancelled", opportunity=opp)
    assert services.contacts_for_opportunity(opp) == 6
    calls(org.east_rep, 1, opportunity=opp)
    assert services.contacts_for_opportunity(opp) == 7
    pipeline_services.ensure_lost_reasons()
    lost = pipeline_services.lose_opportunity(opp, LostReason.objects.first(), actor=org.east_rep)
    assert lost.status == "lost"


def test_api_answers_422_on_the_reason_field(client, org, opp, bearer, english):
    """POST …/lost with too few contacts: 422 JSON naming the field, nothing changed."""
    calls(org.east_rep, 3, opportunity=opp)
    response = client.post(
        f"/api/v1/opportunities/{opp.pk}/lost",
        {"version": opp.version, "reason_id": LostReason.objects.first().pk},
        content_type="application/json",
        headers=bearer(org.east_rep),
    )
    assert response.status_code == 422
    body = response.json()
    assert (body["field"], body["code"]) == ("reason", "too_few_contacts")
    assert Opportunity.objects.get(pk=opp.pk).status == "open"


def test_api_closes_with_seven_contacts(client, org, opp, bearer):
    """With seven contacts the same request closes the deal."""
    calls(org.east_rep, 7, opportunity=opp)
    response = client.post(
        f"/api/v1/opportunities/{opp.pk}/lost",
        {"version": opp.version, "reason_id": LostReason.objects.first().pk},
        content_type="application/json",
        headers=bearer(org.east_rep),
    )
    assert response.status_code == 200
    assert response.json()["status"] == "lost"


def test_page_shows_the_refusal(client, org, opp, english):
    """The opportunity page's "close as lost" form comes back with the refusal and the
    deal stays open."""
    client.force_login(org.east_rep)
    response = client.post(
        f"/pipeline/opportunities/{opp.pk}/lost/",
        {"version": opp.version, "reason": LostReason.objects.first().pk, "note": ""},
        follow=True,
    )
    assert response.status_code == 200
    assert "at least 7 times before the deal is closed as lost" in response.content.decode()
    assert Opportunity.objects.get(pk=opp.pk).status == "open"


def test_rule_limited_to_another_pipeline_does_not_refuse(org, opp, rule):
    """A rule whose conditions name another pipeline leaves this deal alone."""
    other = pipeline_services.create_pipeline_from_template("dcba")
    services.update_rule(rule, actor=org.admin, conditions={"pipelines": [other.pk]})
    lost = pipeline_services.lose_opportunity(opp, LostReason.objects.first(), actor=org.east_rep)
    assert lost.status == "lost"


def test_only_admins_edit_rules(org, rule):
    """A manager may not change a rule: refused, unchanged."""
    assert org.east_mgr.role == Role.MANAGER
    with pytest.raises(services.NotPermitted):
        services.update_rule(rule, actor=org.east_mgr, amount=3)
    rule.refresh_from_db()
    assert rule.amount == 7


def test_page_puts_the_refusal_on_the_reason_field(client, org, opp, english):
    """The refusal comes back on the "close as lost" form itself: the panel open, the
    message under the reason, what the rep chose and wrote kept."""
    client.force_login(org.east_rep)
    reason = LostReason.objects.first()
    response = client.post(
        f"/pipeline/opportunities/{opp.pk}/lost/",
        {"version": opp.version, "reason": reason.pk, "note": "预算取消"},
    )
    form = response.context["lose_form"]
    assert "at least 7 times" in " ".join(form.errors["reason"])
    html = response.content.decode()
    assert 'class="collapse mb-3 show" id="lose-panel"' in html
    assert "预算取消" in html
    assert Opportunity.objects.get(pk=opp.pk).status == "open"
