"""Writes to tasks. Pages, the API, follow-up rules, visits and the demo call these.

Contract:

- ``actor=None`` means the system (a follow-up rule, the scheduler): no visibility or
  permission checks. A person may link only records they can see (the checks of
  activities.services) and assign only people they may make owners (their team).
- The owner is always one of the assignees.
- A ``key`` makes creation idempotent: a second ``create_task`` with the same key returns
  the task the first one created (also when two workers race: the unique constraint on
  ``key`` decides, the loser reads the winner's row).
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from loudou.activities.services import _resolve_links

from .models import Source, Task

LINK_NAMES = ("lead", "account", "contact", "opportunity")


def create_task(
    actor, *, title: str, owner=None, assignees=(), due_at=None, kind="other", notes="",
    lead=None, account=None, contact=None, opportunity=None, source=Source.MANUAL,
    breach=None, origin_activity=None, key: str = "", remind_at=None, all_day=False,
) -> Task:  # fmt: skip
    """Create a task for ``owner`` (default: the actor) and ``assignees``; returns it,
    or the existing task when ``key`` was used before."""
    if key:
        existing = Task.objects.filter(key=key).first()
        if existing is not None:
            return existing
    owner = owner or actor
    links = {"lead": lead, "account": account, "contact": contact, "opportunity": opportunity}
    if actor is not None and any(links.values()):
        links = _resolve_links(actor, links)
    elif contact is not None or opportunity is not None:
        links["account"] = (contact or opportunity).account
    task = Task(
        owner=owner, created_by=actor, title=title.strip(), kind=kind, notes=notes,
        due_at=due_at or timezone.now(), all_day=all_day, remind_at=remind_at,
        source=source, breach=breach, origin_activity=origin_activity, key=key, **links,
    )  # fmt: skip
    task.full_clean(exclude=["owner", "created_by", *LINK_NAMES, "breach", "origin_activity"])
    try:
        with transaction.atomic():
            task.save()
            task.assignees.set({owner.pk, *(getattr(a, "pk", a) for a in assignees)})
    except IntegrityError:
        if key:
            return Task.objects.get(key=key)
        raise
    return task


@transaction.atomic
def complete_task(task: Task, *, actor, at=None) -> Task:
    """Mark ``task`` done (idempotent: a done task stays as it was)."""
    locked = Task.objects.select_for_update().get(pk=task.pk)
    if locked.done_at is None:
        locked.done_at = at or timezone.now()
        locked.done_by = actor
        locked.version += 1
        locked.save(update_fields=["done_at", "done_by", "version", "updated_at"])
    return locked
