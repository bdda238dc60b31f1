"""The pipeline API: pipelines and stages (read by all, written by admins), opportunities
(scoped, versioned, moved through the services), their history and the list filters."""

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loudou.customers.services import create_account, create_contact
from loudou.pipeline import services
from loudou.pipeline.models import LostReason, Opportunity, Pipeline, ProductLine, StageChange

pytestmark = pytest.mark.django_db

API = "/api/v1"


# --- helpers --------------------------------------------------------------------------


class Api:
    """Calls the API as a user of the ``org`` fixture, one token per user."""

    def __init__(self, client, bearer):
        self.client, self.bearer, self.headers = client, bearer, {}

    def _auth(self, user):
        if user.pk not in self.headers:
            self.headers[user.pk] = self.bearer(user)
        return self.headers[user.pk]

    def get(self, user, path, **params):
        return self.client.get(API + path, params, headers=self._auth(user))

    def post(self, user, path, body=None):
        return self.client.post(
            API + path, json.dumps(body or {}), "application/json", headers=self._auth(user)
        )

    def patch(self, user, path, body):
        return self.client.patch(
            API + path, json.dumps(body), "application/json", headers=self._auth(user)
        )


@pytest.fixture
def api(client, bearer, english):
    return Api(client, bearer)


@pytest.fixture
def dcba(db):
    return services.create_pipeline_from_template("dcba")


@pytest.fixture
def reason(db):
    services.ensure_lost_reasons()
    return LostReason.objects.get(name="价格太高")


def stage(pipeline, code):
    return pipeline.stages.get(code=code)


def make_opp(owner, pipeline, code="D", *, account=None, amount="10000", **kwargs):
    return services.create_opportunity(
        actor=owner,
        pipeline=pipeline,
        stage=stage(pipeline, code),
        name=kwargs.pop("name", "年度采购"),
        account=account or create_account(actor=owner, name="华东机械"),
        amount=Decimal(amount),
        **kwargs,
    )


def reload(opp):
    return Opportunity.objects.get(pk=opp.pk)


def snapshot(opp) -> dict:
    fresh = reload(opp)
    return {
        "stage": fresh.stage_id,
        "status": fresh.status,
        "version": fresh.version,
        "probability": fresh.probability,
        "name": fresh.name,
        "history": fresh.stage_changes.count(),
    }


def ids(response) -> list[int]:
    return [item["id"] for item in response.json()["items"]]


# --- pipelines ------------------------------------------------------------------------


def test_list_pipelines_with_stages_in_order(api, org, dcba):
    """Any signed-in user reads the pipelines with their stages in order, rates as
    decimal strings."""
    response = api.get(org.east_rep, "/pipelines")
    assert response.status_code == 200
    [pipeline] = response.json()
    assert (pipeline["id"], pipeline["template"], pipeline["checklist_mode"]) == (
        dcba.pk,
        "dcba",
        "strict",
    )
    assert [(s["code"], s["kind"], s["default_probability"]) for s in pipeline["stages"]] == [
        ("D", "open", "10.00"),
        ("C", "open", "25.00"),
        ("B", "open", "50.00"),
        ("A", "open", "80.00"),
        ("won", "won", "100.00"),
        ("lost", "lost", "0.00"),
    ]
    assert pipeline["stages"][1]["checklist"] == ["需求明确", "有支付能力"]


def test_archived_pipelines_only_on_request(api, org, dcba):
    """Archived pipelines are left out unless ``archived=true``."""
    classic = services.create_pipeline_from_template("classic")
    services.update_pipeline(classic, is_archived=True)
    assert [p["id"] for p in api.get(org.east_rep, "/pipelines").json()] == [dcba.pk]
    listed = api.get(org.east_rep, "/pipelines", archived="true").json()
    assert [p["id"] for p in listed] == [dcba.pk, classic.pk]


def test_admin_creates_pipeline_from_template(api, org):
    """An admin creates a pipeline from a template, with its name and settings."""
    line = ProductLine.objects.create(code="pumps", name="水泵")
    response = api.post(
        org.admin,
        "/pipelines",
        {
            "template": "classic",
            "name": "水泵销售",
            "name_en": "Pumps",
            "product_line_id": line.pk,
            "checklist_mode": "advisory",
            "learn_win_rates": True,
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["name_en"], body["product_line_id"]) == (
        "水泵销售",
        "Pumps",
        line.pk,
    )
    assert (body["checklist_mode"], body["learn_win_rates"]) == ("advisory", True)
    assert [s["code"] for s in body["stages"]] == ["interest", "inquiry", "proposal", "won", "lost"]


@pytest.mark.parametrize("who", ["east_mgr", "east_rep"])
def test_non_admin_cannot_create_pipeline(api, org, who):
    """Managers and reps get 403 JSON and nothing is created."""
    response = api.post(getattr(org, who), "/pipelines", {"template": "classic"})
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert Pipeline.objects.count() == 0


def test_unknown_template_is_422(api, org):
    """A template that does not exist is invalid input."""
    response = api.post(org.admin, "/pipelines", {"template": "dreams"})
    assert response.status_code == 422
    assert Pipeline.objects.count() == 0


def test_get_pipeline(api, org, dcba):
    """One pipeline answers with its stages; an unknown id is 404."""
    response = api.get(org.south_rep, f"/pipelines/{dcba.pk}")
    assert response.status_code == 200
    assert [s["code"] for s in response.json()["stages"]][:4] == ["D", "C", "B", "A"]
    assert api.get(org.south_rep, f"/pipelines/{dcba.pk + 100}").status_code == 404


def test_admin_patches_pipeline(api, org, dcba):
    """An admin renames a pipeline and switches its checklist mode."""
    response = api.patch(
        org.admin, f"/pipelines/{dcba.pk}", {"name": "分级漏斗", "checklist_mode": "advisory"}
    )
    assert response.status_code == 200
    dcba.refresh_from_db()
    assert (dcba.name, dcba.checklist_mode, dcba.name_en) == (
        "分级漏斗",
        "advisory",
        "D/C/B/A grades",
    )


def test_non_admin_cannot_patch_pipeline(api, org, dcba):
    """A manager's PATCH is 403 and changes nothing."""
    response = api.patch(org.east_mgr, f"/pipelines/{dcba.pk}", {"name": "Mine"})
    assert response.status_code == 403
    dcba.refresh_from_db()
    assert dcba.name == "D/C/B/A 客户分级漏斗"


# --- stages ---------------------------------------------------------------------------


def test_list_stages_leaves_out_archived(api, org, dcba):
    """Archived stages appear only with ``archived=true``."""
    services.archive_stage(stage(dcba, "C"))
    codes = [s["code"] for s in api.get(org.east_rep, f"/pipelines/{dcba.pk}/stages").json()]
    assert codes == ["D", "B", "A", "won", "lost"]
    everything = api.get(org.east_rep, f"/pipelines/{dcba.pk}/stages", archived="true").json()
    assert [s["code"] for s in everything] == ["D", "C", "B", "A", "won", "lost"]


def test_admin_adds_stage_after_another(api, org, dcba):
    """A new stage lands after ``after_id`` with its rate and checklist."""
    response = api.post(
        org.admin,
        f"/pipelines/{dcba.pk}/stages",
        {
            "name": "演示",
            "code": "E",
            "default_probability": "40",
            "checklist": ["已演示"],
            "stale_after_days": 10,
            "after_id": stage(dcba, "C").pk,
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["default_probability"], body["checklist"], body["kind"]) == (
        "40.00",
        ["已演示"],
        "open",
    )
    assert [s.code for s in dcba.stages.order_by("position")] == [
        "D", "C", "E", "B", "A", "won", "lost",
    ]  # fmt: skip


def test_add_stage_after_terminal_is_422(api, org, dcba):
    """A stage cannot go after won; nothing is created."""
    response = api.post(
        org.admin, f"/pipelines/{dcba.pk}/stages", {"name": "X", "after_id": stage(dcba, "won").pk}
    )
    assert response.status_code == 422
    assert dcba.stages.count() == 6


def test_non_admin_cannot_add_stage(api, org, dcba):
    """A rep adding a stage gets 403; nothing is created."""
    response = api.post(org.east_rep, f"/pipelines/{dcba.pk}/stages", {"name": "X"})
    assert response.status_code == 403
    assert dcba.stages.count() == 6


def test_stage_default_change_keeps_hand_set_probability(api, org, dcba):
    """PATCHing a stage's default reaches default-following deals, not hand-set ones."""
    follows = make_opp(org.east_rep, dcba, "C")
    by_hand = make_opp(org.east_rep, dcba, "C", probability=Decimal("40"))
    response = api.patch(
        org.admin, f"/stages/{stage(dcba, 'C').pk}", {"default_probability": "35.5"}
    )
    assert response.status_code == 200
    assert response.json()["default_probability"] == "35.50"
    assert reload(follows).probability == Decimal("35.50")
    assert reload(by_hand).probability == Decimal("40.00")


def test_stage_patch_can_clear_stale_limit(api, org, dcba):
    """``stale_after_days: null`` removes the stage's limit."""
    response = api.patch(org.admin, f"/stages/{stage(dcba, 'D').pk}", {"stale_after_days": None})
    assert response.status_code == 200
    assert stage(dcba, "D").stale_after_days is None


def test_non_admin_cannot_patch_stage(api, org, dcba):
    """A manager's stage PATCH is 403 and changes nothing."""
    response = api.patch(org.east_mgr, f"/stages/{stage(dcba, 'C').pk}", {"name": "Mine"})
    assert response.status_code == 403
    assert stage(dcba, "C").name == "C 目标"


def test_admin_reorders_stages(api, org, dcba):
    """Reordering answers the stages in their new order, terminals last."""
    d, c, b, a = (stage(dcba, code).pk for code in "DCBA")
    response = api.post(
        org.admin, f"/pipelines/{dcba.pk}/stages/reorder", {"stage_ids": [c, d, b, a]}
    )
    assert response.status_code == 200
    assert [s["code"] for s in response.json()] == ["C", "D", "B", "A", "won", "lost"]


def test_reorder_missing_a_stage_is_422(api, org, dcba):
    """A reorder that leaves out an open stage is refused; the order stays."""
    d, c, b = (stage(dcba, code).pk for code in "DCB")
    response = api.post(org.admin, f"/pipelines/{dcba.pk}/stages/reorder", {"stage_ids": [c, d, b]})
    assert response.status_code == 422
    assert [s.code for s in dcba.stages.order_by("position")][:4] == ["D", "C", "B", "A"]


def test_non_admin_cannot_reorder(api, org, dcba):
    """A rep's reorder is 403; the order stays."""
    d, c, b, a = (stage(dcba, code).pk for code in "DCBA")
    response = api.post(
        org.east_rep, f"/pipelines/{dcba.pk}/stages/reorder", {"stage_ids": [a, b, c, d]}
    )
    assert response.status_code == 403
    assert [s.code for s in dcba.stages.order_by("position")][:4] == ["D", "C", "B", "A"]


def test_archive_stage_with_open_opportunities_is_409(api, org, dcba):
    """Archiving a stage that holds an open deal is a conflict; the stage stays."""
    make_opp(org.east_rep, dcba, "C")
    response = api.post(org.admin, f"/stages/{stage(dcba, 'C').pk}/archive")
    assert response.status_code == 409
    assert stage(dcba, "C").is_archived is False


def test_archive_empty_stage(api, org, dcba):
    """An empty stage is archived by an admin, and not by a manager."""
    b = stage(dcba, "B")
    assert api.post(org.east_mgr, f"/stages/{b.pk}/archive").status_code == 403
    assert stage(dcba, "B").is_archived is False
    response = api.post(org.admin, f"/stages/{b.pk}/archive")
    assert response.status_code == 200
    assert response.json()["is_archived"] is True


# --- creating and reading opportunities -----------------------------------------------


def test_create_opportunity(api, org, dcba):
    """A rep creates a deal on their account: first stage, the stage's probability,
    money as strings, and the creation in its history."""
    account = create_account(actor=org.east_rep, name="华东机械")
    response = api.post(
        org.east_rep,
        "/opportunities",
        {
            "name": "二期扩产",
            "account_id": account.pk,
            "pipeline_id": dcba.pk,
            "amount": "120000",
            "expected_close_date": "2026-12-20",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["stage"]["name"], body["status"], body["owner"]["id"]) == (
        "D 识别",
        "open",
        org.east_rep.pk,
    )
    assert (body["amount"], body["probability"], body["weighted_amount"]) == (
        "120000.00",
        "10.00",
        "12000.00",
    )
    assert (body["probability_manual"], body["version"], body["currency"]) == (False, 1, "CNY")
    assert StageChange.objects.filter(opportunity_id=body["id"]).count() == 1


def test_create_with_probability_makes_it_manual(api, org, dcba):
    """A probability given on creation is the rep's own and in the chosen stage."""
    account = create_account(actor=org.east_rep, name="华东机械")
    response = api.post(
        org.east_rep,
        "/opportunities",
        {
            "name": "二期",
            "account_id": account.pk,
            "pipeline_id": dcba.pk,
            "stage_id": stage(dcba, "B").pk,
            "probability": 65,
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["stage"]["id"], body["probability"], body["probability_manual"]) == (
        stage(dcba, "B").pk,
        "65.00",
        True,
    )


def test_create_for_an_owner_out_of_reach_is_422(api, org, dcba):
    """A rep cannot make a colleague the owner; nothing is created."""
    account = create_account(actor=org.east_rep, name="华东机械")
    response = api.post(
        org.east_rep,
        "/opportunities",
        {
            "name": "X",
            "account_id": account.pk,
            "pipeline_id": dcba.pk,
            "owner_id": org.east_rep2.pk,
        },
    )
    assert response.status_code == 422
    assert response.json()["field"] == "owner_id"
    assert Opportunity.objects.count() == 0


def test_manager_creates_for_a_rep_of_the_subtree(api, org, dcba):
    """A manager may give the new deal to a rep of the sub-team."""
    account = create_account(actor=org.sub_rep, name="子公司")
    response = api.post(
        org.east_mgr,
        "/opportunities",
        {"name": "X", "account_id": account.pk, "pipeline_id": dcba.pk, "owner_id": org.sub_rep.pk},
    )
    assert response.status_code == 201
    assert response.json()["owner"] == {"id": org.sub_rep.pk, "name": "sub_rep"}


def test_create_on_an_invisible_account_is_422(api, org, dcba):
    """An account outside the rep's scope cannot be used; nothing is created."""
    theirs = create_account(actor=org.south_rep, name="华南贸易")
    response = api.post(
        org.east_rep,
        "/opportunities",
        {"name": "X", "account_id": theirs.pk, "pipeline_id": dcba.pk},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "account_id"
    assert Opportunity.objects.count() == 0


@pytest.mark.parametrize("where", ["won", "other"])
def test_create_in_a_stage_that_is_not_open_here_is_422(api, org, dcba, where):
    """The stage must be an open stage of the pipeline; nothing is created."""
    other = services.create_pipeline_from_template("classic")
    bad = stage(dcba, "won") if where == "won" else stage(other, "inquiry")
    account = create_account(actor=org.east_rep, name="华东机械")
    response = api.post(
        org.east_rep,
        "/opportunities",
        {"name": "X", "account_id": account.pk, "pipeline_id": dcba.pk, "stage_id": bad.pk},
    )
    assert response.status_code == 422
    assert Opportunity.objects.count() == 0


def test_get_opportunity_in_and_out_of_scope(api, org, dcba):
    """The owner and their manager read the deal; another rep gets the same 404 as for a
    missing id."""
    opp = make_opp(org.east_rep, dcba)
    assert api.get(org.east_rep, f"/opportunities/{opp.pk}").json()["id"] == opp.pk
    assert api.get(org.east_mgr, f"/opportunities/{opp.pk}").status_code == 200
    for who in (org.east_rep2, org.south_mgr):
        response = api.get(who, f"/opportunities/{opp.pk}")
        assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_anonymous_is_401(client, org, dcba):
    """Without credentials the list answers 401 JSON."""
    response = client.get(f"{API}/opportunities")
    assert response.status_code == 401


# --- editing --------------------------------------------------------------------------


def test_patch_sets_a_manual_probability(api, org, dcba):
    """A probability PATCHed by the rep is kept as theirs; the version goes up."""
    opp = make_opp(org.east_rep, dcba, "C")
    response = api.patch(
        org.east_rep, f"/opportunities/{opp.pk}", {"version": 1, "probability": "42.5"}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["probability"], body["probability_manual"], body["version"]) == ("42.50", True, 2)


def test_patch_can_follow_the_stage_again(api, org, dcba):
    """``probability_follow_stage: true`` returns to the stage's default."""
    opp = make_opp(org.east_rep, dcba, "C", probability=Decimal("60"))
    response = api.patch(
        org.east_rep, f"/opportunities/{opp.pk}", {"version": 1, "probability_follow_stage": True}
    )
    assert response.status_code == 200
    assert (response.json()["probability"], response.json()["probability_manual"]) == (
        "25.00",
        False,
    )


@pytest.mark.parametrize(
    "body",
    [
        {"version": 1, "probability": None},
        {"version": 1, "probability": 50, "probability_follow_stage": True},
        {"version": 1, "probability": 101},
        {"version": 1, "amount": "-1"},
        {"name": "no version"},
    ],
    ids=["null-probability", "both", "over-100", "negative-amount", "no-version"],
)
def test_patch_invalid_is_422(api, org, dcba, body):
    """Invalid PATCH bodies are 422 and change nothing."""
    opp = make_opp(org.east_rep, dcba, "C", probability=Decimal("60"))
    before = snapshot(opp)
    response = api.patch(org.east_rep, f"/opportunities/{opp.pk}", body)
    assert response.status_code == 422
    assert snapshot(opp) == before


def test_patch_with_stale_version_is_409(api, org, dcba):
    """A PATCH made from an old copy is a conflict; nothing changes."""
    opp = make_opp(org.east_rep, dcba, "C")
    api.patch(org.east_rep, f"/opportunities/{opp.pk}", {"version": 1, "name": "新名字"})
    before = snapshot(opp)
    response = api.patch(org.east_rep, f"/opportunities/{opp.pk}", {"version": 1, "name": "旧"})
    assert (response.status_code, response.json()["code"]) == (409, "version_conflict")
    assert snapshot(opp) == before


def test_collaborator_may_send_the_record_back_as_read(api, org, dcba):
    """A colleague the deal is shared with may PATCH it with the owner, account and
    contacts echoed back, though they could not assign any of them."""
    account = create_account(actor=org.east_rep, name="华东机械")
    contact = create_contact(account, actor=org.east_rep, name="王经理")
    opp = make_opp(org.east_rep, dcba, "C", account=account, contacts=[contact])
    opp.shared_with.add(org.south_rep)
    body = {
        "version": 1,
        "next_step": "寄样品",
        "owner_id": org.east_rep.pk,
        "account_id": account.pk,
        "contact_ids": [contact.pk],
    }
    response = api.patch(org.south_rep, f"/opportunities/{opp.pk}", body)
    assert response.status_code == 200, response.json()
    fresh = reload(opp)
    assert (fresh.next_step, fresh.owner, fresh.account) == ("寄样品", org.east_rep, account)
    assert response.json()["contact_ids"] == [contact.pk]


def test_collaborator_cannot_take_the_deal_elsewhere(api, org, dcba):
    """A collaborator cannot give the deal to someone else; nothing changes."""
    opp = make_opp(org.east_rep, dcba, "C")
    opp.shared_with.add(org.south_rep)
    before = snapshot(opp)
    response = api.patch(
        org.south_rep, f"/opportunities/{opp.pk}", {"version": 1, "owner_id": org.south_mgr.pk}
    )
    assert (response.status_code, response.json()["field"]) == (422, "owner_id")
    assert snapshot(opp) == before
    assert reload(opp).owner == org.east_rep


def test_manager_reassigns_within_the_subtree(api, org, dcba):
    """A manager hands a deal to another rep of their subtree."""
    opp = make_opp(org.east_rep, dcba, "C")
    response = api.patch(
        org.east_mgr, f"/opportunities/{opp.pk}", {"version": 1, "owner_id": org.sub_rep.pk}
    )
    assert response.status_code == 200
    assert reload(opp).owner == org.sub_rep


def test_patch_out_of_scope_is_404(api, org, dcba):
    """Another rep's PATCH is a 404 and changes nothing."""
    opp = make_opp(org.east_rep, dcba, "C")
    before = snapshot(opp)
    response = api.patch(org.south_rep, f"/opportunities/{opp.pk}", {"version": 1, "name": "X"})
    assert response.status_code == 404
    assert snapshot(opp) == before


# --- move -----------------------------------------------------------------------------


def test_move_answers_the_moved_opportunity(api, org, dcba):
    """A move with the checklist ticked answers 200 with the opportunity in its new stage."""
    opp = make_opp(org.east_rep, dcba, "C")
    response = api.post(
        org.east_rep,
        f"/opportunities/{opp.pk}/move",
        {"stage": stage(dcba, "A").pk, "version": 1, "checklist": ["需求明确", "有支付能力"]},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["stage"]["id"], body["furthest_stage_id"], body["version"]) == (
        stage(dcba, "A").pk,
        stage(dcba, "A").pk,
        2,
    )
    assert body["probability"] == "80.00"


def test_move_with_stale_version_is_409(api, org, dcba):
    """A move from an old copy is 409 and changes nothing."""
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    opp = make_opp(org.east_rep, pipeline, "C")
    api.post(
        org.east_rep,
        f"/opportunities/{opp.pk}/move",
        {"stage": stage(pipeline, "B").pk, "version": 1},
    )
    before = snapshot(opp)
    response = api.post(
        org.east_rep,
        f"/opportunities/{opp.pk}/move",
        {"stage": stage(pipeline, "A").pk, "version": 1},
    )
    assert (response.status_code, response.json()["code"]) == (409, "version_conflict")
    assert snapshot(opp) == before


def test_move_with_incomplete_strict_checklist_is_422(api, org, dcba):
    """In a strict pipeline a forward move without the checklist is 422, names the field,
    and changes nothing."""
    opp = make_opp(org.east_rep, dcba, "C")
    before = snapshot(opp)
    response = api.post(
        org.east_rep,
        f"/opportunities/{opp.pk}/move",
        {"stage": stage(dcba, "B").pk, "version": 1, "checklist": ["需求明确"]},
    )
    assert response.status_code == 422
    assert (response.json()["code"], response.json()["field"]) == (
        "checklist_incomplete",
        "checklist",
    )
    assert snapshot(opp) == before
    assert reload(opp).checklist_done == {}


@pytest.mark.parametrize("target", ["other-pipeline", "terminal", "missing"])
def test_move_to_a_wrong_stage_is_422(api, org, dcba, target):
    """Another pipeline's stage, a terminal stage or no stage at all is 422; nothing
    changes."""
    other = services.create_pipeline_from_template("classic")
    stage_id = {
        "other-pipeline": stage(other, "inquiry").pk,
        "terminal": stage(dcba, "won").pk,
        "missing": stage(dcba, "lost").pk + 1000,
    }[target]
    opp = make_opp(org.east_rep, dcba, "D")
    before = snapshot(opp)
    response = api.post(
        org.east_rep, f"/opportunities/{opp.pk}/move", {"stage": stage_id, "version": 1}
    )
    assert response.status_code == 422
    assert snapshot(opp) == before


def test_move_a_closed_opportunity_is_409(api, org, dcba, reason):
    """A lost deal cannot be moved: 409, nothing changes."""
    opp = make_opp(org.east_rep, dcba, "C")
    services.lose_opportunity(reload(opp), reason, actor=org.east_rep, version=1)
    before = snapshot(opp)
    response = api.post(
        org.east_rep, f"/opportunities/{opp.pk}/move", {"stage": stage(dcba, "D").pk, "version": 2}
    )
    assert (response.status_code, response.json()["code"]) == (409, "closed")
    assert snapshot(opp) == before


@pytest.mark.parametrize(
    "action, body",
    [
        ("move", {"version": 1, "checklist": ["需求明确", "有支付能力"]}),
        ("won", {"version": 1, "checklist": ["需求明确", "有支付能力"]}),
        ("lost", {"version": 1}),
        ("checklist", {"version": 1, "items": ["需求明确"]}),
    ],
)
def test_actions_out_of_scope_are_404(api, org, dcba, reason, action, body):
    """Another rep (and a manager of another team) acting on a deal gets 404; nothing
    changes."""
    opp = make_opp(org.east_rep, dcba, "C")
    body = {**body, "stage": stage(dcba, "B").pk, "reason_id": reason.pk}
    before = snapshot(opp)
    for who in (org.east_rep2, org.south_mgr):
        response = api.post(who, f"/opportunities/{opp.pk}/{action}", body)
        assert response.status_code == 404
    assert snapshot(opp) == before
    assert reload(opp).checklist_done == {}


def test_history_out_of_scope_is_404(api, org, dcba):
    """Another rep cannot read a deal's history."""
    opp = make_opp(org.east_rep, dcba, "C")
    assert api.get(org.south_rep, f"/opportunities/{opp.pk}/history").status_code == 404


def test_reopen_out_of_scope_is_404(api, org, dcba, reason):
    """Another rep cannot reopen a lost deal; it stays lost."""
    opp = make_opp(org.east_rep, dcba, "C")
    services.lose_opportunity(reload(opp), reason, actor=org.east_rep, version=1)
    before = snapshot(opp)
    response = api.post(org.east_rep2, f"/opportunities/{opp.pk}/reopen", {"version": 2})
    assert response.status_code == 404
    assert snapshot(opp) == before


# --- won, lost, reopen, checklist -----------------------------------------------------


def test_win(api, org, dcba):
    """Winning answers the deal won, in the won stage, at 100%."""
    opp = make_opp(org.east_rep, dcba, "A")
    response = api.post(
        org.east_rep, f"/opportunities/{opp.pk}/won", {"version": 1, "checklist": ["合同已发送"]}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["stage"]["kind"], body["probability"]) == ("won", "won", "100.00")
    assert body["closed_at"] is not None


def test_win_without_strict_checklist_is_422(api, org, dcba):
    """Winning with the current stage's checklist undone is 422 in a strict pipeline."""
    opp = make_opp(org.east_rep, dcba, "A")
    before = snapshot(opp)
    response = api.post(org.east_rep, f"/opportunities/{opp.pk}/won", {"version": 1})
    assert response.status_code == 422
    assert snapshot(opp) == before


def test_lose(api, org, dcba, reason):
    """Losing keeps the stage and stores the reason and note."""
    opp = make_opp(org.east_rep, dcba, "B")
    response = api.post(
        org.east_rep,
        f"/opportunities/{opp.pk}/lost",
        {"version": 1, "reason_id": reason.pk, "note": "对手便宜"},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["stage"]["id"]) == ("lost", stage(dcba, "B").pk)
    assert (body["lost_reason_id"], body["lost_note"]) == (reason.pk, "对手便宜")


@pytest.mark.parametrize("which", ["unknown", "inactive"])
def test_lose_with_a_bad_reason_is_422(api, org, dcba, reason, which):
    """An unknown or switched-off reason is 422; the deal stays open."""
    if which == "inactive":
        reason.is_active = False
        reason.save()
    reason_id = reason.pk if which == "inactive" else reason.pk + 1000
    opp = make_opp(org.east_rep, dcba, "B")
    before = snapshot(opp)
    response = api.post(
        org.east_rep, f"/opportunities/{opp.pk}/lost", {"version": 1, "reason_id": reason_id}
    )
    assert response.status_code == 422
    assert snapshot(opp) == before


def test_reopen(api, org, dcba, reason):
    """Reopening a lost deal answers it open in the stage it was lost in."""
    opp = make_opp(org.east_rep, dcba, "B")
    services.lose_opportunity(reload(opp), reason, actor=org.east_rep, version=1)
    response = api.post(org.east_rep, f"/opportunities/{opp.pk}/reopen", {"version": 2})
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["stage"]["id"], body["probability"]) == (
        "open",
        stage(dcba, "B").pk,
        "50.00",
    )


def test_reopen_an_open_deal_is_409(api, org, dcba):
    """Reopening what is open is a conflict."""
    opp = make_opp(org.east_rep, dcba, "B")
    response = api.post(org.east_rep, f"/opportunities/{opp.pk}/reopen", {"version": 1})
    assert response.status_code == 409


def test_tick_checklist(api, org, dcba):
    """Ticking stores the items for the current stage."""
    opp = make_opp(org.east_rep, dcba, "C")
    response = api.post(
        org.east_rep, f"/opportunities/{opp.pk}/checklist", {"version": 1, "items": ["需求明确"]}
    )
    assert response.status_code == 200
    assert response.json()["checklist_done"] == {str(stage(dcba, "C").pk): ["需求明确"]}


def test_tick_an_unknown_item_is_422(api, org, dcba):
    """An item that is not on the stage's checklist is 422."""
    opp = make_opp(org.east_rep, dcba, "C")
    response = api.post(
        org.east_rep, f"/opportunities/{opp.pk}/checklist", {"version": 1, "items": ["别的"]}
    )
    assert response.status_code == 422
    assert reload(opp).checklist_done == {}


# --- history --------------------------------------------------------------------------


def test_history_in_time_order(api, org, dcba):
    """History lists every change oldest first, with stages, author, and the amount and
    probability of the moment as strings."""
    opp = make_opp(org.east_rep, dcba, "C", amount="5000")
    api.patch(org.east_rep, f"/opportunities/{opp.pk}", {"version": 1, "amount": "8000"})
    api.post(
        org.east_mgr,
        f"/opportunities/{opp.pk}/move",
        {"stage": stage(dcba, "B").pk, "version": 2, "checklist": ["需求明确", "有支付能力"]},
    )
    response = api.get(org.east_rep, f"/opportunities/{opp.pk}/history")
    assert response.status_code == 200
    rows = [
        (
            r["kind"],
            r["from_stage"] and r["from_stage"]["name"],
            r["to_stage"]["name"],
            r["changed_by"]["name"],
            r["amount"],
            r["probability"],
        )
        for r in response.json()
    ]
    assert rows == [
        ("created", None, "C 目标", "east_rep", "5000.00", "25.00"),
        ("moved", "C 目标", "B 重点跟进", "east_mgr", "8000.00", "50.00"),
    ]
    assert response.json()[1]["from_stage"]["id"] == stage(dcba, "C").pk


# --- reference lists ------------------------------------------------------------------


def test_lost_reasons(api, org, reason):
    """Active lost reasons in their order; inactive ones on request."""
    LostReason.objects.filter(name="其他").update(is_active=False)
    names = [r["name"] for r in api.get(org.east_rep, "/lost-reasons").json()]
    assert names == [
        "价格太高",
        "选择了竞争对手",
        "没有预算",
        "需求取消",
        "联系不上",
        "产品不满足需求",
    ]
    everything = api.get(org.east_rep, "/lost-reasons", include_inactive="true").json()
    assert len(everything) == 7


def test_product_lines(api, org):
    """Active product lines by name."""
    ProductLine.objects.create(code="valves", name="阀门", name_en="Valves")
    ProductLine.objects.create(code="old", name="旧产品", is_active=False)
    body = api.get(org.east_rep, "/product-lines").json()
    assert [(p["code"], p["name_en"]) for p in body] == [("valves", "Valves")]


# --- list and filters -----------------------------------------------------------------


@pytest.fixture
def deals(org, dcba, reason):
    """Deals of several owners, stages, lines, months and amounts."""
    line = ProductLine.objects.create(code="pumps", name="水泵")
    now = timezone.now()
    d = {}
    d["east"] = make_opp(
        org.east_rep, dcba, "D", name="东区泵站", amount="1000", product_line=line,
        expected_close_date=date(2026, 3, 31),
    )  # fmt: skip
    d["east2"] = make_opp(
        org.east_rep2, dcba, "C", name="管网改造", amount="5000",
        account=create_account(actor=org.east_rep2, name="苏州水务"),
        expected_close_date=date(2026, 4, 1), when=now - timedelta(days=40),
    )  # fmt: skip
    d["sub"] = make_opp(org.sub_rep, dcba, "B", name="子区项目", amount="20000")
    d["south"] = make_opp(
        org.south_rep, dcba, "D", name="华南项目", amount="300",
        expected_close_date=date(2026, 12, 15),
    )  # fmt: skip
    d["lost"] = make_opp(org.east_rep, dcba, "B", name="丢单", amount="7000")
    services.lose_opportunity(reload(d["lost"]), reason, actor=org.east_rep, version=1)
    return d


def listed(api, user, **params) -> set[int]:
    response = api.get(user, "/opportunities", **params)
    assert response.status_code == 200, response.json()
    return set(ids(response))


def test_list_is_scoped(api, org, deals):
    """A rep lists their own deals, a manager their subtree's, an admin all."""
    d = deals
    assert listed(api, org.east_rep) == {d["east"].pk, d["lost"].pk}
    assert listed(api, org.east_mgr) == {d["east"].pk, d["east2"].pk, d["sub"].pk, d["lost"].pk}
    assert listed(api, org.admin) == {o.pk for o in d.values()}


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"q": "泵站"}, {"east"}),
        ({"q": "苏州"}, {"east2"}),
        ({"status": "lost"}, {"lost"}),
        ({"status": "open"}, {"east", "east2", "sub", "south"}),
        ({"close_month": "2026-03"}, {"east"}),
        ({"close_month": "2026-12"}, {"south"}),
        ({"close_month": "9999-12"}, set()),
        ({"amount_min": "1000", "amount_max": "7000"}, {"east", "east2", "lost"}),
        ({"stale": "true"}, {"east2"}),
        ({"stale": "false"}, {"east", "sub", "south", "lost"}),
    ],
    ids=[
        "q-name", "q-account", "status-lost", "status-open", "month", "december", "year-9999",
        "amount", "stale", "not-stale",
    ],
)  # fmt: skip
def test_list_filters(api, org, deals, params, expected):
    """Each filter narrows the admin's list to exactly the matching deals."""
    assert listed(api, org.admin, **params) == {deals[key].pk for key in expected}


def test_list_filters_by_ids(api, org, dcba, deals):
    """Pipeline, stage, owner, team (with its sub-teams) and product line filter by id."""
    d = deals
    assert listed(api, org.admin, stage=stage(dcba, "D").pk) == {d["east"].pk, d["south"].pk}
    assert listed(api, org.admin, owner=org.east_rep2.pk) == {d["east2"].pk}
    assert listed(api, org.admin, team=org.east.pk) == {
        d["east"].pk, d["east2"].pk, d["sub"].pk, d["lost"].pk,
    }  # fmt: skip
    assert listed(api, org.admin, team=org.east_sub.pk) == {d["sub"].pk}
    assert listed(api, org.admin, product_line=d["east"].product_line_id) == {d["east"].pk}
    assert listed(api, org.admin, pipeline=dcba.pk + 1000) == set()
    assert listed(api, org.admin, pipeline=dcba.pk) == {o.pk for o in d.values()}


def test_list_filters_never_widen_scope(api, org, deals):
    """Filtering by another team's owner shows a rep nothing."""
    assert listed(api, org.east_rep, owner=org.south_rep.pk) == set()
    assert listed(api, org.east_rep, team=org.south.pk) == set()


def test_list_sort(api, org, deals):
    """``sort=-amount`` orders by amount, largest first."""
    response = api.get(org.admin, "/opportunities", sort="-amount")
    amounts = [item["amount"] for item in response.json()["items"]]
    assert amounts == ["20000.00", "7000.00", "5000.00", "1000.00", "300.00"]


@pytest.mark.parametrize(
    "params",
    [
        {"close_month": "2026-13"},
        {"close_month": "0000-01"},
        {"sort": "password"},
        {"status": "maybe"},
        {"team": str(2**70)},
    ],
    ids=["month", "year-zero", "sort", "status", "huge-id"],
)
def test_list_bad_filter_is_422(api, org, params):
    """A filter value that does not parse is 422, not an empty list or a 500."""
    assert api.get(org.admin, "/opportunities", **params).status_code == 422


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("get", "/opportunities/{huge}", None),
        ("post", "/opportunities/{opp}/move", {"stage": "{huge}", "version": 1}),
        ("post", "/opportunities/{opp}/lost", {"reason_id": "{huge}", "version": 1}),
        ("patch", "/opportunities/{opp}", {"account_id": "{huge}", "version": 1}),
        ("post", "/opportunities", {"name": "X", "account_id": "{huge}", "pipeline_id": 1}),
        ("get", "/pipelines/{huge}", None),
    ],
    ids=["detail", "move", "lost", "patch", "create", "pipeline"],
)
def test_ids_beyond_64_bits_are_422(api, org, dcba, method, path, body):
    """A number too large to be an id is invalid input (SQLite cannot even compare it),
    and changes nothing."""
    opp = make_opp(org.east_rep, dcba, "C")
    before = snapshot(opp)
    huge = 2**70
    path = path.format(huge=huge, opp=opp.pk)
    body = {k: huge if v == "{huge}" else v for k, v in (body or {}).items()}
    call = getattr(api, method)
    response = call(org.admin, path, **({"body": body} if method != "get" else {}))
    assert response.status_code == 422
    assert snapshot(opp) == before
    assert Opportunity.objects.count() == 1


def test_list_query_count_does_not_grow(api, org, dcba):
    """Listing 60 deals costs as many queries as listing 5."""
    account = create_account(actor=org.east_rep, name="华东机械")
    contact = create_contact(account, actor=org.east_rep, name="王经理")

    def count_queries():
        api.get(org.east_rep, "/opportunities", limit=50)  # warm up the token's last use
        with CaptureQueriesContext(connection) as queries:
            response = api.get(org.east_rep, "/opportunities", limit=50)
        assert response.status_code == 200
        return len(queries), len(response.json()["items"])

    for _ in range(5):
        make_opp(org.east_rep, dcba, "C", account=account, contacts=[contact])
    few = count_queries()
    for _ in range(55):
        make_opp(org.east_rep, dcba, "B", account=account, contacts=[contact])
    many = count_queries()
    assert (few[1], many[1]) == (5, 50)
    assert few[0] == many[0]
