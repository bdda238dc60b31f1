"""Task pages: the list (mine / team, statuses, quick done, new task), a task's page
(edit, done, delete), the panel on each record's page (quick add, refresh after an
activity is logged), the calendar's day / week / month views, and query counts."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loudou.tasks import services
from loudou.tasks.models import Task
from tests.unit.test_activities_services import make_subjects
from tests.unit.test_tasks_services import at, task_for

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def rep(client, org):
    client.force_login(org.east_rep)
    return client


@pytest.fixture
def s(org):
    return make_subjects(org.east_rep)


def html_of(response):
    assert response.status_code == 200
    return response.content.decode()


# --- list ------------------------------------------------------------------------------


def test_list_shows_my_open_tasks_soonest_first(rep, org, english):
    """The list shows the open tasks I am assigned, soonest first, overdue marked;
    a teammate's own task is not there."""
    later = task_for(org.east_rep, title="Later", due_at=at(3))
    late = task_for(org.east_rep, title="Late", due_at=at(-1))
    task_for(org.east_rep2, title="Not mine")
    html = html_of(rep.get("/tasks/"))
    assert html.index(late.get_absolute_url()) < html.index(later.get_absolute_url())
    assert "Not mine" not in html
    assert "Overdue" in html


def test_list_empty_state(rep, english):
    """With no tasks the list says how to add one."""
    html = html_of(rep.get("/tasks/"))
    assert 'data-testid="empty"' in html and "New task" in html


def test_manager_sees_team_tasks_and_one_person(client, org):
    """A manager's "team" view lists the subtree's tasks and can narrow to one person;
    a rep asking for "team" gets their own."""
    mine = task_for(org.east_rep)
    sub = task_for(org.sub_rep)
    south = task_for(org.south_rep)
    client.force_login(org.east_mgr)
    html = html_of(client.get("/tasks/?assignee=team"))
    assert mine.get_absolute_url() in html and sub.get_absolute_url() in html
    assert south.get_absolute_url() not in html
    html = html_of(client.get(f"/tasks/?assignee=team&person={org.sub_rep.pk}"))
    assert sub.get_absolute_url() in html and mine.get_absolute_url() not in html
    client.force_login(org.east_rep2)
    html = html_of(client.get("/tasks/?assignee=team"))
    assert mine.get_absolute_url() not in html


def test_done_checkbox_with_htmx(rep, org):
    """Ticking a row's checkbox marks the task done and answers the row, now checked and
    offering to reopen; unticking reopens."""
    task = task_for(org.east_rep)
    html = html_of(rep.post(f"/tasks/{task.pk}/done/", headers=HTMX))
    assert 'data-testid="task-row"' in html and "checked" in html
    assert f'hx-post="/tasks/{task.pk}/reopen/"' in html
    assert Task.objects.get(pk=task.pk).done_by == org.east_rep
    rep.post(f"/tasks/{task.pk}/reopen/", headers=HTMX)
    assert Task.objects.get(pk=task.pk).done_at is None


def test_done_refused_for_someone_who_only_sees_it(client, org):
    """A colleague the task is shared with sees it but may not tick it: 403, unchanged."""
    task = task_for(org.east_rep)
    task.shared_with.add(org.south_rep)
    client.force_login(org.south_rep)
    response = client.post(f"/tasks/{task.pk}/done/", headers=HTMX)
    assert response.status_code == 403
    assert Task.objects.get(pk=task.pk).done_at is None


def test_task_of_others_is_404(client, org):
    """A task outside the user's scope is a 404 on every page."""
    task = task_for(org.east_rep)
    client.force_login(org.south_rep)
    for url in (f"/tasks/{task.pk}/", f"/tasks/{task.pk}/done/", f"/tasks/{task.pk}/delete/"):
        assert client.post(url).status_code == 404
    assert Task.objects.get(pk=task.pk).done_at is None


def test_new_task_from_the_list(rep, org):
    """The new-task form adds a timed task with a teammate and a reminder an hour before."""
    day = timezone.localdate() + timedelta(days=1)
    response = rep.post(
        "/tasks/new/",
        {"title": "准备投标文件", "kind": "other", "due_date": day.isoformat(),
         "due_time": "14:30", "remind": "60", "assignees": [org.east_rep2.pk]},
    )  # fmt: skip
    assert response.status_code == 302
    task = Task.objects.get()
    local = timezone.localtime(task.due_at)
    assert (local.date(), local.hour, local.minute, task.all_day) == (day, 14, 30, False)
    assert task.remind_at == task.due_at - timedelta(hours=1)
    assert set(task.assignees.all()) == {org.east_rep, org.east_rep2}


def test_task_page_edit_and_stale_edit(rep, org):
    """The task's page saves an edit (no time: all day); a second save with the old
    version is refused with a message and changes nothing."""
    task = task_for(org.east_rep)
    day = timezone.localdate().isoformat()
    data = {"title": "改期", "kind": "call", "due_date": day, "due_time": "", "remind": "",
            "assignees": [org.east_rep.pk], "notes": "", "version": 1}  # fmt: skip
    assert rep.post(f"/tasks/{task.pk}/", data).status_code == 302
    task.refresh_from_db()
    assert (task.title, task.all_day, task.version) == ("改期", True, 2)
    response = rep.post(f"/tasks/{task.pk}/", {**data, "title": "旧的"})
    assert response.status_code == 200 and "version" in response.content.decode()
    assert Task.objects.get(pk=task.pk).title == "改期"


def test_task_page_read_only_for_who_may_not_change(client, org):
    """Someone who only sees a task gets its page without the edit form."""
    task = task_for(org.east_rep)
    task.shared_with.add(org.south_rep)
    client.force_login(org.south_rep)
    html = html_of(client.get(f"/tasks/{task.pk}/"))
    assert 'data-testid="task-edit"' not in html and 'data-testid="task-delete"' not in html


def test_delete_from_task_page_returns_to_the_record(rep, org, s):
    """Deleting a task linked to an opportunity goes back to the opportunity."""
    task = task_for(org.east_rep, opportunity=s.opp)
    response = rep.post(f"/tasks/{task.pk}/delete/", {"version": 1})
    assert response.status_code == 302 and response.url == s.opp.get_absolute_url()
    assert not Task.objects.exists()


# --- the panel on a record's page -------------------------------------------------------


@pytest.mark.parametrize("name", ["opp", "account", "contact", "lead"])
def test_panel_on_each_record_page(rep, s, name):
    """The account, contact, lead and opportunity pages carry the task panel, which posts
    to that record and refreshes when an activity is logged."""
    subject = getattr(s, name)
    html = html_of(rep.get(subject.get_absolute_url()))
    url = f"/tasks/panel/{subject._meta.model_name}/{subject.pk}/"
    assert 'data-testid="task-panel"' in html and f'hx-post="{url}"' in html
    assert 'hx-trigger="activity-logged from:body"' in html


def test_panel_quick_add_with_htmx(rep, org, s):
    """Adding from an opportunity's panel links the task to it (and its account) and
    answers the panel with the task listed and an empty title."""
    day = timezone.localdate().isoformat()
    response = rep.post(
        f"/tasks/panel/opportunity/{s.opp.pk}/",
        {"title": "发正式报价", "kind": "email", "due_date": day, "due_time": "16:00",
         "assignees": [org.east_rep.pk]},
        headers=HTMX,
    )  # fmt: skip
    html = html_of(response)
    task = Task.objects.get()
    assert (task.opportunity, task.account, task.kind) == (s.opp, s.account, "email")
    assert 'data-testid="task-panel-item"' in html and "发正式报价" in html
    assert 'name="title" maxlength="200" required value=""' in html


def test_panel_quick_add_errors_keep_the_input(rep, s):
    """A task without a title is refused; the panel shows the error and keeps the date."""
    response = rep.post(
        f"/tasks/panel/account/{s.account.pk}/",
        {"title": "", "kind": "call", "due_date": "2026-12-01"},
        headers=HTMX,
    )
    html = html_of(response)
    assert 'data-testid="task-errors"' in html and 'value="2026-12-01"' in html
    assert not Task.objects.exists()


def test_panel_refresh_shows_tasks_created_meanwhile(rep, org, s):
    """The panel's GET (what htmx fetches on activity-logged) lists the record's open
    tasks, including one a rule created meanwhile; done ones are left out."""
    rule_task = task_for(None, owner=org.east_rep, account=s.account, title="加微信", key="k")
    done = task_for(org.east_rep, account=s.account, title="早做完了")
    services.complete_task(done, actor=org.east_rep)
    html = html_of(rep.get(f"/tasks/panel/account/{s.account.pk}/", headers=HTMX))
    assert rule_task.get_absolute_url() in html and "早做完了" not in html


def test_panel_done_checkbox_answers_the_panel(rep, org, s):
    """Ticking a task in the panel answers the refreshed panel without it."""
    task = task_for(org.east_rep, lead=s.lead, title="回电")
    html = html_of(rep.post(f"/tasks/{task.pk}/done/", {"from": "panel"}, headers=HTMX))
    assert 'data-testid="task-panel"' in html and 'data-testid="task-panel-empty"' in html


def test_panel_of_invisible_record_is_404(client, org, s):
    """The panel of a record the user cannot see is a 404, and adding there too."""
    client.force_login(org.south_rep)
    assert client.get(f"/tasks/panel/account/{s.account.pk}/").status_code == 404
    response = client.post(
        f"/tasks/panel/account/{s.account.pk}/", {"title": "x", "due_date": "2026-12-01"}
    )
    assert response.status_code == 404 and not Task.objects.exists()


# --- calendar ---------------------------------------------------------------------------


def test_week_view_places_tasks_on_their_days(rep, org):
    """The week view holds this week's tasks, each in its day's cell, all-day first."""
    today = timezone.localdate()
    timed = task_for(org.east_rep, title="Timed", due_at=at(0, 8))
    allday = task_for(org.east_rep, title="Whole day", due_at=at(0), all_day=True)
    response = rep.get(f"/tasks/calendar/?view=week&date={today.isoformat()}")
    html = html_of(response)
    cell = html.split(f'data-day="{today.isoformat()}"', 1)[1].split('data-testid="cal-cell"')[0]
    assert cell.index(allday.get_absolute_url()) < cell.index(timed.get_absolute_url())
    assert response.context["count"] == 2


@pytest.mark.parametrize("view", ["day", "week", "month"])
def test_calendar_empty_state(rep, view):
    """An empty period says so in every view."""
    html = html_of(rep.get(f"/tasks/calendar/?view={view}&date=2031-03-12"))
    assert 'data-testid="cal-empty"' in html


def test_month_view_navigation_and_overdue(rep, org):
    """The month view runs Monday to Sunday around the month, links the previous and next
    months, and marks a past open task as overdue."""
    task_for(org.east_rep, title="Missed", due_at=at(-1))
    response = rep.get("/tasks/calendar/?view=month&date=2026-02-14")
    p = response.context["p"]
    assert (p.start.isoformat(), p.end.isoformat()) == ("2026-01-26", "2026-03-02")
    assert (p.prev.isoformat(), p.next.isoformat()) == ("2026-01-01", "2026-03-01")
    html = html_of(rep.get(f"/tasks/calendar/?view=day&date={at(-1).date().isoformat()}"))
    assert "cal-overdue" in html and "Missed" in html


def test_calendar_counts_overdue_before_the_period(rep, org):
    """Looking at this week, open tasks overdue from earlier weeks are counted on top."""
    task_for(org.east_rep, due_at=at(-10))
    html = html_of(rep.get("/tasks/calendar/?view=day"))
    assert 'data-testid="cal-overdue"' in html


def test_team_calendar_for_managers_only(client, org):
    """A manager sees the whole team or one person; a rep's "who" is ignored."""
    sub = task_for(org.sub_rep, due_at=at(0, 15))
    client.force_login(org.east_mgr)
    assert sub.get_absolute_url() not in html_of(client.get("/tasks/calendar/?view=day"))
    html = html_of(client.get("/tasks/calendar/?view=day&who=team"))
    assert sub.get_absolute_url() in html
    html = html_of(client.get(f"/tasks/calendar/?view=day&who={org.sub_rep.pk}"))
    assert sub.get_absolute_url() in html
    client.force_login(org.east_rep)
    html = html_of(client.get("/tasks/calendar/?view=day&who=team"))
    assert sub.get_absolute_url() not in html


def test_bad_calendar_parameters_fall_back(rep):
    """An unknown view or a date that does not parse shows this week."""
    response = rep.get("/tasks/calendar/?view=year&date=2026-13-45&who=nobody")
    assert response.status_code == 200 and response.context["p"].view == "week"


# --- query counts -----------------------------------------------------------------------


def _count(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    "url",
    ["/tasks/", "/tasks/?assignee=team", "/tasks/calendar/?view=week&who=team",
     "/tasks/calendar/?view=month&who=team"],
)  # fmt: skip
def test_list_and_calendar_query_count_does_not_grow(client, org, url):
    """The list and the calendar cost as many queries with 30 tasks as with 3."""
    client.force_login(org.east_mgr)
    s = make_subjects(org.east_rep)

    def add(n):
        for i in range(n):
            task_for(
                org.east_mgr, owner=org.east_rep if i % 2 else org.sub_rep,
                assignees=[org.east_mgr], due_at=at(i % 3, 9 + i % 8), opportunity=s.opp,
            )  # fmt: skip

    add(3)
    _count(client, url)  # warm up
    few = _count(client, url)
    add(27)
    many = _count(client, url)
    assert many == few, f"{url}: {few} queries for 3 tasks, {many} for 30"
