"""API authentication: bearer tokens (made, used, revoked) and the browser session."""

from datetime import timedelta

import pytest
from django.utils import timezone

from loudou.org.models import ApiToken
from loudou.org.services import create_token, revoke_token

ME = "/api/v1/me"


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def test_token_key_is_shown_once_and_only_its_hash_is_stored(org):
    """The row keeps the SHA-256 of the key and a short hint, never the key itself."""
    token, key = create_token(org.east_rep, name="nightly export")
    row = ApiToken.objects.get(pk=token.pk)
    assert key.startswith("ld_")
    assert row.key_hash == ApiToken.hash_key(key)
    assert len(row.key_hash) == 64
    assert row.hint == key[:10]
    assert key not in {str(v) for v in ApiToken.objects.filter(pk=token.pk).values().get().values()}
    assert (row.user, row.name, row.last_used_at, row.revoked_at) == (
        org.east_rep, "nightly export", None, None,
    )  # fmt: skip


def test_two_tokens_have_different_keys(org):
    """Each token gets its own random key."""
    _t1, key1 = create_token(org.east_rep)
    _t2, key2 = create_token(org.east_rep)
    assert key1 != key2


def test_bearer_token_authenticates_as_its_user(client, org):
    """A request with a valid bearer token is answered as the token's user."""
    _token, key = create_token(org.east_mgr)
    response = client.get(ME, headers=auth(key))
    assert response.status_code == 200
    body = response.json()
    assert (body["username"], body["role"], body["team_id"]) == ("east_mgr", "manager", org.east.pk)
    assert body["team"]["name"] == "East"
    assert body["sees_everything"] is False


def test_using_a_token_records_last_use(client, org):
    """The first call with a token sets its last_used_at to the time of the call."""
    token, key = create_token(org.east_rep)
    before = timezone.now()
    client.get(ME, headers=auth(key))
    token.refresh_from_db()
    assert before <= token.last_used_at <= timezone.now()


def test_last_use_is_written_at_most_once_a_minute(client, org):
    """A token used twice within a minute keeps the first time, later than that it moves."""
    token, key = create_token(org.east_rep)
    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent)
    client.get(ME, headers=auth(key))
    token.refresh_from_db()
    assert token.last_used_at == recent

    old = timezone.now() - timedelta(minutes=5)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=old)
    client.get(ME, headers=auth(key))
    token.refresh_from_db()
    assert token.last_used_at > old + timedelta(minutes=4)


def test_revoked_token_is_401(client, org):
    """A revoked token no longer authenticates: 401 JSON, and its last use is not touched."""
    token, key = create_token(org.east_rep)
    revoke_token(token)
    response = client.get(ME, headers=auth(key))
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    token.refresh_from_db()
    assert token.last_used_at is None
    assert token.revoked_at is not None


def test_revoking_twice_keeps_first_time(org):
    """Revoking a revoked token keeps the original revocation time."""
    token, _key = create_token(org.east_rep)
    revoke_token(token)
    first = ApiToken.objects.get(pk=token.pk).revoked_at
    revoke_token(token)
    assert ApiToken.objects.get(pk=token.pk).revoked_at == first


def test_deactivated_users_token_is_401(client, org):
    """A token of a deactivated user no longer authenticates."""
    _token, key = create_token(org.east_rep)
    org.east_rep.is_active = False
    org.east_rep.save()
    response = client.get(ME, headers=auth(key))
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "header",
    ["Bearer ld_not-a-real-token", "Bearer ", "Basic ZWFzdF9yZXA6cGFzc3dvcmQ=", "ld_no-scheme"],
)
def test_unknown_or_malformed_credentials_are_401(client, org, header):
    """A wrong token or a malformed Authorization header is a 401 in JSON."""
    create_token(org.east_rep)
    response = client.get(ME, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_no_credentials_is_401(client, db):
    """A request without credentials is a 401 in JSON."""
    response = client.get(ME)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.json()["code"] == "unauthenticated"


def test_me_with_session(client, org):
    """A logged-in browser session authenticates the API too."""
    client.force_login(org.admin)
    response = client.get(ME)
    assert response.status_code == 200
    body = response.json()
    assert (body["username"], body["role"], body["sees_everything"], body["team"]) == (
        "admin", "admin", True, None,
    )  # fmt: skip


def test_session_of_deactivated_user_is_401(client, org):
    """A session whose user was deactivated no longer authenticates the API."""
    client.force_login(org.east_rep)
    org.east_rep.is_active = False
    org.east_rep.save()
    response = client.get(ME)
    assert response.status_code == 401


def test_session_unsafe_method_needs_csrf(org):
    """A session PATCH without the CSRF token is refused and changes nothing."""
    from django.test import Client

    from loudou.customers.services import create_account

    account = create_account(actor=org.east_rep, name="Hengxin")
    client = Client(enforce_csrf_checks=True)
    client.force_login(org.east_rep)
    response = client.patch(
        f"/api/v1/accounts/{account.pk}",
        {"version": 1, "name": "Hacked"},
        content_type="application/json",
    )
    assert response.status_code == 403
    account.refresh_from_db()
    assert (account.name, account.version) == ("Hengxin", 1)


def test_token_api_call_needs_no_csrf(org):
    """A bearer-token PATCH works without a CSRF token (scripts have none)."""
    from django.test import Client

    from loudou.customers.services import create_account

    account = create_account(actor=org.east_rep, name="Hengxin")
    _token, key = create_token(org.east_rep)
    client = Client(enforce_csrf_checks=True)
    response = client.patch(
        f"/api/v1/accounts/{account.pk}",
        {"version": 1, "name": "Hengxin Tech"},
        content_type="application/json",
        headers=auth(key),
    )
    assert response.status_code == 200
    account.refresh_from_db()
    assert (account.name, account.version) == ("Hengxin Tech", 2)
