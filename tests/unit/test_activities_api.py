"""The activities API and pages through the permission mixin: who sees an activity, who
may change it, and what a bad request answers."""

import pytest

from loudou.activities import services
from loudou.activities.models import Activity
from loudou.customers.services import create_account
from tests.permissions import PermissionChecks
from tests.unit.test_activities_services import make_subjects

pytestmark = pytest.mark.django_db


class TestActivityPermissions(PermissionChecks):
    """An activity on an account, both owned by the rep: seen by the owner, a colleague
    it is shared with, the owner's manager and an admin; a 404 to everyone else."""

    page_urls = ("/activities/{obj.pk}/",)
    list_url = "/activities/"
    api_url = "/api/v1/activities/{obj.pk}"
    api_list_url = "/api/v1/activities"
    edit_url = "/activities/{obj.pk}/"

    def make_object(self, org, owner):
        account = create_account(actor=owner, name="华东机械")
        return services.log_activity(owner, account=account, kind="call", outcome="reached")

    # No edit_data / api_patch_data: the mixin expects every reader to be able to write,
    # but a colleague who only sees an activity may not change it (tests below).


class TestActivityPermissionsInSubteam(TestActivityPermissions):
    """The same checks for an activity owned in the sub-team, to prove subtree scope."""

    owner = "sub_rep"
    team_rep = "east_rep"


@pytest.fixture
def activity(org):
    account = create_account(actor=org.east_rep, name="华东机械")
    account.shared_with.add(org.east_rep2)
    return services.log_activity(org.east_rep, account=account, kind="call", outcome="reached")


@pytest.mark.parametrize(
    ("username", "status"),
    [("east_rep", 200), ("east_mgr", 200), ("admin", 200), ("east_rep2", 403), ("south_rep", 404)],
)
def test_api_patch_by_role(client, bearer, org, activity, username, status):
    """Owner, manager and admin may change an activity; a teammate who sees it through a
    shared account gets 403, a rep who cannot see it 404; a refusal changes nothing."""
    response = client.patch(
        f"/api/v1/activities/{activity.pk}", {"notes": "改过", "version": 1},
        content_type="application/json", headers=bearer(getattr(org, username)),
    )  # fmt: skip
    assert response.status_code == status, response.content
    notes = Activity.objects.get(pk=activity.pk).notes
    assert notes == ("改过" if status == 200 else "")


@pytest.mark.parametrize(
    ("username", "status"), [("east_rep2", 403), ("south_rep", 404), ("east_mgr", 204)]
)
def test_api_delete_by_role(client, bearer, org, activity, username, status):
    """Only the owner, their manager or an admin may delete."""
    response = client.delete(
        f"/api/v1/activities/{activity.pk}", headers=bearer(getattr(org, username))
    )
    assert response.status_code == status
    assert Activity.objects.filter(pk=activity.pk).exists() is (status != 204)


def test_page_edit_by_owner_saves_and_teammate_gets_no_form(client, org, activity):
    """The owner's edit is saved; the teammate who sees the activity through its account
    gets the page without a form, and their post is refused with nothing changed."""
    client.force_login(org.east_rep2)
    page = client.get(f"/activities/{activity.pk}/")
    assert page.status_code == 200 and 'data-testid="activity-edit"' not in page.content.decode()
    data = {"kind": "visit", "outcome": "visited", "notes": "改过", "version": 1}
    client.post(f"/activities/{activity.pk}/", data)
    assert Activity.objects.get(pk=activity.pk).notes == ""
    client.force_login(org.east_rep)
    response = client.post(f"/activities/{activity.pk}/", data)
    assert response.status_code == 302
    saved = Activity.objects.get(pk=activity.pk)
    assert (saved.kind, saved.notes, saved.version) == ("visit", "改过", 2)


def test_api_create_links_and_defaults(client, bearer, org):
    """POST with a contact links its account and takes the default purpose; the answer
    is the saved activity."""
    s = make_subjects(org.east_rep)
    response = client.post(
        "/api/v1/activities",
        {"kind": "wechat", "outcome": "reached", "contact_id": s.contact.pk, "gave_what": "报价单"},
        content_type="application/json", headers=bearer(org.east_rep),
    )  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["contact_id"], body["account_id"], body["purpose"]) == (
        s.contact.pk, s.account.pk, "prospecting",
    )  # fmt: skip
    assert (body["gave_something"], body["owner_id"]) == (True, org.east_rep.pk)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "call", "outcome": "reached"}, "account"),
        ({"kind": "call", "outcome": "reached", "account_id": "ACCOUNT",
          "duration_minutes": -1}, None),
        ({"kind": "call", "outcome": "reached", "account_id": 999999}, "account_id"),
        ({"kind": "fax", "outcome": "reached", "account_id": "ACCOUNT"}, None),
        ({"kind": "call", "account_id": "ACCOUNT"}, "outcome"),
    ],
)  # fmt: skip
def test_api_create_refusals_are_422(client, bearer, org, body, field):
    """No subject, a negative duration, an unknown or invisible record, an unknown kind
    and a missing outcome are each a 422 in JSON, and nothing is saved."""
    account = create_account(actor=org.east_rep, name="华东机械")
    body = {k: (account.pk if v == "ACCOUNT" else v) for k, v in body.items()}
    response = client.post(
        "/api/v1/activities", body, content_type="application/json", headers=bearer(org.east_rep)
    )
    assert response.status_code == 422, response.content
    if field:
        assert response.json()["field"] == field
    assert Activity.objects.count() == 0


def test_api_account_of_another_team_is_422_not_saved(client, bearer, org):
    """A rep naming another team's account gets the same 422 as for a missing one."""
    theirs = create_account(actor=org.south_rep, name="华南")
    response = client.post(
        "/api/v1/activities", {"kind": "call", "outcome": "reached", "account_id": theirs.pk},
        content_type="application/json", headers=bearer(org.east_rep),
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["field"] == "account_id"
    assert Activity.objects.count() == 0


def test_api_stale_version_is_409(client, bearer, org, activity):
    """A PATCH carrying an old version is a 409 and changes nothing."""
    services.update_activity(activity, actor=org.east_rep, notes="先改")
    response = client.patch(
        f"/api/v1/activities/{activity.pk}", {"notes": "后改", "version": 1},
        content_type="application/json", headers=bearer(org.east_rep),
    )  # fmt: skip
    assert response.status_code == 409
    assert Activity.objects.get(pk=activity.pk).notes == "先改"


def test_api_list_filters(client, bearer, org):
    """The list narrows by kind, owner scope and linked record type."""
    s = make_subjects(org.east_rep)
    call = services.log_activity(org.east_rep, opportunity=s.opp, kind="call", outcome="reached")
    visit = services.log_activity(org.east_rep, lead=s.lead, kind="visit", outcome="visited")
    theirs = services.log_activity(org.east_mgr, account=s.account, kind="call", outcome="reached")
    headers = bearer(org.east_rep)

    def ids(query):
        return {
            i["id"]
            for i in client.get(f"/api/v1/activities?{query}", headers=headers).json()["items"]
        }

    assert ids("kind=call") == {call.pk, theirs.pk}
    assert ids("scope=mine") == {call.pk, visit.pk}
    assert ids("linked=lead") == {visit.pk}
    assert ids(f"opportunity={s.opp.pk}") == {call.pk}
