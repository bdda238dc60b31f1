"""The worklist and daily plan API: scope (404 outside it), the section order, the
seven-item limit, versions and carry-over."""

import pytest

from loudou.worklist.models import DailyPlan, PlanItem
from loudou.worklist.queries import BAND_KEYS
from tests.unit.test_worklist_queries import EXPECTED, build

pytestmark = pytest.mark.django_db
DAY = "2026-11-23"


def test_worklist_sections_in_order(client, org, bearer):
    """GET /worklist lists the sections and items in DOMAIN §7's order."""
    build(org)
    answer = client.get("/api/v1/worklist", headers=bearer(org.east_rep))
    assert answer.status_code == 200
    body = answer.json()
    assert body["user_id"] == org.east_rep.pk
    assert [s["key"] for s in body["sections"]] == ["due", *BAND_KEYS]
    got = [(s["key"], i["kind"]) for s in body["sections"] for i in s["items"]]
    assert got == [(band, kind) for band, kind, _title in EXPECTED]
    closing = next(s for s in body["sections"] if s["key"] == "closing")
    assert closing["items"][0]["urgent"] is True
    assert closing["items"][0]["breaches"][0]["rule"] == "Contact every 7 days"
    assert body["prospecting"] == {"start": "09:30", "end": "11:00"}


@pytest.mark.parametrize(
    ("viewer", "whose", "status"),
    [
        ("east_mgr", "east_rep", 200),
        ("east_mgr", "sub_rep", 200),
        ("admin", "south_rep", 200),
        ("east_rep", "east_rep2", 404),
        ("south_mgr", "east_rep", 404),
        ("east_rep", "east_rep", 200),
    ],
)
def test_worklist_of_someone_else(client, org, bearer, viewer, whose, status):
    """A manager reads their subtree's worklists, an admin anyone's; anyone else is a
    404, the same as a missing user."""
    target = getattr(org, whose)
    answer = client.get(f"/api/v1/worklist?user={target.pk}", headers=bearer(getattr(org, viewer)))
    assert answer.status_code == status
    if status == 200:
        assert answer.json()["user_id"] == target.pk
    else:
        assert answer.json()["code"] == "not_found"


def test_worklist_needs_authentication(client, org):
    """Without credentials: 401 JSON."""
    assert client.get("/api/v1/worklist").status_code == 401


def test_plan_not_stored_reads_empty(client, org, bearer):
    """A plan never written reads as an empty plan with version 0."""
    body = client.get(f"/api/v1/daily-plans/{DAY}", headers=bearer(org.east_rep)).json()
    assert (body["id"], body["version"], body["items"], body["problems"]) == (None, 0, [], "")


def test_plan_put_and_conflict(client, org, bearer):
    """PUT writes Check/Act; a stale version is a 409 that changes nothing."""
    headers = bearer(org.east_rep)
    url = f"/api/v1/daily-plans/{DAY}"
    first = client.put(url, {"version": 0, "risks": "Budget freeze"}, "application/json",
                       headers=headers)  # fmt: skip
    assert first.status_code == 200
    assert (first.json()["risks"], first.json()["version"]) == ("Budget freeze", 1)
    stale = client.put(url, {"version": 0, "risks": "Other"}, "application/json", headers=headers)
    assert stale.status_code == 409
    assert DailyPlan.objects.get().risks == "Budget freeze"


def test_items_limit_patch_delete(client, org, bearer):
    """POST adds up to seven items, the eighth is a 422 on text; PATCH checks the item's
    version; DELETE removes."""
    headers = bearer(org.east_rep)
    url = f"/api/v1/daily-plans/{DAY}/items"
    ids = []
    for n in range(7):
        answer = client.post(url, {"text": f"Item {n}"}, "application/json", headers=headers)
        assert answer.status_code == 201
        ids.append(answer.json()["id"])
    eighth = client.post(url, {"text": "Eighth"}, "application/json", headers=headers)
    assert eighth.status_code == 422
    assert (eighth.json()["field"], eighth.json()["code"]) == ("text", "plan_full")
    assert PlanItem.objects.count() == 7
    patched = client.patch(f"{url}/{ids[0]}", {"version": 1, "status": "done"},
                           "application/json", headers=headers)  # fmt: skip
    assert (patched.status_code, patched.json()["status"], patched.json()["version"]) == (
        200, "done", 2,
    )  # fmt: skip
    stale = client.patch(f"{url}/{ids[0]}", {"version": 1, "status": "partly"},
                         "application/json", headers=headers)  # fmt: skip
    assert stale.status_code == 409
    assert client.delete(f"{url}/{ids[1]}", headers=headers).status_code == 204
    assert PlanItem.objects.count() == 6


def test_items_of_someone_else_are_404(client, org, bearer):
    """Another person's item is a 404 to PATCH and DELETE, and stays as it was."""
    headers = bearer(org.east_rep)
    made = client.post(f"/api/v1/daily-plans/{DAY}/items", {"text": "Mine"}, "application/json",
                       headers=headers).json()  # fmt: skip
    other = bearer(org.east_mgr)
    url = f"/api/v1/daily-plans/{DAY}/items/{made['id']}"
    assert (
        client.patch(url, {"status": "done"}, "application/json", headers=other).status_code == 404
    )
    assert client.delete(url, headers=other).status_code == 404
    assert PlanItem.objects.get().status == "planned"


def test_manager_reads_rep_plan_scope(client, org, bearer):
    """A manager reads a team member's plan with ?user=; another team's manager gets 404."""
    client.post(f"/api/v1/daily-plans/{DAY}/items", {"text": "Mine"}, "application/json",
                headers=bearer(org.east_rep))  # fmt: skip
    url = f"/api/v1/daily-plans/{DAY}?user={org.east_rep.pk}"
    answer = client.get(url, headers=bearer(org.east_mgr))
    assert [i["text"] for i in answer.json()["items"]] == ["Mine"]
    assert client.get(url, headers=bearer(org.south_mgr)).status_code == 404


def test_carry_over(client, org, bearer):
    """POST carry-over copies the unfinished items to the next day once; again: 422."""
    headers = bearer(org.east_rep)
    for text in ("One", "Two"):
        client.post(f"/api/v1/daily-plans/{DAY}/items", {"text": text}, "application/json",
                    headers=headers)  # fmt: skip
    url = f"/api/v1/daily-plans/{DAY}/carry-over"
    answer = client.post(url, {}, "application/json", headers=headers)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["day"], [i["text"] for i in body["items"]]) == ("2026-11-24", ["One", "Two"])
    again = client.post(url, {}, "application/json", headers=headers)
    assert (again.status_code, again.json()["code"]) == (422, "nothing")


@pytest.mark.parametrize("day", ["yesterday", "2026-13-01", "1999-12-31", "20261123"])
def test_bad_day_is_422(client, org, bearer, day):
    """A day that is not today or a YYYY-MM-DD between 2000 and 2100 is a 422."""
    answer = client.get(f"/api/v1/daily-plans/{day}", headers=bearer(org.east_rep))
    assert (answer.status_code, answer.json()["field"]) == (422, "day")
