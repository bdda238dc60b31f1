"""Inputs no database can take are refused up front with a 4xx, never a 500."""

import pytest


@pytest.mark.parametrize("url", ["/api/v1/accounts?q=a%00b", "/customers/?q=%00"])
def test_nul_in_query_string_is_400(client, org, url):
    """A NUL character in the query string is a 400 (PostgreSQL would fail on it)."""
    client.force_login(org.east_rep)
    assert client.get(url).status_code == 400


def test_nul_in_form_field_is_400(client, org):
    """A NUL character in a posted form field is a 400 and nothing is created."""
    client.force_login(org.east_rep)
    response = client.post("/customers/new/", {"name": "a\x00b", "owner": org.east_rep.pk})
    assert response.status_code == 400


def test_id_beyond_64_bits_is_not_found(client, org):
    """An id too large for the database is a JSON 404 like any missing id, not a 500."""
    client.force_login(org.east_rep)
    response = client.get("/api/v1/accounts/99999999999999999999999")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_nul_in_json_body_is_400(client, org):
    """A NUL character escaped in a JSON body is a JSON 400 and nothing is created."""
    client.force_login(org.east_rep)
    response = client.post(
        "/api/v1/accounts", '{"name": "a\\u0000b"}', content_type="application/json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid")


def test_broken_multipart_body_is_400(client, org):
    """A multipart body without a boundary is a 400, not a server error."""
    client.force_login(org.east_rep)
    response = client.generic("POST", "/customers/new/", b"x", content_type="multipart/form-data")
    assert response.status_code == 400
