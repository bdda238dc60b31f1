"""Writes to tasks. Pages, the API, follow-up rules, visits and the demo call these.

Contract:

- ``actor=None`` means the system (a follow-up rule, the scheduler, visits): no
  visibility or permission checks. A person may link only records they can see (the
  checks of activities.services), make owner only someone of :func:`assignable_owners`
  (themself; a manager their subtree; an admin anyone) and add as assignees only active
  colleagues they may see (:func:`assignable_people`: a rep their own team, so a task can
  be shared by several people).
- The owner is always one of the assignees.
- A ``key`` makes creation idempotent: a second ``create_task`` with the same key returns
  the task the first one created (also when two workers race: the unique constraint on
  ``key`` decides, the loser reads the winner's row).
- Changing, completing, reopening or deleting a task is for its owner, an assignee, a
  manager of the owner's team subtree or an admin (:func:`can_change`); others get
  ``NotPermitted``. The row is locked (``select_for_update``) while it is checked and
  written, and a stale ``version`` is refused with a ``Conflict``.
- A refused action raises before anything is written.
- Reminders (:func:`send_due_reminders`) notify every assignee once per reminder time
  (notification key) and mark the task with a conditional UPDATE, so two workers running
  the job at once notify once.
"""

from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from loudou.activities.services import _resolve_links
from loudou.core.exceptions import NotPermitted, ValidationFailed
from loudou.core.services import check_version
from loudou.org.models import User, assignable_owners

from .models import CalendarFeed, Source, Task, new_feed_token

LINK_NAMES = ("lead", "account", "contact", "opportunity")
FIELDS = {"title", "kind", "notes", "due_at", "all_day", "remind_at"}
REMINDER_BATCH = 500


def assignable_people(actor):
    """Who ``actor`` may add as assignees: active colleagues they may see (a rep their own
    team, a manager their subtree, an admin everyone)."""
    return User.objects.visible_to(actor).filter(is_active=True, left_on__isnull=True)


def end_of_day(moment: datetime) -> datetime:
    """The last second of ``moment``'s local day: when an all-day task falls due."""
    day = timezone.localdate(moment)
    return timezone.make_aware(datetime.combine(day, time(23, 59, 59)))


def _ids(people) -> set[int]:
    return {getattr(p, "pk", p) for p in people}


def _check_owner(actor, owner) -> None:
    """Refuse an owner the actor may not choose."""
    if actor is None or owner.pk == actor.pk:
        return
    if not assignable_owners(actor).filter(pk=owner.pk).exists():
        raise ValidationFailed(
            _("You may give tasks only to yourself or your team."), field="owner"
        )


def _check_assignees(actor, owner, added: set[int]) -> None:
    """Refuse new assignees the actor may not choose (the owner is always one)."""
    if actor is None:
        return
    added = added - {owner.pk, actor.pk}
    if added and assignable_people(actor).filter(pk__in=added).count() != len(added):
        raise ValidationFailed(
            _("Choose assignees among your active colleagues."), field="assignees"
        )


def _aware(moment):
    """Scripts may send a time without a zone: it is the company's local time."""
    if moment is not None and timezone.is_naive(moment):
        return timezone.make_aware(moment)
    return moment


def _validate(task: Task) -> None:
    if task.due_at is None:
        raise ValidationFailed(_("Say when it is due."), field="due_at", code="required")
    task.due_at, task.remind_at = _aware(task.due_at), _aware(task.remind_at)
    if task.all_day:
        task.due_at = end_of_day(task.due_at)
    task.title = (task.title or "").strip()
    exclude = ["owner", "created_by", *LINK_NAMES, "breach", "origin_activity", "done_by"]
    # The unique key is left to the database (see create_task): full_clean's own check
    # would refuse the loser of a race instead of handing it the winner's task.
    task.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)


def _existing(key: str) -> Task | None:
    return Task.objects.filter(key=key).first()


def create_task(
    actor, *, title: str, owner=None, assignees=(), due_at=None, kind="other", notes="",
    lead=None, account=None, contact=None, opportunity=None, source=Source.MANUAL,
    breach=None, origin_activity=None, key: str = "", remind_at=None, all_day=False,
) -> Task:  # fmt: skip
    """Create a task for ``owner`` (default: the actor) and ``assignees``; returns it,
    or the existing task when ``key`` was used before."""
    if key:
        existing = _existing(key)
        if existing is not None:
            return existing
    owner = owner or actor
    if owner is None:
        raise ValidationFailed(_("A task needs someone to do it."), field="owner")
    people = _ids(assignees)
    _check_owner(actor, owner)
    _check_assignees(actor, owner, people)
    links = {"lead": lead, "account": account, "contact": contact, "opportunity": opportunity}
    if actor is not None and any(links.values()):
        links = _resolve_links(actor, links)
    elif contact is not None or opportunity is not None:
        links["account"] = (contact or opportunity).account
    task = Task(
        owner=owner, created_by=actor, title=title, kind=kind, notes=notes,
        due_at=due_at or timezone.now(), all_day=all_day, remind_at=remind_at,
        source=source, breach=breach, origin_activity=origin_activity, key=key, **links,
    )  # fmt: skip
    _validate(task)
    try:
        with transaction.atomic():
            task.save()
            task.assignees.set({owner.pk, *people})
    except IntegrityError:
        if key:
            return Task.objects.get(key=key)
        raise
    return task


# The records a system task row may link to (Task columns), checked by
# create_system_tasks; the opportunity and the contact first: they give the account (the
# contact's when both are given).
SYSTEM_TASK_LINKS = ("opportunity_id", "contact_id", "lead_id", "account_id", "breach_id",
                     "origin_activity_id", "owner_id")  # fmt: skip


def _still_there(column: str, ids) -> dict:
    """{id: account_id (contact, opportunity) or True} of the records of the Task column
    ``column`` among ``ids`` that still exist. On PostgreSQL they are also locked ``FOR
    KEY SHARE`` until the transaction ends, so that none can be deleted between this
    check and the deferred foreign-key check at commit (SQLite serialises writers)."""
    model = Task._meta.get_field(column.removesuffix("_id")).related_model
    with_account = column in ("contact_id", "opportunity_id")
    qs = model.objects.filter(pk__in=ids).order_by()
    qs = qs.values_list("pk", "account_id") if with_account else qs.values_list("pk", "pk")
    if connection.vendor == "postgresql":
        sql, params = qs.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"{sql} FOR KEY SHARE", params)
            rows = cursor.fetchall()
    else:
        rows = list(qs)
    return {pk: (value if with_account else True) for pk, value in rows}


def create_system_tasks(rows: list[dict], *, batch_size: int = 1000) -> int:
    """Many system tasks at once (``create_task(None, ...)`` for each row, as one INSERT
    per batch): for the follow-up rule sweep. A row holds ``title``, ``owner_id``,
    ``key`` (required), ``due_at`` and optionally ``kind``, ``notes``, ``source``,
    ``lead_id``, ``account_id``, ``contact_id``, ``opportunity_id``, ``breach_id``,
    ``origin_activity_id``. The same rules as create_task: a key used before (or twice
    in ``rows``) creates nothing; the account is the contact's or the opportunity's
    when one is given; every field is validated; the owner is the one assignee. Two
    writers at once create each key once (the unique constraint decides). A row whose
    owner or linked record no longer exists (deleted after the caller read it) is
    skipped, the others are created. Returns how many tasks were created."""
    made = 0
    for start in range(0, len(rows), batch_size):
        batch: dict[str, dict] = {}
        for row in rows[start : start + batch_size]:
            if row["key"]:
                batch.setdefault(row["key"], row)
        known = set(Task.objects.filter(key__in=list(batch)).values_list("key", flat=True))
        fresh = [dict(row) for key, row in batch.items() if key not in known]
        for column in SYSTEM_TASK_LINKS:
            ids = {row[column] for row in fresh if row.get(column)}
            if not ids:
                continue
            present = _still_there(column, ids)
            fresh = [row for row in fresh if not row.get(column) or row[column] in present]
            if column in ("contact_id", "opportunity_id"):
                for row in fresh:
                    if row.get(column):
                        row["account_id"] = present[row[column]]
        if not fresh:
            continue
        tasks = []
        for row in fresh:
            task = Task(**{"source": Source.MANUAL, "kind": "other", **row})
            task.due_at = task.due_at or timezone.now()
            _validate(task)
            tasks.append(task)
        Task.objects.bulk_create(tasks, ignore_conflicts=True)
        created = Task.objects.filter(key__in=[t.key for t in tasks]).values_list("pk", "owner_id")
        through = Task.assignees.through
        through.objects.bulk_create(
            [through(task_id=pk, user_id=owner_id) for pk, owner_id in created],
            ignore_conflicts=True,
        )
        made += len(tasks)
    return made


def can_change(task: Task, actor) -> bool:
    """Whether ``actor`` may change, complete, reopen or delete ``task``: its owner, an
    assignee, a manager of the owner's team subtree or an admin (None: the system)."""
    if actor is None:
        return True
    if not actor.is_authenticated or not actor.is_active:
        return False
    if actor.sees_everything or task.owner_id == actor.pk:
        return True
    if task.assignees.filter(pk=actor.pk).exists():
        return True
    return (
        task.owner_id is not None
        and bool(actor.managed_team_path)
        and assignable_owners(actor).filter(pk=task.owner_id).exists()
    )


def _lock(task: Task, actor, version) -> Task:
    locked = Task.objects.select_for_update().get(pk=task.pk)
    if not can_change(locked, actor):
        raise NotPermitted(
            _("Only its owner, an assignee, the owner's manager or an admin may change a task.")
        )
    check_version(locked, version)
    return locked


@transaction.atomic
def update_task(task: Task, *, actor, version=None, owner=None, assignees=None, **data) -> Task:
    """Change a task's fields, links (``lead``, ``account``, ``contact``, ``opportunity``;
    the same checks as creating), ``owner`` and ``assignees`` (the whole new list; people
    already assigned may stay even if the actor could not add them). A new reminder time
    is sent again."""
    locked = _lock(task, actor, version)
    given = {name: data.pop(name) for name in list(data) if name in LINK_NAMES}
    unknown = set(data) - FIELDS
    if unknown:
        raise ValidationFailed(_("Unknown field."), field=sorted(unknown)[0])
    current = set(locked.assignees.values_list("pk", flat=True))
    new_owner = owner or locked.owner
    people = current if assignees is None else _ids(assignees)
    if owner is not None and owner.pk != locked.owner_id:
        _check_owner(actor, owner)
    _check_assignees(actor, new_owner, people - current)
    if given:
        links = {name: getattr(locked, name) for name in LINK_NAMES}
        if given.get("opportunity") is not None or given.get("contact") is not None:
            links["account"] = None  # a new contact or opportunity brings its own account
        links.update(given)
        if actor is not None and any(links.values()):
            links = _resolve_links(actor, links)
        for name, obj in links.items():
            setattr(locked, name, obj)
    old_remind = locked.remind_at
    for name, value in data.items():
        setattr(locked, name, value)
    _validate(locked)
    if locked.remind_at != old_remind:
        locked.reminded_at = None
    locked.owner = new_owner
    locked.version += 1
    locked.save()
    wanted = people | {new_owner.pk}
    if wanted != current:
        locked.assignees.set(wanted)
    return locked


@transaction.atomic
def complete_task(task: Task, *, actor, at=None, version=None) -> Task:
    """Mark ``task`` done (idempotent: a done task stays as it was)."""
    locked = _lock(task, actor, version)
    if locked.done_at is None:
        locked.done_at = at or timezone.now()
        locked.done_by = actor
        locked.version += 1
        locked.save(update_fields=["done_at", "done_by", "version", "updated_at"])
    return locked


@transaction.atomic
def reopen_task(task: Task, *, actor, version=None) -> Task:
    """Mark a done ``task`` open again (idempotent)."""
    locked = _lock(task, actor, version)
    if locked.done_at is not None:
        locked.done_at = None
        locked.done_by = None
        locked.version += 1
        locked.save(update_fields=["done_at", "done_by", "version", "updated_at"])
    return locked


@transaction.atomic
def delete_task(task: Task, *, actor, version=None) -> None:
    """Delete a task (owner, assignee, the owner's manager or an admin)."""
    locked = _lock(task, actor, version)
    locked.delete()


# --- reminders ---------------------------------------------------------------------------


def reminder_key(task_id: int, remind_at: datetime) -> str:
    """The notification key of one reminder: a second run for the same reminder time
    notifies nobody again; a new reminder time is a new key."""
    return f"task-remind:{task_id}:{int(remind_at.timestamp())}"


def _reminder_text(title, due_at, all_day, language) -> str:
    with translation.override(language or settings.LANGUAGE_CODE):
        local = timezone.localtime(due_at)
        when = local.strftime("%Y-%m-%d") if all_day else local.strftime("%Y-%m-%d %H:%M")
        return _("Reminder: %(title)s (due %(when)s)") % {"title": title, "when": when}


def send_due_reminders(now=None) -> int:
    """Notify the assignees of every open task whose reminder time has come and that was
    not reminded yet; returns how many tasks were reminded. Safe to run twice or in two
    workers at once: the notifications are keyed per reminder, and a task is marked with
    ``UPDATE ... WHERE reminded_at IS NULL``."""
    from loudou.notifications.services import notify_many

    now = now or timezone.now()
    reminded = 0
    while True:
        due = list(
            Task.objects.filter(remind_at__lte=now, reminded_at__isnull=True, done_at__isnull=True)
            .order_by("remind_at", "pk")
            .values("pk", "title", "due_at", "all_day", "remind_at")[:REMINDER_BATCH]
        )
        if not due:
            return reminded
        by_id = {row["pk"]: row for row in due}
        pairs = list(
            Task.assignees.through.objects.filter(task_id__in=by_id)
            .filter(user__is_active=True)
            .values_list("task_id", "user_id", "user__language")
        )
        items = []
        for task_id, user_id, language in pairs:
            row = by_id[task_id]
            items.append(
                {
                    "user": user_id,
                    "text": _reminder_text(row["title"], row["due_at"], row["all_day"], language),
                    "url": Task(pk=task_id).get_absolute_url(),
                    "kind": "task_reminder",
                    "key": reminder_key(task_id, row["remind_at"]),
                }
            )
        with transaction.atomic():
            notify_many(items)
            reminded += Task.objects.filter(
                pk__in=list(by_id), reminded_at__isnull=True, remind_at__lte=now
            ).update(reminded_at=now)
        if len(due) < REMINDER_BATCH:
            return reminded


# --- hand-over ---------------------------------------------------------------------------


def hand_over_assignments(record, **context) -> int:
    """Listener of ``handed_over``: the leaving user's open tasks (as an assignee) go to
    whoever received them; returns how many tasks changed. With one receiver that is
    the receiver; in a split hand-over, a task the leaver owned goes to the person the
    hand-over gave it to (``record.moved_to``), a task they only helped with to its
    owner. A task nobody receives (into a pool) keeps the leaver."""
    through = Task.assignees.through
    task_ids = list(
        through.objects.filter(user_id=record.from_user_id, task__done_at__isnull=True)
        .values_list("task_id", flat=True)
    )  # fmt: skip
    if not task_ids:
        return 0
    moved = {} if record.to_user_id else record.moved_to("tasks.task")
    owners = dict(Task.objects.filter(pk__in=task_ids).values_list("pk", "owner_id"))
    receivers = {}
    for task_id in task_ids:
        receiver = record.to_user_id or moved.get(task_id) or owners[task_id]
        if receiver and receiver != record.from_user_id:
            receivers[task_id] = receiver
    if not receivers:
        return 0
    through.objects.filter(user_id=record.from_user_id, task_id__in=list(receivers)).delete()
    through.objects.bulk_create(
        [through(task_id=t, user_id=u) for t, u in receivers.items()], ignore_conflicts=True
    )
    return len(receivers)


# --- calendar feed -----------------------------------------------------------------------


def calendar_feed(user) -> CalendarFeed:
    """The user's calendar feed, created on first use."""
    feed, _created = CalendarFeed.objects.get_or_create(user=user)
    return feed


@transaction.atomic
def regenerate_feed(user) -> CalendarFeed:
    """Give the user a new secret feed address; the old one answers 404 from now on."""
    feed = CalendarFeed.objects.select_for_update().filter(user=user).first()
    if feed is None:
        return CalendarFeed.objects.create(user=user)
    feed.token = new_feed_token()
    feed.created_at = timezone.now()
    feed.save(update_fields=["token", "created_at"])
    return feed


def remind_before(due_at: datetime, all_day: bool, minutes: int | None) -> datetime | None:
    """The reminder time ``minutes`` before a task is due (None: no reminder). An all-day
    task counts from 09:00 on its day, not from midnight."""
    if minutes is None:
        return None
    start = due_at
    if all_day:
        start = timezone.make_aware(datetime.combine(timezone.localdate(due_at), time(9, 0)))
    return start - timedelta(minutes=minutes)
