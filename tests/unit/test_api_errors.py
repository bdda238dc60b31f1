"""API errors: always JSON ``{"detail", "code"}`` with the status that says what happened."""

import pytest

from loudou.customers.models import Account
from loudou.customers.services import create_account, update_account


@pytest.fixture
def account(org):
    return create_account(actor=org.east_rep, name="Hengxin", region=org.shanghai)


@pytest.fixture
def headers(org, bearer):
    return bearer(org.east_rep)


def row(account):
    return Account.objects.filter(pk=account.pk).values().get()


def patch(client, account, headers, body):
    return client.patch(
        f"/api/v1/accounts/{account.pk}", body, content_type="application/json", headers=headers
    )


def post(client, headers, body):
    return client.post("/api/v1/accounts", body, content_type="application/json", headers=headers)


def test_missing_account_is_404_json(client, account, headers):
    """An id that does not exist is a 404 with code not_found."""
    response = client.get(f"/api/v1/accounts/{account.pk + 1000}", headers=headers)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.json()["code"] == "not_found"


def test_unknown_api_path_is_404_json(client, headers):
    """A path under /api/ that no endpoint serves is a JSON 404 too, not an HTML page."""
    response = client.get("/api/v1/no-such-thing", headers=headers)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_stale_version_is_409_and_changes_nothing(client, org, account, headers):
    """A PATCH carrying an older version is a 409 version_conflict; the row is unchanged."""
    update_account(account, actor=org.east_mgr, version=1, name="Changed by the manager")
    before = row(account)
    response = patch(client, account, headers, {"version": 1, "name": "Overwritten"})
    assert response.status_code == 409
    assert response.json()["code"] == "version_conflict"
    assert row(account) == before


def test_current_version_is_accepted_and_bumped(client, account, headers):
    """A PATCH carrying the current version saves and answers the next version."""
    response = patch(client, account, headers, {"version": 1, "name": "Hengxin Tech"})
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["version"]) == ("Hengxin Tech", 2)


def test_patch_without_version_is_422(client, account, headers):
    """A PATCH must say which version it edits; without it nothing changes."""
    before = row(account)
    response = patch(client, account, headers, {"name": "Overwritten"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid"
    assert [e["loc"][-1] for e in response.json()["errors"]] == ["version"]
    assert row(account) == before


def test_unknown_region_is_422_on_create(client, org, headers):
    """Creating an account in a region that does not exist is a 422 on region_id."""
    response = post(client, headers, {"name": "Hengxin", "region_id": org.shanghai.pk + 1000})
    assert response.status_code == 422
    body = response.json()
    assert (body["code"], body["field"]) == ("invalid", "region_id")
    assert Account.objects.count() == 0


def test_unknown_region_is_422_on_patch(client, org, account, headers):
    """Moving an account to a region that does not exist is a 422; the row is unchanged."""
    before = row(account)
    response = patch(client, account, headers, {"version": 1, "region_id": org.shanghai.pk + 1000})
    assert response.status_code == 422
    assert (response.json()["code"], response.json()["field"]) == ("invalid", "region_id")
    assert row(account) == before


@pytest.mark.parametrize("field", ["size", "source", "revisit_status", "revisit_class", "segment"])
def test_bad_choice_is_422_with_field_error(client, headers, field):
    """A value outside a field's choices is a 422 naming that field; nothing is created."""
    response = post(client, headers, {"name": "Hengxin", field: "no-such-choice"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["errors"]) == [field]
    assert Account.objects.count() == 0


def test_bad_choice_on_patch_changes_nothing(client, account, headers):
    """A PATCH with a bad choice is a 422 and leaves the row, version included, unchanged."""
    before = row(account)
    response = patch(client, account, headers, {"version": 1, "size": "huge"})
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["size"]
    assert row(account) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "Hengxin", "latitude": 91}, "latitude"),
        ({"name": "Hengxin", "founded_on": "2026-02-30"}, "founded_on"),
    ],
)
def test_schema_violation_is_422(client, headers, body, field):
    """Input that breaks the schema is a 422 whose errors point at the field."""
    response = post(client, headers, body)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid"
    assert [e["loc"][-1] for e in response.json()["errors"]] == [field]
    assert Account.objects.count() == 0


def test_bad_website_is_422(client, headers):
    """A website that is not a URL is refused by the model's validation with a 422."""
    response = post(client, headers, {"name": "Hengxin", "website": "not a url"})
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["website"]
    assert Account.objects.count() == 0


def test_null_name_on_patch_is_422(client, account, headers):
    """Setting the name to null is a 422, not a server error; nothing changes."""
    before = row(account)
    response = patch(client, account, headers, {"version": 1, "name": None})
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["name"]
    assert row(account) == before


def test_unparsable_body_is_400_json(client, account, headers):
    """A body that is not JSON is a 400 in JSON; the row is unchanged."""
    before = row(account)
    response = patch(client, account, headers, "{not json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert row(account) == before


def test_non_numeric_id_is_422(client, headers):
    """A path id that is not a number is a 422 on that parameter."""
    response = client.get("/api/v1/accounts/abc", headers=headers)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [["path", "account_id"]]
