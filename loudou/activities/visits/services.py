"""Writes to visits. Pages, the API and the demo all call these.

Contract:

- A visit is planned for an account the actor can see (optionally one of its contacts
  and opportunities, refused when they belong to another account), for the actor or — a
  manager, an admin — for someone of :func:`assignable_owners` who can see the account.
  Planning creates a Task of kind visit for the owner, due at the planned time.
- Changing, rescheduling, recording and cancelling are for the owner, a manager of the
  owner's team subtree or an admin; only a planned visit can be changed. Checking in is
  for the owner alone, once, with coordinates in range.
- Recording logs an Activity of kind visit through ``log_activity`` (so its event and its
  checks are the activity's) and completes the task; cancelling deletes the open task,
  so the calendar and the Today list no longer show it.
- The visit row is locked (``select_for_update``) while it is checked and written, and a
  stale ``version`` is refused with a ``Conflict``. A refused action raises before
  anything is written (every function is one transaction).
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.core.models import sees
from loudou.core.services import check_version
from loudou.org.models import assignable_owners
from loudou.tasks import services as task_services

from .. import services as activity_services
from ..choices import VISIT_OUTCOMES, Kind, Outcome, Purpose, VisitStatus
from ..models import MAX_DURATION_MINUTES, Visit
from .geo import coordinate, haversine_m

FUTURE_TOLERANCE = activity_services.FUTURE_TOLERANCE
# A phone that reports a worse accuracy than this did not really locate itself.
MAX_ACCURACY_M = 100_000
EDITABLE = {"topic", "purpose", "contact", "opportunity", "planned_for"}


def can_change(visit: Visit, actor) -> bool:
    """Whether ``actor`` may change, record or cancel ``visit``: its owner, a manager of
    the owner's team subtree, or an admin (the same people as for an activity)."""
    return activity_services.can_change(visit, actor)


def _links(actor, account, contact, opportunity) -> dict:
    """The visit's account, contact and opportunity, checked like an activity's links;
    a contact or opportunity brings its account."""
    links = activity_services._resolve_links(
        actor, {"lead": None, "account": account, "contact": contact, "opportunity": opportunity}
    )
    links.pop("lead")
    if links["account"] is None:
        raise ValidationFailed(_("Choose the account to visit."), field="account")
    return links


def _check_owner(actor, owner, account) -> None:
    if owner.pk != actor.pk and not assignable_owners(actor).filter(pk=owner.pk).exists():
        raise ValidationFailed(
            _("You may plan visits only for yourself or your team."), field="owner"
        )
    if not sees(owner, account):
        raise ValidationFailed(
            _("%(name)s cannot see this account.") % {"name": owner}, field="owner"
        )


def _check_time(planned_for) -> None:
    if planned_for is None:
        raise ValidationFailed(_("Say when you will go."), field="planned_for", code="required")
    if timezone.is_naive(planned_for):
        raise ValidationFailed(_("Give the time with its zone."), field="planned_for")


def _clean(visit: Visit) -> None:
    """The model's own field checks (lengths, choices), as a refusal on the field."""
    try:
        visit.full_clean(exclude=["owner", "created_by", "account", "contact", "opportunity"])
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ValidationFailed(" ".join(messages), field=field) from exc


def _task_title(account) -> str:
    return _("Visit %(account)s") % {"account": account}


@transaction.atomic
def plan_visit(
    actor, *, account=None, planned_for=None, contact=None, opportunity=None, purpose="",
    topic="", owner=None,
) -> Visit:  # fmt: skip
    """Plan a visit of ``owner`` (default: the actor) to ``account`` at ``planned_for``
    and create its task. The purpose, unless given, follows from the links like an
    activity's. Returns the saved visit."""
    owner = owner or actor
    links = _links(actor, account, contact, opportunity)
    _check_owner(actor, owner, links["account"])
    _check_time(planned_for)
    if purpose and purpose not in Purpose.values:
        raise ValidationFailed(_("Choose a purpose from the list."), field="purpose")
    visit = Visit(
        owner=owner, created_by=actor, planned_for=planned_for, topic=(topic or "").strip(),
        purpose=purpose or activity_services.default_purpose(
            account=links["account"], opportunity=links["opportunity"]
        ),
        **links,
    )  # fmt: skip
    _clean(visit)
    visit.save()
    visit.task = task_services.create_task(
        actor, title=_task_title(visit.account), owner=owner, due_at=planned_for,
        kind=Kind.VISIT, notes=visit.topic, key=f"visit:{visit.pk}", **links,
    )  # fmt: skip
    visit.save(update_fields=["task"])
    return visit


def _lock(visit: Visit, actor, version, *, planned=True) -> Visit:
    locked = Visit.objects.select_for_update().select_related("account").get(pk=visit.pk)
    if not can_change(locked, actor):
        raise NotPermitted(
            _("Only the rep who makes the visit, their manager or an admin may change it.")
        )
    check_version(locked, version)
    if planned and locked.status != VisitStatus.PLANNED:
        raise Conflict(
            _("This visit is already %(status)s.") % {"status": locked.get_status_display()},
            code="not_planned",
        )
    return locked


def _move_task(visit: Visit, planned_for) -> None:
    """Move the visit's open task with it (its reminder keeps its distance)."""
    task = visit.task
    if task is None or task.done_at is not None:
        return
    data = {"due_at": planned_for}
    if task.remind_at is not None:
        data["remind_at"] = task.remind_at + (planned_for - task.due_at)
    task_services.update_task(task, actor=None, **data)


@transaction.atomic
def update_visit(visit: Visit, *, actor, version=None, **data) -> Visit:
    """Change a planned visit's topic, purpose, contact, opportunity or time (the time
    moves its task, like :func:`reschedule_visit`)."""
    locked = _lock(visit, actor, version)
    unknown = set(data) - EDITABLE
    if unknown:
        raise ValidationFailed(_("Unknown field."), field=sorted(unknown)[0])
    if "contact" in data or "opportunity" in data:
        contact = data.pop("contact", locked.contact)
        opportunity = data.pop("opportunity", locked.opportunity)
        links = _links(actor, locked.account, contact, opportunity)
        if links["account"].pk != locked.account_id:
            raise ValidationFailed(_("A visit stays with its account."), field="account")
        locked.contact, locked.opportunity = links["contact"], links["opportunity"]
    if "purpose" in data:
        purpose = data.pop("purpose") or activity_services.default_purpose(
            account=locked.account, opportunity=locked.opportunity
        )
        if purpose not in Purpose.values:
            raise ValidationFailed(_("Choose a purpose from the list."), field="purpose")
        locked.purpose = purpose
    if "topic" in data:
        locked.topic = (data.pop("topic") or "").strip()
    if "planned_for" in data:
        planned_for = data.pop("planned_for")
        _check_time(planned_for)
        if locked.checked_in_at is not None and planned_for != locked.planned_for:
            raise Conflict(_("You have checked in: the visit is under way."), code="checked_in")
        locked.planned_for = planned_for
        _move_task(locked, planned_for)
    _clean(locked)
    locked.version += 1
    locked.save()
    return locked


def reschedule_visit(visit: Visit, *, actor, planned_for, version=None) -> Visit:
    """Move a planned visit (and its task) to another time."""
    return update_visit(visit, actor=actor, version=version, planned_for=planned_for)


def _accuracy(value) -> int | None:
    if value is None or value == "":
        return None
    number = coordinate(value, MAX_ACCURACY_M)
    if number is None or number < 0:
        raise ValidationFailed(
            _("The accuracy must be a number of metres from 0 to 100,000."), field="accuracy"
        )
    return round(number)


@transaction.atomic
def check_in(
    visit: Visit, *, actor, latitude, longitude, accuracy=None, at=None, version=None
) -> Visit:
    """Record where the owner's phone is as they arrive: the position the browser gave
    (decimal degrees, accuracy in metres), the time, and the distance from the account's
    coordinates when it has them. Once per visit, by the owner only."""
    locked = Visit.objects.select_for_update().select_related("account").get(pk=visit.pk)
    if actor is None or locked.owner_id != actor.pk:
        raise NotPermitted(_("Only the rep who makes the visit checks in."))
    check_version(locked, version)
    if locked.status != VisitStatus.PLANNED:
        raise Conflict(
            _("This visit is already %(status)s.") % {"status": locked.get_status_display()},
            code="not_planned",
        )
    if locked.checked_in_at is not None:
        raise Conflict(
            _("You checked in already, at %(time)s.")
            % {"time": timezone.localtime(locked.checked_in_at).strftime("%H:%M")},
            code="checked_in",
        )
    lat = coordinate(latitude, 90)
    if lat is None:
        raise ValidationFailed(_("The latitude must be a number from -90 to 90."), field="latitude")
    lng = coordinate(longitude, 180)
    if lng is None:
        raise ValidationFailed(
            _("The longitude must be a number from -180 to 180."), field="longitude"
        )
    accuracy_m = _accuracy(accuracy)
    now = timezone.now()
    at = at or now
    if at > now + FUTURE_TOLERANCE:
        raise ValidationFailed(_("A check-in cannot be in the future."), field="at")
    account = locked.account
    locked.latitude, locked.longitude, locked.accuracy_m = lat, lng, accuracy_m
    locked.checked_in_at = at
    locked.distance_m = None
    if account.latitude is not None and account.longitude is not None:
        locked.distance_m = haversine_m(lat, lng, account.latitude, account.longitude)
    locked.version += 1
    locked.save()
    return locked


@transaction.atomic
def record_visit(
    visit: Visit, *, actor, outcome=Outcome.VISITED, notes="", gave_something=False,
    gave_what="", duration_minutes=None, check_out=False, at=None, version=None,
) -> Visit:  # fmt: skip
    """Mark a planned visit done: log its Activity (kind visit, the visit's purpose and
    links, owned by the visit's owner) and complete its task. It happened at the
    check-in, else at the planned time if that has passed, else now. ``check_out``
    (after a check-in) records the moment of leaving; the duration, unless given, is
    then the time between the two. A visit may be done without a check-in."""
    locked = _lock(visit, actor, version)
    if outcome not in VISIT_OUTCOMES:
        raise ValidationFailed(_("Choose how the visit went."), field="outcome")
    now = timezone.now()
    at = at or now
    if at > now + FUTURE_TOLERANCE:
        raise ValidationFailed(_("A visit is recorded once done."), field="at")
    if check_out and locked.checked_in_at is not None:
        if at < locked.checked_in_at:
            raise ValidationFailed(_("You cannot leave before you arrived."), field="at")
        locked.checked_out_at = at
        minutes = locked.visited_minutes
        if duration_minutes is None and minutes is not None and minutes <= MAX_DURATION_MINUTES:
            duration_minutes = minutes
    if locked.checked_in_at is not None:
        occurred_at = locked.checked_in_at
    else:
        occurred_at = min(locked.planned_for, at)
    locked.activity = activity_services.log_activity(
        actor, owner=locked.owner, account=locked.account, contact=locked.contact,
        opportunity=locked.opportunity, kind=Kind.VISIT, purpose=locked.purpose,
        outcome=outcome, occurred_at=occurred_at, duration_minutes=duration_minutes,
        gave_something=bool(gave_something), gave_what=gave_what or "",
        notes=notes or "",
    )  # fmt: skip
    if locked.task_id is not None:
        task_services.complete_task(locked.task, actor=actor, at=at)
    locked.status = VisitStatus.DONE
    locked.done_at = at
    locked.version += 1
    locked.save()
    return locked


@transaction.atomic
def cancel_visit(visit: Visit, *, actor, reason: str, version=None) -> Visit:
    """Cancel a planned visit, saying why; its open task is deleted (a cancelled visit
    leaves the calendar), a done task stays."""
    locked = _lock(visit, actor, version)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Say why the visit is cancelled."), field="reason")
    if len(reason) > 300:
        raise ValidationFailed(_("Keep the reason under 300 characters."), field="reason")
    task = locked.task
    if task is not None and task.done_at is None:
        task_services.delete_task(task, actor=None)
        locked.task = None
    locked.status = VisitStatus.CANCELLED
    locked.cancelled_at = timezone.now()
    locked.cancel_reason = reason
    locked.version += 1
    locked.save()
    return locked
