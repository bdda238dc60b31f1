"""Leads API and pages: scope through PermissionChecks, pool visibility by region, claim
refusal codes, and bad input as 422."""

import pytest

from loudou.leads import services
from loudou.leads.models import Lead, PublicPool
from loudou.pipeline.services import create_pipeline_from_template
from tests.permissions import PermissionChecks


class TestLeadPermissions(PermissionChecks):
    page_urls = ("/leads/{obj.pk}/", "/leads/{obj.pk}/edit/", "/leads/{obj.pk}/convert/")
    list_url = "/leads/"
    api_url = "/api/v1/leads/{obj.pk}"
    api_list_url = "/api/v1/leads"
    edit_url = "/leads/{obj.pk}/edit/"

    def make_object(self, org, owner):
        return services.create_lead(actor=owner, owner=owner, name="王伟", company="恒信")[0]

    def edit_data(self, obj):
        return {"name": "王伟伟", "status": "contacted", "version": obj.version}

    def api_patch_data(self, obj):
        return {"version": obj.version, "company": "恒信科技"}


class TestLeadPermissionsInSubteam(TestLeadPermissions):
    """The same checks for a lead owned in the sub-team, to prove subtree scope."""

    owner = "sub_rep"
    team_rep = "east_rep"


@pytest.fixture
def east_pool(org):
    pool = PublicPool.objects.create(name="华东公海", daily_claim_limit=1)
    pool.regions.set([org.east_region])
    return pool


def test_pooled_lead_is_visible_in_the_pools_region_only(org, east_pool, client, bearer):
    """A 华东区 pool's lead is listed for east reps and hidden (404) from south reps."""
    lead = services.create_lead(actor=org.admin, pool=east_pool, name="A")[0]
    east = client.get(f"/api/v1/leads/{lead.pk}", headers=bearer(org.east_rep))
    south = client.get(f"/api/v1/leads/{lead.pk}", headers=bearer(org.south_rep))
    assert (east.status_code, south.status_code) == (200, 404)
    listed = client.get("/api/v1/leads?in_pool=true", headers=bearer(org.sub_rep)).json()
    assert [item["id"] for item in listed["items"]] == [lead.pk]
    pools = client.get("/api/v1/pools", headers=bearer(org.south_rep)).json()
    assert pools == []


def test_pool_without_regions_is_open_to_everyone(org, client, bearer):
    """A pool naming no region or team admits every rep."""
    pool = PublicPool.objects.create(name="全国公海")
    lead = services.create_lead(actor=org.admin, pool=pool, name="A")[0]
    response = client.post(f"/api/v1/leads/{lead.pk}/claim", headers=bearer(org.south_rep))
    assert response.status_code == 200
    assert response.json()["owner_id"] == org.south_rep.pk


def test_claim_refusals_carry_their_code(org, east_pool, client, bearer):
    """Limit reached and taken are 409 with code limit and taken."""
    first, second = (
        services.create_lead(actor=org.admin, pool=east_pool, name=n)[0] for n in ("A", "B")
    )
    headers = bearer(org.east_rep)
    assert client.post(f"/api/v1/leads/{first.pk}/claim", headers=headers).status_code == 200
    limit = client.post(f"/api/v1/leads/{second.pk}/claim", headers=headers)
    assert (limit.status_code, limit.json()["code"]) == (409, "limit")
    taken = client.post(f"/api/v1/leads/{first.pk}/claim", headers=bearer(org.east_rep2))
    assert (taken.status_code, taken.json()["code"]) == (409, "taken")


def test_claim_in_another_region_is_a_region_refusal(org, east_pool, client, bearer):
    """A south rep who can see a pooled lead through sharing still may not claim it."""
    lead = services.create_lead(actor=org.admin, pool=east_pool, name="A")[0]
    lead.shared_with.add(org.south_rep)
    response = client.post(f"/api/v1/leads/{lead.pk}/claim", headers=bearer(org.south_rep))
    assert (response.status_code, response.json()["code"]) == (409, "region")
    assert Lead.objects.get(pk=lead.pk).pool_id == east_pool.pk


def test_release_without_reason_is_422(org, client, bearer):
    """A release with an empty reason is a 422, not a 500, and changes nothing."""
    lead = services.create_lead(actor=org.east_rep, name="A")[0]
    response = client.post(
        f"/api/v1/leads/{lead.pk}/release", {"reason": ""}, content_type="application/json",
        headers=bearer(org.east_rep),
    )  # fmt: skip
    assert response.status_code == 422
    assert Lead.objects.get(pk=lead.pk).owner_id == org.east_rep.pk


@pytest.mark.parametrize(
    "body",
    [{"name": ""}, {"name": "A", "region_id": 2**70}, {"name": "A", "source": "nope"},
     {"name": "A", "email": "not-an-email"}, {"name": "A", "region_id": 999999},
     {"name": "A", "owner_id": 1, "pool_id": 1}],
)  # fmt: skip
def test_bad_create_input_is_422(org, client, bearer, body):
    """Invalid lead payloads are answered 422 and create nothing."""
    response = client.post(
        "/api/v1/leads", body, content_type="application/json", headers=bearer(org.admin)
    )
    assert response.status_code == 422, response.content
    assert Lead.objects.count() == 0


def test_create_reports_duplicates(org, client, bearer):
    """The create answer lists a duplicate found by normalised mobile."""
    first = services.create_lead(actor=org.east_rep, name="A", mobile="13812345678")[0]
    response = client.post(
        "/api/v1/leads", {"name": "B", "mobile": "+86 138 1234 5678"},
        content_type="application/json", headers=bearer(org.east_rep),
    )  # fmt: skip
    assert response.status_code == 201
    assert [d["id"] for d in response.json()["duplicates"]["leads"]] == [first.pk]
    dups = client.get(f"/api/v1/leads/{first.pk}/duplicates", headers=bearer(org.east_rep))
    assert [d["id"] for d in dups.json()["leads"]] == [response.json()["id"]]


def test_convert_through_the_api(org, client, bearer):
    """POST convert links the lead to a new account, contact and opportunity."""
    pipeline = create_pipeline_from_template("classic")
    lead = services.create_lead(actor=org.east_rep, name="A", company="恒信", mobile="1")[0]
    response = client.post(
        f"/api/v1/leads/{lead.pk}/convert", {"pipeline_id": pipeline.pk, "amount": "1000"},
        content_type="application/json", headers=bearer(org.east_rep),
    )  # fmt: skip
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "converted"
    assert None not in (body["converted_account_id"], body["converted_opportunity_id"])


def test_rules_preview_is_for_managers_and_admins(org, client, bearer):
    """A rep gets 403 from the rules API; an admin gets the preview."""
    rep = client.post("/api/v1/assignment-rules/preview", {}, content_type="application/json",
                      headers=bearer(org.east_rep))  # fmt: skip
    admin = client.post("/api/v1/assignment-rules/preview", {}, content_type="application/json",
                        headers=bearer(org.admin))  # fmt: skip
    assert rep.status_code == 403
    assert admin.json() == {"rule_id": None, "rule": None, "owner_id": None, "owner": None,
                            "pool_id": None, "pool": None}  # fmt: skip


def test_pool_page_shows_counts_against_limits(org, east_pool, client, english):
    """The pool page tells the rep how many they own and claimed today."""
    services.create_lead(actor=org.admin, pool=east_pool, name="A")
    client.force_login(org.east_rep, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get(f"/leads/pool/{east_pool.pk}/")
    assert response.status_code == 200
    assert "You own 0 of 200 open leads; claimed today 0 of 1." in response.content.decode()


def test_rules_page_is_admin_only(org, client):
    """A rep gets 404 from the rules page; an admin 200."""
    client.force_login(org.east_rep, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/leads/rules/").status_code == 404
    client.force_login(org.admin, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/leads/rules/?preview=1&region=abc").status_code == 200


def test_claim_page_of_a_taken_lead_says_so(org, east_pool, client, english):
    """Claiming from the pool page a lead a colleague just took redirects with a message."""
    lead = services.create_lead(actor=org.admin, pool=east_pool, name="A")[0]
    services.claim_lead(lead, rep=org.east_rep)
    client.force_login(org.east_rep2, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(f"/leads/{lead.pk}/claim/", {"next": "pool"}, follow=True)
    assert response.status_code == 200
    assert "Someone else has already taken this lead." in response.content.decode()
    assert Lead.objects.get(pk=lead.pk).owner_id == org.east_rep.pk
