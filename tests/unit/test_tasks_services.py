"""Task services: creating (owner always assigned, who may be assigned, idempotent keys),
changing with permission and version checks, done / reopen / delete, who sees a task,
the list filters, reminders and the hand-over of assignments."""

from datetime import datetime, time, timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.notifications.models import Notification
from loudou.org.handover import hand_over
from loudou.tasks import services
from loudou.tasks.filters import TaskFilter
from loudou.tasks.models import Task
from tests.unit.test_activities_services import make_subjects

pytestmark = pytest.mark.django_db


def at(day_offset=0, hour=10, minute=0):
    """An aware local moment ``day_offset`` days from today."""
    day = timezone.localdate() + timedelta(days=day_offset)
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def task_for(actor, **kwargs):
    kwargs.setdefault("title", "回电确认预算")
    kwargs.setdefault("due_at", at(1))
    return services.create_task(actor, **kwargs)


def row(task):
    return Task.objects.filter(pk=task.pk).values().get()


def assignee_ids(task):
    return set(task.assignees.values_list("pk", flat=True))


# --- creating ---------------------------------------------------------------------------


def test_owner_is_always_an_assignee(org):
    """The owner is among the assignees even when the list names only others."""
    task = task_for(org.east_rep, assignees=[org.east_rep2])
    assert assignee_ids(task) == {org.east_rep.pk, org.east_rep2.pk}
    assert task.owner == org.east_rep and task.created_by == org.east_rep


def test_rep_may_not_assign_another_teams_rep(org):
    """A rep may add teammates but not a rep of another team; nothing is written."""
    with pytest.raises(ValidationFailed) as refused:
        task_for(org.east_rep, assignees=[org.south_rep])
    assert refused.value.field == "assignees"
    assert Task.objects.count() == 0


def test_rep_may_not_make_a_colleague_the_owner(org):
    """Only a manager (or admin) gives a task to someone else as its owner."""
    with pytest.raises(ValidationFailed) as refused:
        task_for(org.east_rep, owner=org.east_rep2)
    assert refused.value.field == "owner"
    task = task_for(org.east_mgr, owner=org.sub_rep)
    assert task.owner == org.sub_rep and assignee_ids(task) == {org.sub_rep.pk}


def test_links_must_be_visible_and_bring_the_account(org):
    """A task on an opportunity links its account; a record the actor cannot see is
    refused."""
    s = make_subjects(org.east_rep)
    task = task_for(org.east_rep, opportunity=s.opp)
    assert task.account == s.account
    with pytest.raises(ValidationFailed):
        task_for(org.south_rep, opportunity=s.opp)
    assert Task.objects.count() == 1


def test_system_creates_without_checks(org):
    """A rule (actor None) may create a task for anyone, linked to anything."""
    s = make_subjects(org.east_rep)
    task = task_for(None, owner=org.east_rep, contact=s.contact, source="rule", key="r:1")
    assert (task.owner, task.account, task.created_by) == (org.east_rep, s.account, None)


def test_all_day_task_is_due_at_the_end_of_its_day(org):
    """An all-day task is due at 23:59:59 local time, so it is not overdue during its day."""
    task = task_for(org.east_rep, due_at=at(0, 0, 0), all_day=True)
    local = timezone.localtime(task.due_at)
    assert (local.date(), local.hour, local.minute, local.second) == (
        timezone.localdate(),
        23,
        59,
        59,
    )
    assert task.is_overdue is False


def test_same_key_returns_the_first_task(org):
    """A rule that fires twice with one key gets the same task back."""
    first = task_for(None, owner=org.east_rep, key="rule:7:lead:1")
    again = task_for(None, owner=org.east_rep, key="rule:7:lead:1", title="Other")
    assert again.pk == first.pk and Task.objects.count() == 1


def test_key_race_loser_gets_the_winners_task(org):
    """When another worker inserted the key between the lookup and the insert, the unique
    constraint decides and the loser returns the winner's task instead of failing."""
    winner = task_for(None, owner=org.east_rep, key="race")
    with mock.patch("loudou.tasks.services._existing", return_value=None):
        loser = task_for(None, owner=org.east_rep2, key="race", title="Second")
    assert loser.pk == winner.pk and loser.title == winner.title
    assert Task.objects.count() == 1


def test_blank_title_is_refused(org):
    """A task needs a title."""
    with pytest.raises(ValidationError):
        task_for(org.east_rep, title="   ")
    assert Task.objects.count() == 0


# --- who sees it ------------------------------------------------------------------------


def test_assignee_of_another_team_sees_the_task(org):
    """An assignee sees the task although they would not see the owner's records; other
    reps do not."""
    task = task_for(org.east_mgr, owner=org.east_rep, assignees=[org.sub_rep])
    assert Task.objects.visible_to(org.sub_rep).filter(pk=task.pk).exists()
    assert not Task.objects.visible_to(org.east_rep2).filter(pk=task.pk).exists()
    assert Task.objects.visible_to(org.east_mgr).filter(pk=task.pk).count() == 1
    assert not Task.objects.visible_to(org.south_mgr).filter(pk=task.pk).exists()


def test_visible_to_lists_each_task_once(org):
    """A task the user owns, is assigned and shared is listed once."""
    task = task_for(org.east_rep)
    task.shared_with.add(org.east_rep)
    assert list(Task.objects.visible_to(org.east_rep)) == [task]


# --- changing ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["east_rep", "east_rep2", "east_mgr", "admin"])
def test_owner_assignee_manager_and_admin_may_change(org, who):
    """The owner, an assignee, the owner's manager and an admin may edit a task."""
    task = task_for(org.east_rep, assignees=[org.east_rep2])
    saved = services.update_task(task, actor=getattr(org, who), version=1, title="改了")
    assert (saved.title, saved.version) == ("改了", 2)


@pytest.mark.parametrize("who", ["sub_rep", "south_rep", "south_mgr"])
def test_others_may_not_change(org, who):
    """Anyone else (even one it is shared with) is refused and nothing changes."""
    task = task_for(org.east_rep)
    task.shared_with.add(getattr(org, who))
    before = row(task)
    for call in (
        lambda: services.update_task(task, actor=getattr(org, who), title="x"),
        lambda: services.complete_task(task, actor=getattr(org, who)),
        lambda: services.delete_task(task, actor=getattr(org, who)),
    ):
        with pytest.raises(NotPermitted):
            call()
    assert row(task) == before


def test_stale_version_is_a_conflict(org):
    """An edit made from an old copy is refused and changes nothing."""
    task = task_for(org.east_rep)
    services.update_task(task, actor=org.east_rep, version=1, title="first")
    before = row(task)
    with pytest.raises(Conflict):
        services.update_task(task, actor=org.east_rep, version=1, title="second")
    with pytest.raises(Conflict):
        services.delete_task(task, actor=org.east_rep, version=1)
    assert row(task) == before


def test_update_keeps_owner_among_assignees_and_checks_new_ones(org):
    """Replacing the assignees keeps the owner; a new assignee the actor may not choose is
    refused, one already assigned may stay."""
    task = task_for(org.east_mgr, owner=org.east_rep, assignees=[org.sub_rep])
    saved = services.update_task(task, actor=org.east_rep, assignees=[org.sub_rep])
    assert assignee_ids(saved) == {org.east_rep.pk, org.sub_rep.pk}
    with pytest.raises(ValidationFailed):
        services.update_task(task, actor=org.east_rep, assignees=[org.south_rep])
    assert assignee_ids(task) == {org.east_rep.pk, org.sub_rep.pk}


def test_new_reminder_time_is_sent_again(org):
    """Moving the reminder clears "reminded", so the new time notifies again."""
    task = task_for(org.east_rep, remind_at=at(0, 9))
    Task.objects.filter(pk=task.pk).update(reminded_at=at(0, 9))
    saved = services.update_task(task, actor=org.east_rep, remind_at=at(0, 11))
    assert saved.reminded_at is None


def test_complete_and_reopen(org):
    """Done records who and when; reopening clears both; both bump the version."""
    task = task_for(org.east_rep, assignees=[org.east_rep2])
    done = services.complete_task(task, actor=org.east_rep2, version=1)
    assert (done.done_by, done.version, done.is_done) == (org.east_rep2, 2, True)
    again = services.complete_task(task, actor=org.east_rep)  # idempotent
    assert (again.done_by, again.version) == (org.east_rep2, 2)
    reopened = services.reopen_task(task, actor=org.east_rep, version=2)
    assert (reopened.done_at, reopened.done_by, reopened.version) == (None, None, 3)


def test_delete(org):
    """The owner's manager may delete a task."""
    task = task_for(org.east_rep)
    services.delete_task(task, actor=org.east_mgr, version=1)
    assert not Task.objects.exists()


# --- list filters -----------------------------------------------------------------------


def test_filters_by_status_and_people(org):
    """overdue / today / week / done narrow as named; "team" shows a manager the
    subtree's tasks, "me" only their own."""
    now = at(0, 12)
    late = task_for(org.east_rep, due_at=at(-1))
    today = task_for(org.east_rep, due_at=at(0, 15))
    week = task_for(org.east_rep, due_at=at(5))
    later = task_for(org.east_rep, due_at=at(20))
    done = task_for(org.sub_rep, due_at=at(-2))
    services.complete_task(done, actor=org.sub_rep)
    qs = Task.objects.visible_to(org.east_mgr)

    def pks(user, **kw):
        return set(TaskFilter(**kw).apply(qs, user, now=now).values_list("pk", flat=True))

    assert pks(org.east_mgr, assignee="team", status="overdue") == {late.pk}
    assert pks(org.east_mgr, assignee="team", status="today") == {late.pk, today.pk}
    assert pks(org.east_mgr, assignee="team", status="week") == {late.pk, today.pk, week.pk}
    assert pks(org.east_mgr, assignee="team", status="open") == {
        late.pk, today.pk, week.pk, later.pk,
    }  # fmt: skip
    assert pks(org.east_mgr, assignee="team", status="done") == {done.pk}
    assert pks(org.east_mgr, assignee="team", person=org.sub_rep.pk, status="all") == {done.pk}
    assert pks(org.east_mgr, assignee="me", status="all") == set()


# --- reminders --------------------------------------------------------------------------


def test_reminders_notify_each_assignee_once(org):
    """Run twice (or by two workers), the reminder job notifies every assignee exactly
    once and marks the task; a task not yet due for its reminder, a done one and one
    without a reminder are left alone."""
    clock = at(0, 9, 30)
    due = task_for(org.east_rep, assignees=[org.east_rep2], due_at=at(0, 10), remind_at=at(0, 9))
    future = task_for(org.east_rep, due_at=at(0, 11), remind_at=at(0, 10, 45))
    done = task_for(org.east_rep, due_at=at(0, 10), remind_at=at(0, 9))
    services.complete_task(done, actor=org.east_rep)
    task_for(org.east_rep, due_at=at(0, 10))

    assert services.send_due_reminders(now=clock) == 1
    assert services.send_due_reminders(now=clock) == 0
    rows = list(Notification.objects.values_list("user_id", "url", "kind"))
    assert sorted(rows) == sorted(
        [
            (org.east_rep.pk, f"/tasks/{due.pk}/", "task_reminder"),
            (org.east_rep2.pk, f"/tasks/{due.pk}/", "task_reminder"),
        ]
    )
    assert Task.objects.get(pk=due.pk).reminded_at == clock
    assert Task.objects.get(pk=future.pk).reminded_at is None


def test_reminder_run_in_parallel_notifies_once(org):
    """A second worker that read the same due task before the first marked it adds no
    second notification: the notification key decides."""
    clock = at(0, 9, 30)
    task = task_for(org.east_rep, due_at=at(0, 10), remind_at=at(0, 9))
    services.send_due_reminders(now=clock)
    Task.objects.filter(pk=task.pk).update(reminded_at=None)  # as the other worker saw it
    services.send_due_reminders(now=clock + timedelta(minutes=1))
    assert Notification.objects.filter(user=org.east_rep).count() == 1


def test_reminder_text_follows_the_users_language(org):
    """Each assignee reads the reminder in their own language."""
    org.east_rep.language = "en"
    org.east_rep.save()
    task_for(org.east_rep, title="Call Li", due_at=at(0, 10), remind_at=at(0, 9))
    services.send_due_reminders(now=at(0, 9, 1))
    text = Notification.objects.get(user=org.east_rep).text
    assert text == f"Reminder: Call Li (due {timezone.localdate():%Y-%m-%d} 10:00)"


def test_remind_command(org):
    """``loudou tasks remind --at`` sends the reminders due at that moment."""
    from io import StringIO

    from django.core.management import call_command

    task_for(org.east_rep, due_at=at(0, 10), remind_at=at(0, 9))
    out = StringIO()
    call_command("tasks", "remind", "--at", at(0, 9, 30).isoformat(), stdout=out)
    assert out.getvalue().strip() == "reminded 1 tasks"
    assert Notification.objects.count() == 1


def test_reminder_job_is_scheduled_every_minute():
    """The reminder job is registered with the scheduler at one minute."""
    from loudou.core import schedule

    job = {j.name: j for j in schedule.jobs()}["tasks.send_reminders"]
    assert job.interval == timedelta(minutes=1)
    assert job.load_task().name == "send_reminders"


# --- hand-over --------------------------------------------------------------------------


def test_split_hand_over_gives_each_task_to_its_receiver(org):
    """In a hand-over split among several reps, each open task the leaver owned is
    assigned to the rep who received it, and a task they only helped with goes back to
    its owner alone."""
    first = task_for(org.east_rep2)
    second = task_for(org.east_rep2)
    helped = task_for(org.east_mgr, owner=org.east_rep, assignees=[org.east_rep2])
    record = hand_over(org.east_rep2, actor=org.east_mgr, receivers=[org.east_rep, org.sub_rep])
    given = record.moved_to("tasks.task")
    assert {given[first.pk], given[second.pk]} == {org.east_rep.pk, org.sub_rep.pk}
    for task in (first, second):
        task.refresh_from_db()
        assert task.owner_id == given[task.pk]
        assert assignee_ids(task) == {given[task.pk]}
    assert assignee_ids(helped) == {org.east_rep.pk}


def test_hand_over_gives_open_assignments_to_the_receiver(org):
    """When a rep hands over, their open tasks (also ones they are only assigned to) go
    to the receiver; done ones keep the history of who did them."""
    own = task_for(org.east_rep2)
    shared = task_for(org.east_mgr, owner=org.east_rep, assignees=[org.east_rep2])
    finished = task_for(org.east_mgr, owner=org.east_rep, assignees=[org.east_rep2])
    services.complete_task(finished, actor=org.east_rep2)
    hand_over(org.east_rep2, actor=org.east_mgr, to=org.sub_rep)
    own.refresh_from_db()
    assert own.owner == org.sub_rep and assignee_ids(own) == {org.sub_rep.pk}
    assert assignee_ids(shared) == {org.east_rep.pk, org.sub_rep.pk}
    assert assignee_ids(finished) == {org.east_rep.pk, org.east_rep2.pk}
