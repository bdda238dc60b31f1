"""The rules and breaches API: who reads and writes rules, scoped breach lists and
counts, the sweep endpoint, refusals as 4xx JSON."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from loudou.customers.services import create_account
from loudou.rules.models import Breach, FollowUpRule, Requirement

TZ = ZoneInfo("Asia/Shanghai")
DUE = datetime(2025, 9, 29, 14, tzinfo=TZ)


@pytest.fixture
def breaches(org):
    """An open breach for east_rep, sub_rep and south_rep each, and a resolved one for
    east_rep."""
    rule = FollowUpRule.objects.get(requirement="contact_every", conditions={"grades": ["C"]})
    made = {}
    for user in (org.east_rep, org.sub_rep, org.south_rep):
        account = create_account(actor=user, name=f"{user.username} 客户")
        made[user.username] = Breach.objects.create(
            rule=rule, owner=user, account=account, due_at=DUE, key=f"t:{user.pk}"
        )
    made["resolved"] = Breach.objects.create(
        rule=rule, owner=org.east_rep, account=made["east_rep"].account, due_at=DUE,
        resolved_at=DUE + timedelta(days=1), resolution="met", key="t:resolved",
    )  # fmt: skip
    return made


def get(client, url, headers):
    return client.get(url, headers=headers)


def test_reps_see_their_own_breaches_managers_their_subtree(client, org, breaches, bearer):
    """east_rep lists their one open breach; east_mgr sees East and East Sub; an admin
    sees all three."""

    def ids(user, query=""):
        response = client.get(f"/api/v1/breaches{query}", headers=bearer(user))
        assert response.status_code == 200
        return sorted(item["id"] for item in response.json()["items"])

    b = breaches
    assert ids(org.east_rep) == [b["east_rep"].pk]
    assert ids(org.east_mgr) == sorted([b["east_rep"].pk, b["sub_rep"].pk])
    assert ids(org.admin) == sorted(x.pk for k, x in b.items() if k != "resolved")
    assert ids(org.east_rep, "?state=resolved") == [b["resolved"].pk]
    assert ids(org.east_rep, "?state=all") == sorted([b["east_rep"].pk, b["resolved"].pk])


def test_breach_outside_the_scope_is_404(client, org, breaches, bearer):
    """south_rep's breach is a 404 for east_rep, exactly like a missing id."""
    hidden = client.get(
        f"/api/v1/breaches/{breaches['south_rep'].pk}", headers=bearer(org.east_rep)
    )
    missing = client.get("/api/v1/breaches/999999", headers=bearer(org.east_rep))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()


def test_breach_carries_its_record(client, org, breaches, bearer):
    """A breach names its record and links to it."""
    b = breaches["east_rep"]
    body = client.get(f"/api/v1/breaches/{b.pk}", headers=bearer(org.east_rep)).json()
    assert (body["subject_type"], body["subject_id"]) == ("account", b.account_id)
    assert body["url"] == b.account.get_absolute_url()
    assert body["requirement"] == "contact_every"


def test_counts_per_owner_and_rule(client, org, breaches, bearer):
    """The manager's counts: one open breach each for east_rep and sub_rep, east_rep
    two in total with ``state=all``."""
    response = client.get("/api/v1/breaches/counts?state=all", headers=bearer(org.east_mgr))
    per_owner = {
        row["owner_id"]: (row["open"], row["total"]) for row in response.json()["per_owner"]
    }
    assert per_owner == {org.east_rep.pk: (1, 2), org.sub_rep.pk: (1, 1)}
    assert [(r["open"], r["total"]) for r in response.json()["per_rule"]] == [(2, 3)]


def test_reps_may_not_read_rules(client, org, bearer):
    """Rules are for managers and admins: a rep gets 403, a manager the list."""
    assert client.get("/api/v1/rules", headers=bearer(org.east_rep)).status_code == 403
    response = client.get("/api/v1/rules", headers=bearer(org.east_mgr))
    assert response.status_code == 200
    assert len(response.json()) == FollowUpRule.objects.count() == 13


def test_admin_creates_and_changes_a_rule(client, org, bearer):
    """An admin adds a rule and changes it with the version read; a stale version is a
    409 that changes nothing."""
    headers = bearer(org.admin)
    created = client.post(
        "/api/v1/rules",
        {"name": "线索每3天联系", "applies_to": "lead", "requirement": "contact_every",
         "amount": 3, "conditions": {"lead_statuses": ["new", "contacted"]}},
        content_type="application/json", headers=headers,
    )  # fmt: skip
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["conditions"] == {"lead_statuses": ["new", "contacted"]}
    changed = client.patch(
        f"/api/v1/rules/{rule['id']}", {"version": rule["version"], "amount": 4},
        content_type="application/json", headers=headers,
    )  # fmt: skip
    assert changed.status_code == 200 and changed.json()["amount"] == 4
    stale = client.patch(
        f"/api/v1/rules/{rule['id']}", {"version": rule["version"], "amount": 9},
        content_type="application/json", headers=headers,
    )  # fmt: skip
    assert stale.status_code == 409
    assert FollowUpRule.objects.get(pk=rule["id"]).amount == 4


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"applies_to": "lead", "requirement": "contact_every"}, "amount"),
        ({"applies_to": "lead", "requirement": "stale"}, "applies_to"),
        (
            {
                "applies_to": "opportunity",
                "requirement": "contact_every",
                "amount": 5,
                "conditions": {"pipelines": [987654]},
            },
            "conditions",
        ),  # fmt: skip
        (
            {
                "applies_to": "opportunity",
                "requirement": "contact_every",
                "amount": 5,
                "return_to_pool": True,
            },
            "return_to_pool",
        ),  # fmt: skip
        ({"applies_to": "any", "requirement": "task_on_outcome", "conditions": {}}, "conditions"),
    ],
)
def test_invalid_rules_are_422_on_the_field(client, org, bearer, payload, field):
    """A rule that cannot work is refused with 422 naming the field; nothing is stored."""
    before = FollowUpRule.objects.count()
    response = client.post(
        "/api/v1/rules", {"name": "x", **payload}, content_type="application/json",
        headers=bearer(org.admin),
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert FollowUpRule.objects.count() == before


def test_manager_may_not_change_rules(client, org, bearer):
    """A manager's PATCH is a 403 and changes nothing."""
    rule = FollowUpRule.objects.get(requirement=Requirement.FIRST_CONTACT_WITHIN)
    response = client.patch(
        f"/api/v1/rules/{rule.pk}", {"version": rule.version, "amount": 1},
        content_type="application/json", headers=bearer(org.east_mgr),
    )  # fmt: skip
    assert response.status_code == 403
    assert FollowUpRule.objects.get(pk=rule.pk).amount == 5


def test_sweep_endpoint_is_for_admins(client, org, bearer):
    """POST /rules/sweep runs a sweep for an admin (the first one rebuilds the state);
    a manager gets 403."""
    assert client.post("/api/v1/rules/sweep", {}, content_type="application/json",
                       headers=bearer(org.east_mgr)).status_code == 403  # fmt: skip
    response = client.post(
        "/api/v1/rules/sweep", {"full": True}, content_type="application/json",
        headers=bearer(org.admin),
    )  # fmt: skip
    assert response.status_code == 200
    assert response.json()["mode"] == "rebuild"
