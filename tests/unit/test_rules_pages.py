"""The rules pages: who sees and edits rules, the rule form with field errors, switching
on and off, working hours and holidays, and the breach list with counts and downloads."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from loudou.customers.services import create_account
from loudou.rules.models import Breach, FollowUpRule, Holiday, Requirement, WorkingPeriod

TZ = ZoneInfo("Asia/Shanghai")
DUE = datetime(2025, 9, 29, 14, tzinfo=TZ)


@pytest.fixture
def breaches(org):
    rule = FollowUpRule.objects.get(requirement="contact_every", conditions={"grades": ["won"]})
    made = {}
    for user in (org.east_rep, org.east_rep2, org.south_rep):
        account = create_account(actor=user, name=f"{user.username}的客户")
        made[user.username] = Breach.objects.create(
            rule=rule, owner=user, account=account, due_at=DUE, key=f"t:{user.pk}"
        )
    return made


def test_reps_do_not_see_the_rules_pages(client, org):
    """The rule list, a rule and the working hours are for managers and admins: 404."""
    client.force_login(org.east_rep)
    rule = FollowUpRule.objects.first()
    for url in ("/rules/", f"/rules/{rule.pk}/", "/rules/working-time/", "/rules/new/"):
        assert client.get(url).status_code == 404, url


def test_manager_reads_rules_but_cannot_change_them(client, org, english):
    """A manager sees the list and a rule's form (read-only); a POST is a 404 that changes
    nothing."""
    client.force_login(org.east_mgr)
    page = client.get("/rules/").content.decode()
    assert "New lead contacted within 5 hours" in page and "Switch off" not in page
    rule = FollowUpRule.objects.get(requirement=Requirement.FIRST_CONTACT_WITHIN)
    form = client.get(f"/rules/{rule.pk}/").context["form"]
    assert all(field.disabled for field in form.fields.values())
    assert "rule-save" not in client.get(f"/rules/{rule.pk}/").content.decode()
    response = client.post(f"/rules/{rule.pk}/", {"name": "x", "amount": 1})
    assert response.status_code == 404
    assert FollowUpRule.objects.get(pk=rule.pk).amount == 5


def test_admin_creates_a_rule_with_the_form(client, org):
    """The form's conditions that fit the record kind are kept, the others dropped."""
    client.force_login(org.admin)
    response = client.post("/rules/new/", {
        "name": "A级客户每2天", "applies_to": "account", "requirement": "contact_every",
        "amount": 2, "position": 5, "is_active": "on", "remind_owner": "on",
        "grades": ["A"], "lead_statuses": ["new"], "task_kinds": ["call"], "version": 1,
    })  # fmt: skip
    assert response.status_code == 302
    rule = FollowUpRule.objects.get(name="A级客户每2天")
    assert (rule.amount, rule.conditions) == (2, {"grades": ["A"]})


def test_rule_form_shows_a_refusal_on_its_field(client, org, english):
    """A "contact every N days" rule without N comes back with the error on N."""
    client.force_login(org.admin)
    before = FollowUpRule.objects.count()
    response = client.post("/rules/new/", {
        "name": "坏规则", "applies_to": "lead", "requirement": "contact_every", "position": 1,
        "version": 1,
    })  # fmt: skip
    assert response.status_code == 200
    assert response.context["form"].errors["amount"] == ["N must be between 1 and 3650."]
    assert FollowUpRule.objects.count() == before


def test_switching_off_from_the_list(client, org, breaches):
    """The list's switch turns a rule off and settles its open breaches."""
    client.force_login(org.admin)
    rule = breaches["east_rep"].rule
    response = client.post(f"/rules/{rule.pk}/active/", {"active": "0", "version": rule.version})
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.is_active is False
    assert set(Breach.objects.values_list("resolution", flat=True)) == {"rule_inactive"}


def test_working_hours_are_saved_and_bad_ranges_refused(client, org, english):
    """Ranges are saved per weekday; "9-12" is refused on its day and nothing changes."""
    client.force_login(org.admin)
    data = {"form": "hours", **{f"day{d}": "" for d in range(7)}, "day0": "08:30-12:00"}
    assert client.post("/rules/working-time/", data).status_code == 302
    assert list(WorkingPeriod.objects.values_list("weekday", "start", "end")) == [
        (0, time(8, 30), time(12))
    ]
    data["day1"] = "9-12"
    response = client.post("/rules/working-time/", data)
    assert response.status_code == 200
    assert "Write ranges like" in response.content.decode()
    assert WorkingPeriod.objects.count() == 1


def test_make_up_day_is_added(client, org):
    """A make-up working day is stored with the weekday it works like."""
    client.force_login(org.admin)
    response = client.post("/rules/working-time/", {
        "form": "holiday", "date": "2025-10-11", "name": "国庆调休", "is_workday": "on",
        "workday_like": "3",
    })  # fmt: skip
    assert response.status_code == 302
    day = Holiday.objects.get()
    assert (day.date, day.is_workday, day.workday_like) == (date(2025, 10, 11), True, 3)


def test_breach_list_is_scoped(client, org, breaches):
    """A rep sees their own breach, the East manager East's two, with counts per rep."""
    client.force_login(org.east_rep)
    response = client.get("/rules/breaches/")
    assert [b.pk for b in response.context["page"]] == [breaches["east_rep"].pk]
    client.force_login(org.east_mgr)
    response = client.get("/rules/breaches/")
    assert {b.owner.username for b in response.context["page"]} == {"east_rep", "east_rep2"}
    assert {row["name"]: row["open"] for row in response.context["per_owner"]} == {
        "east_rep": 1, "east_rep2": 1,
    }  # fmt: skip


def test_breach_list_downloads_csv(client, org, breaches):
    """``?format=csv`` downloads the filtered list."""
    client.force_login(org.east_mgr)
    response = client.get(f"/rules/breaches/?format=csv&owner={org.east_rep2.pk}")
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == 2 and "east_rep2的客户" in lines[1]


def test_breach_list_queries_do_not_grow(client, org, breaches, django_assert_max_num_queries):
    """The list page costs the same number of queries with 3 or 30 breaches."""
    client.force_login(org.admin)
    with django_assert_max_num_queries(12) as before:
        client.get("/rules/breaches/")
    rule = breaches["east_rep"].rule
    for i in range(27):
        account = create_account(actor=org.east_rep, name=f"客户{i}")
        Breach.objects.create(rule=rule, owner=org.east_rep, account=account, due_at=DUE,
                              key=f"more:{i}")  # fmt: skip
    with django_assert_max_num_queries(len(before.captured_queries)):
        client.get("/rules/breaches/")
