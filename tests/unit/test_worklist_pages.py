"""The Today page: both languages, the manager's read-only view, and the actions that
change something (tick a task, log an activity, plan items) through htmx."""

import pytest

from loudou.activities.models import Activity
from loudou.tasks.models import Task
from loudou.worklist.models import PlanItem
from tests.unit.test_worklist_queries import build

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def _login(client, user):
    client.force_login(user)


@pytest.mark.parametrize(
    ("language", "words"),
    [("en", ["Overdue and due today", "About to order", "PDCA daily plan"]),
     ("zh-hans", ['lang="zh-hans"', "今天"])],
)  # fmt: skip
def test_page_in_both_languages(client, org, language, words):
    """The page answers in the user's language with the bands and the plan."""
    data = build(org)
    _login(client, org.east_rep)
    client.post("/i18n/setlang/", {"language": language, "next": "/"})
    page = client.get("/today/")
    assert page.status_code == 200
    html = page.content.decode()
    for word in words:
        assert word in html
    assert data["late20"].title in html
    assert html.count('data-testid="band"') == 6


def test_empty_page_says_well_done(client, org, english):
    """With nothing to do the page says so instead of showing empty boxes."""
    _login(client, org.east_rep)
    html = client.get("/today/").content.decode()
    assert "Nothing overdue — well done." in html
    assert "Nothing planned yet." in html


def test_manager_sees_rep_read_only(client, org, english):
    """A manager opens a rep's day read-only (no tick, log or plan forms); another
    team's manager gets a 404."""
    build(org)
    _login(client, org.east_mgr)
    html = client.get(f"/today/?user={org.east_rep.pk}").content.decode()
    assert 'data-testid="read-only"' in html
    assert "Prepare the weekly report" in html
    assert 'data-testid="task-done"' not in html
    assert 'data-testid="plan-add-form"' not in html
    client.logout()
    _login(client, org.south_mgr)
    assert client.get(f"/today/?user={org.east_rep.pk}").status_code == 404
    _login(client, org.east_rep)
    assert client.get(f"/today/?user={org.east_rep2.pk}").status_code == 404


def test_tick_task_done(client, org, english):
    """Ticking a task from the list completes it and the answered list no longer has it."""
    data = build(org)
    _login(client, org.east_rep)
    task = data["report_task"]
    answer = client.post(f"/today/tasks/{task.pk}/done/", headers=HTMX)
    assert answer.status_code == 200
    html = answer.content.decode()
    assert "Done: Prepare the weekly report" in html
    assert "Prepare the weekly report" not in html.split('data-band="due"')[1]
    assert Task.objects.get(pk=task.pk).done_at is not None


def test_cannot_tick_someone_elses_task(client, org):
    """A task not assigned to me is a 404 and stays open."""
    data = build(org)
    _login(client, org.east_rep2)
    assert client.post(f"/today/tasks/{data['report_task'].pk}/done/").status_code == 404
    assert Task.objects.get(pk=data["report_task"].pk).done_at is None


def test_quick_log(client, org, english):
    """Logging from a line records an activity on that record."""
    data = build(org)
    _login(client, org.east_rep)
    lead = data["old_never"]
    answer = client.post(
        f"/today/log/lead/{lead.pk}/",
        {"kind": "call", "outcome": "reached", "notes": "Interested in a demo"},
        headers=HTMX,
    )
    assert answer.status_code == 200
    assert Activity.objects.filter(lead=lead, notes="Interested in a demo").count() == 1


def test_quick_log_error_stays_on_the_line(client, org, english):
    """A call without an outcome is refused with the message under that line."""
    data = build(org)
    _login(client, org.east_rep)
    lead = data["old_never"]
    before = Activity.objects.count()
    answer = client.post(f"/today/log/lead/{lead.pk}/", {"kind": "call"}, headers=HTMX)
    html = answer.content.decode()
    assert 'role="alert"' in html
    assert Activity.objects.count() == before


def test_plan_from_page(client, org, english):
    """Adding, ticking and the eighth-item refusal work from the page."""
    _login(client, org.east_rep)
    day = "2026-11-23"
    for n in range(7):
        answer = client.post(f"/today/plan/{day}/items/", {"text": f"Item {n}", "category": "key"},
                             headers=HTMX)  # fmt: skip
        assert answer.status_code == 200
    assert "the plan is full" in answer.content.decode()
    refused = client.post(f"/today/plan/{day}/items/", {"text": "Eighth", "category": "key"},
                          headers=HTMX)  # fmt: skip
    assert "at most 7 items" in refused.content.decode()
    item = PlanItem.objects.get(position=1)
    client.post(f"/today/plan/items/{item.pk}/", {"status": "done", "version": 1}, headers=HTMX)
    assert PlanItem.objects.get(pk=item.pk).status == "done"
    assert PlanItem.objects.count() == 7
