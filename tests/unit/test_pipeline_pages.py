"""The pipeline pages: who sees which opportunity, forms that refuse bad input, actions
that go through the services, and query counts that do not grow with the data."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loudou.customers.services import create_account
from loudou.pipeline import services
from loudou.pipeline.models import LostReason, Opportunity, Pipeline, StageChange
from tests.permissions import PermissionChecks


@pytest.fixture
def dcba(db):
    services.ensure_lost_reasons()
    return services.create_pipeline_from_template("dcba")


def make_deals(owner, pipeline, count, *, account=None):
    account = account or create_account(actor=owner, name=f"Account of {owner.username}")
    stages = list(pipeline.open_stages())
    deals = []
    for i in range(count):
        deal = services.create_opportunity(
            actor=owner, pipeline=pipeline, account=account, name=f"Deal {i}",
            amount=Decimal(1000 + i), stage=stages[i % len(stages)],
        )  # fmt: skip
        deals.append(deal)
    return deals


class TestOpportunityPermissions(PermissionChecks):
    """An opportunity owned by east_rep, through its pages and endpoints."""

    page_urls = (
        "/pipeline/opportunities/{obj.pk}/",
        "/pipeline/opportunities/{obj.pk}/edit/",
    )
    list_url = "/pipeline/opportunities/"
    api_url = "/api/v1/opportunities/{obj.pk}"
    api_list_url = "/api/v1/opportunities"

    def make_object(self, org, owner):
        pipeline = services.create_pipeline_from_template("classic")
        return make_deals(owner, pipeline, 1)[0]

    edit_url = "/pipeline/opportunities/{obj.pk}/edit/"

    def edit_data(self, obj):
        return {
            "name": "Renamed deal",
            "account": obj.account_id,
            "amount": "1000",
            "currency": "CNY",
            "owner": obj.owner_id,
            "version": obj.version,
        }

    def api_patch_data(self, obj):
        return {"version": obj.version, "name": "Renamed deal"}


class TestOpportunityPermissionsInSubteam(TestOpportunityPermissions):
    """The same opportunity owned in the sub-team: its manager is the parent team's."""

    owner = "sub_rep"
    team_rep = "east_rep"


def count_queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


@pytest.mark.parametrize(
    "url",
    [
        "/pipeline/board/{pipeline}/",
        "/pipeline/board/{pipeline}/column/{stage}/",
        "/pipeline/opportunities/",
        "/pipeline/opportunities/{deal}/",
        "/customers/{account}/",
    ],
)
def test_page_queries_do_not_grow_with_data(client, org, dcba, url):
    """The board, a board column, the list, an opportunity and its account page run the
    same number of queries with 4 opportunities as with 40 (no N+1)."""
    client.force_login(org.east_mgr)
    account = create_account(actor=org.east_rep, name="恒信")
    deals = make_deals(org.east_rep, dcba, 4, account=account)
    first = dcba.open_stages().first()
    fill = {"pipeline": dcba.pk, "stage": first.pk, "deal": deals[0].pk, "account": account.pk}
    few = count_queries(client, url.format(**fill))
    more = make_deals(org.east_rep, dcba, 36, account=account)
    page_deal = deals[0]
    for deal in more[1:6]:  # more history on the page's deal too
        page_deal = services.move_opportunity(
            page_deal, deal.stage, actor=org.east_rep, checklist=page_deal.stage.checklist
        )
    assert count_queries(client, url.format(**fill)) == few


def test_board_totals_come_from_the_database(client, org, dcba):
    """A column's first page brings its header totals (out of band): count, amount and
    weighted amount of the open deals the user may see in that stage."""
    first = dcba.open_stages().first()
    make_deals(org.east_rep, dcba, 8)  # 2 per stage; first stage gets Deal 0 and Deal 4
    make_deals(org.south_rep, dcba, 4)  # not visible to east_mgr
    client.force_login(org.east_mgr)
    response = client.get(f"/pipeline/board/{dcba.pk}/column/{first.pk}/")
    total = response.context["total"]
    assert total == {"count": 2, "amount": Decimal("2004.00"), "weighted": Decimal("200.40")}
    assert 'hx-swap-oob="true"' in response.content.decode()


def test_move_refused_on_detail_page_changes_nothing(client, org, dcba):
    """Moving forward without the strict checklist shows the reason and changes nothing."""
    deal = make_deals(org.east_rep, dcba, 1)[0]
    second = list(dcba.open_stages())[1]
    client.force_login(org.east_rep)
    response = client.post(
        f"/pipeline/opportunities/{deal.pk}/move/",
        {"stage": second.pk, "version": deal.version},
        follow=True,
    )
    assert deal.stage.checklist[0] in response.content.decode()
    deal.refresh_from_db()
    assert (deal.stage_id, deal.version) == (dcba.open_stages().first().pk, 1)
    assert StageChange.objects.filter(opportunity=deal).count() == 1


def test_stale_form_cannot_overwrite(client, org, dcba):
    """An edit form opened before someone else saved shows a conflict and saves nothing."""
    deal = make_deals(org.east_rep, dcba, 1)[0]
    services.update_opportunity(deal, actor=org.east_rep, name="Changed by a colleague")
    client.force_login(org.east_rep)
    response = client.post(
        f"/pipeline/opportunities/{deal.pk}/edit/",
        {"name": "Mine", "account": deal.account_id, "amount": "5", "currency": "CNY",
         "owner": org.east_rep.pk, "version": 1},
    )  # fmt: skip
    assert response.status_code == 200
    assert "version" in response.content.decode()
    deal.refresh_from_db()
    assert deal.name == "Changed by a colleague"


def test_create_form_shows_field_errors(client, org, dcba):
    """A new opportunity without a name or with a negative amount is not saved and the
    form says which fields are wrong."""
    account = create_account(actor=org.east_rep, name="恒信")
    client.force_login(org.east_rep)
    response = client.post(
        "/pipeline/opportunities/new/",
        {"name": "", "account": account.pk, "pipeline": dcba.pk,
         "stage": dcba.open_stages().first().pk, "amount": "-5", "currency": "CNY",
         "owner": org.east_rep.pk},
    )  # fmt: skip
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"name", "amount"}
    assert Opportunity.objects.count() == 0


def test_lose_from_page_needs_a_reason(client, org, dcba):
    """Closing as lost without a reason is refused; with one, the deal is lost in the
    stage it was in."""
    deal = make_deals(org.east_rep, dcba, 1)[0]
    client.force_login(org.east_rep)
    client.post(f"/pipeline/opportunities/{deal.pk}/lost/", {"version": 1})
    deal.refresh_from_db()
    assert deal.status == "open"
    reason = LostReason.objects.first()
    client.post(f"/pipeline/opportunities/{deal.pk}/lost/", {"version": 1, "reason": reason.pk})
    deal.refresh_from_db()
    assert (deal.status, deal.lost_reason, deal.stage.code) == ("lost", reason, "D")


def test_lose_without_reason_shows_the_field_error(client, org, dcba, english):
    """Without a reason the page comes back with the lose panel open and the error on the
    reason field, not a redirect."""
    deal = make_deals(org.east_rep, dcba, 1)[0]
    client.force_login(org.east_rep)
    response = client.post(f"/pipeline/opportunities/{deal.pk}/lost/", {"version": 1})
    assert response.status_code == 200
    assert list(response.context["lose_form"].errors) == ["reason"]
    assert 'id="lose-panel"' in response.content.decode()
    assert 'class="collapse mb-3 show"' in response.content.decode()


def test_pipeline_settings_are_admin_only(client, org, dcba):
    """Only an admin may open the pipeline settings; a manager gets 403."""
    client.force_login(org.east_mgr)
    assert client.get("/pipeline/settings/").status_code == 403
    client.force_login(org.admin)
    assert client.get(f"/pipeline/settings/{dcba.pk}/").status_code == 200


def test_admin_creates_pipeline_from_template(client, org):
    """An admin creates a pipeline from the key-account template and gets its six stages."""
    client.force_login(org.admin)
    response = client.post(
        "/pipeline/settings/new/",
        {"template": "key_account", "name": "", "name_en": "", "checklist_mode": "strict"},
    )
    assert response.status_code == 302
    pipeline = Pipeline.objects.get(template="key_account")
    assert [s.name for s in pipeline.open_stages()] == [
        "客户分析", "建立信任", "挖掘需求", "呈现价值", "赢取承诺", "回收账款",
    ]  # fmt: skip


def _stage_formset_data(pipeline, rows):
    """POST data for the stage editor: ``rows`` is a list of dicts per stage form."""
    data = {
        "name": pipeline.name, "name_en": pipeline.name_en, "checklist_mode": "strict",
        "stages-TOTAL_FORMS": str(len(rows)), "stages-INITIAL_FORMS": str(
            sum(1 for r in rows if r.get("id"))
        ),
        "stages-MIN_NUM_FORMS": "0", "stages-MAX_NUM_FORMS": "1000", "action": "save",
    }  # fmt: skip
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"stages-{i}-{key}"] = value
    return data


def test_admin_renames_reorders_and_adds_stages(client, org, dcba):
    """The stage editor renames a stage, puts C before D and adds a stage at the end;
    history rows keep pointing at the same stages and furthest stages are recomputed."""
    d, c, b, a = dcba.open_stages()
    deal = make_deals(org.east_rep, dcba, 1)[0]  # in D
    rows = []
    for order, stage in [(2, d), (1, c), (3, b), (4, a)]:
        rows.append({
            "id": stage.pk, "ORDER": order, "name": stage.name + ("!" if stage == b else ""),
            "name_en": stage.name_en, "code": stage.code,
            "default_probability": str(stage.default_probability),
            "stale_after_days": stage.stale_after_days or "", "guidance": stage.guidance,
            "checklist": "\n".join(stage.checklist),
        })  # fmt: skip
    rows.append({"ORDER": 5, "name": "E 签约", "name_en": "E", "code": "E",
                 "default_probability": "90", "stale_after_days": "", "guidance": "",
                 "checklist": ""})  # fmt: skip
    client.force_login(org.admin)
    response = client.post(f"/pipeline/settings/{dcba.pk}/", _stage_formset_data(dcba, rows))
    assert response.status_code == 302, response.content.decode()[:2000]
    names = [s.name for s in dcba.open_stages()]
    assert names == ["C 目标", "D 识别", "B 重点跟进!", "A 订单跟进", "E 签约"]
    deal.refresh_from_db()
    assert deal.furthest_stage == d
    assert StageChange.objects.get(opportunity=deal).to_stage == d


def test_archiving_a_stage_with_open_deals_is_refused(client, org, dcba):
    """Archiving a stage that still holds open deals is refused with the reason; an empty
    stage is archived and leaves the board."""
    d, c, _b, _a = dcba.open_stages()
    make_deals(org.east_rep, dcba, 1)  # one deal in D
    client.force_login(org.admin)
    response = client.post(
        f"/pipeline/settings/{dcba.pk}/", {"action": f"archive:{d.pk}"}, follow=True
    )
    assert "open opportunities" in response.content.decode() or "商机" in response.content.decode()
    d.refresh_from_db()
    assert not d.is_archived
    client.post(f"/pipeline/settings/{dcba.pk}/", {"action": f"archive:{c.pk}"})
    c.refresh_from_db()
    assert c.is_archived
    assert c not in list(dcba.open_stages())
