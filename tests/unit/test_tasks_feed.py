"""The secret calendar feed: what it holds (read back with icalendar), whose tasks, and
that a wrong or replaced token is a 404."""

from datetime import timedelta

import pytest
from django.utils import timezone
from icalendar import Calendar

from loudou.tasks import services
from loudou.tasks.models import CalendarFeed
from tests.unit.test_activities_services import make_subjects
from tests.unit.test_tasks_services import at, task_for

pytestmark = pytest.mark.django_db


def read_feed(client, user):
    url = services.calendar_feed(user).get_absolute_url()
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    return Calendar.from_ical(response.content)


def events(cal) -> dict:
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


def test_feed_needs_no_login_and_holds_the_task(client, org):
    """Without logging in, the feed gives a timed task as an event in UTC with its title,
    a link to its page in the description, a stable UID and an alarm at the reminder."""
    s = make_subjects(org.east_rep)
    task = task_for(
        org.east_rep, title="回电, 确认预算; 带报价", due_at=at(1, 10), remind_at=at(1, 9, 45),
        opportunity=s.opp, notes="第一行\n第二行",
    )  # fmt: skip
    cal = read_feed(client, org.east_rep)
    event = events(cal)[f"task-{task.pk}@loudou"]
    assert str(event["SUMMARY"]) == "回电, 确认预算; 带报价"
    start = event.decoded("DTSTART")
    assert start == task.due_at and start.utcoffset() == timedelta(0)
    assert b"DTSTART:" in event.to_ical() and b"Z\r\n" in event.to_ical()
    description = str(event["DESCRIPTION"])
    assert description.startswith("第一行\n第二行\n")
    assert description.endswith(f"http://testserver/tasks/{task.pk}/")
    assert str(event["URL"]) == f"http://testserver/tasks/{task.pk}/"
    (alarm,) = event.walk("VALARM")
    assert alarm.decoded("TRIGGER") == timedelta(minutes=-15)


def test_all_day_and_done_tasks(client, org):
    """An all-day task is a date event on its local day; a task done in the last 30 days
    is there with a check mark and no alarm; one done earlier and open tasks of others
    are not."""
    allday = task_for(org.east_rep, title="整天", due_at=at(2), all_day=True)
    recent = task_for(org.east_rep, title="做完了", due_at=at(-3), remind_at=at(-3, 9))
    services.complete_task(recent, actor=org.east_rep)
    old = task_for(org.east_rep, title="很久以前")
    services.complete_task(old, actor=org.east_rep, at=timezone.now() - timedelta(days=40))
    task_for(org.east_rep2, title="别人的")
    found = events(read_feed(client, org.east_rep))
    assert set(found) == {f"task-{allday.pk}@loudou", f"task-{recent.pk}@loudou"}
    event = found[f"task-{allday.pk}@loudou"]
    assert event.decoded("DTSTART") == at(2).date()
    assert event.decoded("DTEND") == at(3).date()
    done = found[f"task-{recent.pk}@loudou"]
    assert str(done["SUMMARY"]) == "✓ 做完了" and not done.walk("VALARM")


def test_feed_shows_tasks_assigned_by_others(client, org):
    """A task the manager gave me is in my feed, and in the manager's own."""
    task = task_for(org.east_mgr, owner=org.east_mgr, assignees=[org.east_rep])
    assert f"task-{task.pk}@loudou" in events(read_feed(client, org.east_rep))
    assert f"task-{task.pk}@loudou" in events(read_feed(client, org.east_mgr))


def test_each_token_shows_only_its_users_tasks(client, org):
    """My token shows my tasks only; a colleague's token shows theirs only."""
    mine = task_for(org.east_rep)
    theirs = task_for(org.east_rep2)
    assert set(events(read_feed(client, org.east_rep))) == {f"task-{mine.pk}@loudou"}
    assert set(events(read_feed(client, org.east_rep2))) == {f"task-{theirs.pk}@loudou"}


def test_wrong_replaced_or_deactivated_token_is_404(client, org):
    """A made-up token, the old token after "new address", and the token of a user who
    was deactivated all answer 404."""
    task_for(org.east_rep)
    assert client.get("/tasks/feed/not-a-token.ics").status_code == 404
    old = services.calendar_feed(org.east_rep).token
    new = services.regenerate_feed(org.east_rep).token
    assert new != old and len(new) >= 32
    assert client.get(f"/tasks/feed/{old}.ics").status_code == 404
    assert client.get(f"/tasks/feed/{new}.ics").status_code == 200
    org.east_rep.is_active = False
    org.east_rep.save()
    assert client.get(f"/tasks/feed/{new}.ics").status_code == 404


def test_regenerate_button(client, org):
    """The calendar page shows the https and webcal addresses; its button makes a new
    token and the page shows the new address."""
    client.force_login(org.east_rep)
    html = client.get("/tasks/calendar/").content.decode()
    token = CalendarFeed.objects.get(user=org.east_rep).token
    assert f"http://testserver/tasks/feed/{token}.ics" in html
    assert f"webcal://testserver/tasks/feed/{token}.ics" in html
    response = client.post("/tasks/feed/regenerate/")
    assert response.status_code == 302
    fresh = CalendarFeed.objects.get(user=org.east_rep).token
    assert fresh != token
    assert fresh in client.get("/tasks/calendar/").content.decode()


def test_feed_query_count_does_not_grow(client, org, django_assert_max_num_queries):
    """The feed costs the same few queries for 2 or 40 tasks."""
    s = make_subjects(org.east_rep)
    url = services.calendar_feed(org.east_rep).get_absolute_url()
    for i in range(40):
        task_for(org.east_rep, due_at=at(i % 5), opportunity=s.opp, remind_at=at(i % 5, 9))
    with django_assert_max_num_queries(3):
        assert client.get(url).status_code == 200
