"""Tasks API: the permission checks for every actor, create / list filters / patch with
version / complete / reopen / delete, refusals as JSON, and the calendar feed address."""

import pytest
from django.http import QueryDict
from django.utils import timezone

from loudou.tasks.models import CalendarFeed, Task
from tests.permissions import PermissionChecks
from tests.unit.test_activities_services import make_subjects
from tests.unit.test_tasks_services import at, task_for

pytestmark = pytest.mark.django_db


class TestTaskPermissions(PermissionChecks):
    """A task owned by the rep on their account: seen by the owner, a colleague of
    another team it is assigned to, the owner's manager and an admin; a 404 to everyone
    else. All of them may also change it."""

    page_urls = ("/tasks/{obj.pk}/",)
    list_url = "/tasks/?assignee=any&status=all"
    api_url = "/api/v1/tasks/{obj.pk}"
    api_list_url = "/api/v1/tasks?assignee=any&status=all"
    edit_url = "/tasks/{obj.pk}/"

    def make_object(self, org, owner):
        from loudou.customers.services import create_account

        account = create_account(actor=owner, name="华东机械")
        return task_for(owner, account=account)

    def share(self, obj, user):
        """A task is shared by assigning it."""
        obj.assignees.add(user)
        return True

    def edit_data(self, obj):
        return {
            "title": "改了", "kind": "call", "due_date": timezone.localdate().isoformat(),
            "due_time": "10:00", "remind": "", "notes": "", "version": obj.version,
            "assignees": list(obj.assignees.values_list("pk", flat=True)),
        }  # fmt: skip

    def api_patch_data(self, obj):
        return {"version": obj.version, "title": "改了"}

    def test_list_page_anonymous_redirects_to_login(self, client, scene):
        """Anonymous visitors of the list page are sent to the login page (the list URL
        has a query string, which ``next`` carries encoded)."""
        url = self.url("list_url", scene)
        response = client.get(url)
        next_query = QueryDict(mutable=True)
        next_query["next"] = url
        assert response.status_code == 302
        assert response.url == "/login/?" + next_query.urlencode(safe="/")


class TestTaskPermissionsInSubteam(TestTaskPermissions):
    """The same checks for a task owned in the sub-team, to prove subtree scope."""

    owner = "sub_rep"
    team_rep = "east_rep"


@pytest.fixture
def api(client, org, bearer):
    def call(method, url, user=None, **kwargs):
        headers = bearer(user or org.east_rep)
        if "json" in kwargs:
            kwargs["data"] = kwargs.pop("json")
            kwargs["content_type"] = "application/json"
        return getattr(client, method)(url, headers=headers, **kwargs)

    return call


def test_create_with_links_assignees_and_reminder(api, org):
    """POST creates a task linked to an opportunity (and its account), with a teammate
    and a reminder; the answer lists the assignees."""
    s = make_subjects(org.east_rep)
    response = api(
        "post", "/api/v1/tasks",
        json={"title": "发报价", "kind": "email", "due_at": at(1, 10).isoformat(),
              "remind_at": at(1, 9).isoformat(), "opportunity_id": s.opp.pk,
              "assignee_ids": [org.east_rep2.pk]},
    )  # fmt: skip
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["assignee_ids"] == sorted([org.east_rep.pk, org.east_rep2.pk])
    assert (data["opportunity_id"], data["account_id"], data["owner_id"]) == (
        s.opp.pk, s.account.pk, org.east_rep.pk,
    )  # fmt: skip
    assert data["is_overdue"] is False and data["version"] == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"assignee_ids": [999999]}, "assignee_ids"),
        ({"owner_id": 999999}, "owner_id"),
        ({"account_id": 999999}, "account_id"),
    ],
)
def test_create_refusals_are_422_on_the_field(api, body, field, english):
    """Unknown people or records are a 422 naming the field; nothing is created."""
    response = api("post", "/api/v1/tasks", json={"title": "x", **body})
    assert response.status_code == 422 and response.json()["field"] == field
    assert not Task.objects.exists()


def test_create_other_teams_assignee_is_422(api, org):
    """An assignee from another team is refused for a rep."""
    response = api("post", "/api/v1/tasks", json={"title": "x", "assignee_ids": [org.south_rep.pk]})
    assert response.status_code == 422 and not Task.objects.exists()


def test_list_filters(api, org):
    """The list defaults to my open tasks; status and due dates narrow it; a manager's
    team view holds the subtree."""
    late = task_for(org.east_rep, due_at=at(-2))
    soon = task_for(org.east_rep, due_at=at(2))
    sub = task_for(org.sub_rep, due_at=at(0, 12))

    def ids(url, user=None):
        response = api("get", url, user)
        assert response.status_code == 200
        return [item["id"] for item in response.json()["items"]]

    assert ids("/api/v1/tasks") == [late.pk, soon.pk]
    assert ids("/api/v1/tasks?status=overdue") == [late.pk]
    day = at(2).date().isoformat()
    assert ids(f"/api/v1/tasks?due_from={day}&due_to={day}") == [soon.pk]
    assert ids("/api/v1/tasks?assignee=team", org.east_mgr) == [late.pk, sub.pk, soon.pk]
    assert ids(f"/api/v1/tasks?assignee=team&person={org.sub_rep.pk}", org.east_mgr) == [sub.pk]


def test_patch_version_conflict_and_refusal(api, org):
    """PATCH with the current version saves; with an old one 409; by someone who only
    sees the task (shared) 403; nothing changes on a refusal."""
    task = task_for(org.east_rep)
    ok = api("patch", f"/api/v1/tasks/{task.pk}", json={"version": 1, "title": "新"})
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = api("patch", f"/api/v1/tasks/{task.pk}", json={"version": 1, "title": "旧"})
    assert stale.status_code == 409 and stale.json()["code"] == "version_conflict"
    task.shared_with.add(org.south_rep)
    forbidden = api("patch", f"/api/v1/tasks/{task.pk}", org.south_rep, json={"title": "别人改的"})
    assert forbidden.status_code == 403
    assert Task.objects.get(pk=task.pk).title == "新"


def test_patch_null_title_is_422(api, org):
    """A required field sent as null is refused."""
    task = task_for(org.east_rep)
    response = api("patch", f"/api/v1/tasks/{task.pk}", json={"title": None})
    assert response.status_code == 422


def test_complete_reopen_delete(api, org):
    """complete and reopen flip the state; delete with an old version is 409, with the
    current one 204."""
    task = task_for(org.east_rep)
    done = api("post", f"/api/v1/tasks/{task.pk}/complete?version=1")
    assert done.status_code == 200 and done.json()["done_by_id"] == org.east_rep.pk
    reopened = api("post", f"/api/v1/tasks/{task.pk}/reopen")
    assert reopened.status_code == 200 and reopened.json()["done_at"] is None
    assert api("delete", f"/api/v1/tasks/{task.pk}?version=1").status_code == 409
    assert api("delete", f"/api/v1/tasks/{task.pk}?version=3").status_code == 204
    assert not Task.objects.exists()


def test_calendar_feed_address_and_regenerate(api, org):
    """GET gives my feed addresses (created on first use); regenerate replaces the token."""
    first = api("get", "/api/v1/calendar-feed").json()
    token = CalendarFeed.objects.get(user=org.east_rep).token
    assert first["token"] == token
    assert first["https_url"] == f"http://testserver/tasks/feed/{token}.ics"
    assert first["webcal_url"] == f"webcal://testserver/tasks/feed/{token}.ics"
    again = api("post", "/api/v1/calendar-feed/regenerate").json()
    assert again["token"] != token
    assert again["token"] == CalendarFeed.objects.get(user=org.east_rep).token
