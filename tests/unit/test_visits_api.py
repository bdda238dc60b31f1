"""Visits API: scope through PermissionChecks, planning, patching with versions, check-in
with the distance, record, cancel, statistics; bad input is a 4xx JSON, never a 500."""

from datetime import timedelta

import pytest
from django.utils import timezone

from loudou.activities.models import Activity, Visit
from loudou.activities.visits import services
from loudou.customers.services import create_account
from loudou.tasks.models import Task
from tests.permissions import PermissionChecks
from tests.unit.test_visits_services import NORTH_320, place, plan, snapshot

pytestmark = pytest.mark.django_db


class TestVisitPermissions(PermissionChecks):
    """A visit planned by a rep to their account: seen by the owner, a colleague it is
    shared with, the owner's manager and an admin; a 404 to everyone else."""

    page_urls = ("/activities/visits/{obj.pk}/",)
    list_url = "/activities/visits/"
    api_url = "/api/v1/visits/{obj.pk}"
    api_list_url = "/api/v1/visits"

    def make_object(self, org, owner):
        account = create_account(actor=owner, name="华东机械")
        return plan(owner, account)

    # No edit_data / api_patch_data: a colleague who only sees a visit may not change it
    # (test_patch_by_role below).


class TestVisitPermissionsInSubteam(TestVisitPermissions):
    """The same checks for a visit owned in the sub-team, to prove subtree scope."""

    owner = "sub_rep"
    team_rep = "east_rep"


@pytest.fixture
def account(org):
    return place(create_account(actor=org.east_rep, name="华东机械"))


@pytest.fixture
def visit(org, account):
    return plan(org.east_rep, account)


def test_plan_creates_visit_and_task(client, bearer, org, account):
    """POST /visits plans a visit (201) with its task."""
    when = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    body = {"account_id": account.pk, "planned_for": when.isoformat(), "topic": "送样品"}
    response = client.post(
        "/api/v1/visits", body, content_type="application/json", headers=bearer(org.east_rep)
    )
    assert response.status_code == 201, response.content
    data = response.json()
    task = Task.objects.get(pk=data["task_id"])
    assert (data["status"], data["topic"], data["owner_id"]) == (
        "planned",
        "送样品",
        org.east_rep.pk,
    )
    assert (task.kind, task.due_at) == ("visit", when)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"planned_for": "2026-12-01T10:00:00+08:00"}, "account"),
        ({"account_id": "ACCOUNT", "planned_for": "tomorrow"}, None),
        ({"account_id": 999_999, "planned_for": "2026-12-01T10:00:00+08:00"}, "account_id"),
        ({"account_id": "ACCOUNT", "planned_for": "0001-01-01T00:00:00+00:00"}, "planned_for"),
        (
            {
                "account_id": "ACCOUNT",
                "planned_for": "2026-12-01T10:00:00+08:00",
                "owner_id": "OTHER",
            },
            "owner_id",
        ),
    ],
)
def test_plan_refusals_are_422(client, bearer, org, account, body, field):
    """Planning without account, with a bad time, an unknown account, a time out of the
    calendar or for someone outside the team is a 422 JSON, and nothing is saved."""
    body = {
        k: (account.pk if v == "ACCOUNT" else org.south_rep.pk if v == "OTHER" else v)
        for k, v in body.items()
    }
    response = client.post(
        "/api/v1/visits", body, content_type="application/json", headers=bearer(org.east_rep)
    )
    assert response.status_code == 422, response.content
    if field:
        assert response.json()["field"] == field
    assert (Visit.objects.count(), Task.objects.count()) == (0, 0)


def test_list_filters(client, bearer, org, account, visit):
    """The list narrows by status, owner, account and planned day."""
    other = plan(org.east_rep, account, hours=24 * 10)
    services.cancel_visit(other, actor=org.east_rep, reason="改期")
    headers = bearer(org.east_mgr)
    day = timezone.localtime(visit.planned_for).date().isoformat()

    def ids(query):
        response = client.get(f"/api/v1/visits?{query}", headers=headers)
        assert response.status_code == 200
        return [item["id"] for item in response.json()["items"]]

    assert ids("status=planned") == [visit.pk]
    assert ids("status=cancelled") == [other.pk]
    assert ids(f"owner={org.east_rep.pk}") == [other.pk, visit.pk]
    assert ids(f"owner={org.east_rep2.pk}") == []
    assert ids(f"date_from={day}&date_to={day}") == [visit.pk]
    assert ids(f"account={account.pk}&checked_in=false") == [other.pk, visit.pk]


def test_patch_reschedules_with_version(client, bearer, org, visit):
    """PATCH with the current version moves the visit and its task; a stale version is
    a 409 that changes nothing."""
    when = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    headers = bearer(org.east_rep)
    ok = client.patch(
        f"/api/v1/visits/{visit.pk}", {"planned_for": when.isoformat(), "version": 1},
        content_type="application/json", headers=headers,
    )  # fmt: skip
    assert ok.status_code == 200, ok.content
    assert Task.objects.get(pk=visit.task_id).due_at == when
    before = snapshot(visit)
    stale = client.patch(
        f"/api/v1/visits/{visit.pk}", {"topic": "晚了", "version": 1},
        content_type="application/json", headers=headers,
    )  # fmt: skip
    assert (stale.status_code, stale.json()["code"]) == (409, "version_conflict")
    assert snapshot(visit) == before


@pytest.mark.parametrize(
    ("username", "status"),
    [("east_rep", 200), ("east_mgr", 200), ("admin", 200), ("east_rep2", 403), ("south_rep", 404)],
)
def test_patch_by_role(client, bearer, org, visit, username, status):
    """Owner, manager and admin may change a visit; a colleague it is shared with gets
    403, a rep who cannot see it 404; a refusal changes nothing."""
    visit.shared_with.add(org.east_rep2)
    response = client.patch(
        f"/api/v1/visits/{visit.pk}", {"topic": "改过"},
        content_type="application/json", headers=bearer(getattr(org, username)),
    )  # fmt: skip
    assert response.status_code == status, response.content
    assert Visit.objects.get(pk=visit.pk).topic == ("改过" if status == 200 else "")


def test_check_in_answers_distance(client, bearer, org, visit):
    """The owner's check-in answers the position, the distance (320 m) and far=false."""
    response = client.post(
        f"/api/v1/visits/{visit.pk}/check-in",
        {"latitude": float(NORTH_320[0]), "longitude": float(NORTH_320[1]), "accuracy": 12.4},
        content_type="application/json", headers=bearer(org.east_rep),
    )  # fmt: skip
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["distance_m"], data["far"], data["accuracy_m"]) == (320, False, 12)
    assert (data["latitude"], data["longitude"]) == (31.23328, 121.4737)


@pytest.mark.parametrize(
    ("username", "body", "status"),
    [
        ("east_mgr", {"latitude": 31.2, "longitude": 121.4}, 403),
        ("east_rep", {"latitude": 91, "longitude": 121.4}, 422),
        ("east_rep", {"latitude": 31.2, "longitude": -180.01}, 422),
        ("east_rep", {"latitude": 31.2}, 422),
        ("east_rep", {"latitude": "north", "longitude": 1}, 422),
        ("east_rep", {"latitude": 31.2, "longitude": 121.4, "accuracy": -1}, 422),
        ("south_rep", {"latitude": 31.2, "longitude": 121.4}, 404),
    ],
)
def test_check_in_refusals(client, bearer, org, visit, username, body, status):
    """A manager cannot check in for the rep (403); coordinates out of range or missing
    are 422; a rep who cannot see the visit gets 404; nothing changes."""
    before = snapshot(visit)
    response = client.post(
        f"/api/v1/visits/{visit.pk}/check-in", body, content_type="application/json",
        headers=bearer(getattr(org, username)),
    )  # fmt: skip
    assert response.status_code == status, response.content
    assert snapshot(visit) == before


def test_check_in_twice_is_409(client, bearer, org, visit):
    """The second check-in is a 409."""
    headers = bearer(org.east_rep)
    body = {"latitude": 31.2, "longitude": 121.4}
    url = f"/api/v1/visits/{visit.pk}/check-in"
    assert (
        client.post(url, body, content_type="application/json", headers=headers).status_code == 200
    )
    again = client.post(url, body, content_type="application/json", headers=headers)
    assert (again.status_code, again.json()["code"]) == (409, "checked_in")


def test_record_and_cancel(client, bearer, org, account, visit):
    """Recording answers done with the activity; cancelling another needs a reason and
    answers cancelled; recording the cancelled one is a 409."""
    headers = bearer(org.east_rep)
    done = client.post(
        f"/api/v1/visits/{visit.pk}/record", {"outcome": "meeting_held", "notes": "谈妥"},
        content_type="application/json", headers=headers,
    )  # fmt: skip
    assert done.status_code == 200, done.content
    activity = Activity.objects.get(pk=done.json()["activity_id"])
    assert (done.json()["status"], activity.kind, activity.outcome) == (
        "done",
        "visit",
        "meeting_held",
    )
    other = plan(org.east_rep, account)
    empty = client.post(
        f"/api/v1/visits/{other.pk}/cancel", {"reason": ""}, content_type="application/json",
        headers=headers,
    )  # fmt: skip
    assert empty.status_code == 422
    cancelled = client.post(
        f"/api/v1/visits/{other.pk}/cancel", {"reason": "客户出差"},
        content_type="application/json", headers=headers,
    )  # fmt: skip
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    late = client.post(
        f"/api/v1/visits/{other.pk}/record", {}, content_type="application/json", headers=headers
    )
    assert (late.status_code, late.json()["code"]) == (409, "not_planned")


def test_stats_scope(client, bearer, org, account, visit):
    """The statistics hold the caller's scope: a rep only themself, the manager the
    team's reps (with this week's planned visit), another manager not them."""

    def owners(user, weeks=4):
        response = client.get(f"/api/v1/visits/stats?weeks={weeks}", headers=bearer(user))
        assert response.status_code == 200, response.content
        return {row["owner_id"]: row for row in response.json()["rows"]}

    assert set(owners(org.east_rep)) == {org.east_rep.pk}
    team = owners(org.east_mgr)
    assert set(team) == {org.east_rep.pk, org.east_rep2.pk, org.sub_rep.pk}
    this_week = team[org.east_rep.pk]["weeks"][-1]
    assert (this_week["planned"], this_week["done"]) == (1, 0)
    assert set(owners(org.south_mgr)) == {org.south_rep.pk}
    assert (
        client.get("/api/v1/visits/stats?weeks=0", headers=bearer(org.east_rep)).status_code == 422
    )
    assert (
        client.get("/api/v1/visits/stats?weeks=53", headers=bearer(org.east_rep)).status_code == 422
    )


def test_anonymous_is_401(client, visit):
    """Without credentials every visit endpoint answers 401 JSON."""
    for method, url in [
        ("get", "/api/v1/visits/stats"),
        ("post", f"/api/v1/visits/{visit.pk}/check-in"),
        ("post", f"/api/v1/visits/{visit.pk}/record"),
    ]:
        response = getattr(client, method)(url, content_type="application/json")
        assert (response.status_code, response.json()["code"]) == (401, "unauthenticated")
