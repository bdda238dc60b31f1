"""Writes to activities. Pages, the API and the demo all call these.

Contract:

- An activity is linked to at least one of lead, account, contact, opportunity, each of
  which the actor must be able to see; a contact or an opportunity brings its account,
  and links that name different accounts are refused.
- The purpose, unless given, follows from the links (:func:`default_purpose`).
- Only the owner, a manager of the owner's team subtree or an admin may change or
  delete an activity; a stale ``version`` is refused with a conflict. The row is locked
  (``select_for_update``) while it is checked and written.
- A refused action raises before anything is written.
"""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.core.exceptions import NotPermitted, ValidationFailed
from loudou.core.hooks import emit
from loudou.core.models import sees
from loudou.core.services import check_version
from loudou.customers.models import Account, Contact
from loudou.leads.models import Lead
from loudou.org.models import assignable_owners
from loudou.pipeline.choices import Status
from loudou.pipeline.models import Opportunity

from .choices import OUTCOME_OPTIONAL, Kind, Purpose
from .models import Activity

FIELDS = {
    "kind", "purpose", "outcome", "occurred_at", "duration_minutes", "gave_something",
    "gave_what", "notes",
}  # fmt: skip
LINKS = {"lead": Lead, "account": Account, "contact": Contact, "opportunity": Opportunity}
# Clocks differ a little between a phone and the server; more than this ahead is a typo.
FUTURE_TOLERANCE = timedelta(minutes=10)


def default_purpose(*, lead=None, account=None, opportunity=None) -> str:
    """Follow-up for an open opportunity; prospecting for a lead or an account that has
    never been won; service otherwise (a customer who bought, a closed deal)."""
    if opportunity is not None and opportunity.status == Status.OPEN:
        return Purpose.FOLLOW_UP
    if lead is not None and opportunity is None:
        return Purpose.PROSPECTING
    if account is not None and not account.opportunities.filter(status=Status.WON).exists():
        return Purpose.PROSPECTING
    return Purpose.SERVICE


def _visible(model, obj, actor) -> bool:
    return isinstance(obj, model) and sees(actor, obj)


def _resolve_links(actor, links: dict) -> dict:
    """Check the links and fill the account from a contact or opportunity."""
    for name, obj in links.items():
        if obj is None:
            continue
        model = LINKS[name]
        if not _visible(model, obj, actor):
            raise ValidationFailed(
                _("Choose a record you can see."), field=name, code="unknown_subject"
            )
    account = links.get("account")
    for name in ("contact", "opportunity"):
        linked = links.get(name)
        if linked is None:
            continue
        if account is not None and account.pk != linked.account_id:
            raise ValidationFailed(
                _("The %(what)s belongs to another account.")
                % {"what": LINKS[name]._meta.verbose_name},
                field=name,
                code="other_account",
            )
        account = linked.account
    links["account"] = account
    if not any(links.values()):
        raise ValidationFailed(
            _("Link the activity to a lead, account, contact or opportunity."),
            field="account",
            code="no_subject",
        )
    return links


def _assign(activity: Activity, data: dict) -> None:
    unknown = set(data) - FIELDS
    if unknown:
        raise ValidationError({field: _("Unknown field.") for field in sorted(unknown)})
    for field, value in data.items():
        setattr(activity, field, value.strip() if isinstance(value, str) else value)
    if activity.gave_what:
        activity.gave_something = True
    if not activity.gave_something:
        activity.gave_what = ""


def _validate(activity: Activity) -> None:
    if activity.duration_minutes is not None and activity.duration_minutes < 0:
        raise ValidationFailed(
            _("A duration cannot be negative."), field="duration_minutes", code="invalid"
        )
    if not activity.outcome and activity.kind not in OUTCOME_OPTIONAL:
        raise ValidationFailed(_("Say how it went."), field="outcome", code="required")
    if activity.occurred_at is None:
        activity.occurred_at = timezone.now()
    if activity.occurred_at > timezone.now() + FUTURE_TOLERANCE:
        raise ValidationFailed(
            _("An activity is something done: its time cannot be in the future."),
            field="occurred_at",
            code="future",
        )
    exclude = ["owner", "created_by", "lead", "account", "contact", "opportunity"]
    activity.full_clean(exclude=exclude, validate_unique=False)


@transaction.atomic
def log_activity(
    actor, *, lead=None, account=None, contact=None, opportunity=None, owner=None,
    shared_with=(), **data,
) -> Activity:  # fmt: skip
    """Record an activity ``actor`` did (or, for a manager, one a rep of their team
    did: ``owner``). Returns the saved activity."""
    owner = owner or actor
    if owner != actor and not assignable_owners(actor).filter(pk=owner.pk).exists():
        raise ValidationFailed(
            _("You may log activities only for yourself or your team."), field="owner"
        )
    links = _resolve_links(
        actor, {"lead": lead, "account": account, "contact": contact, "opportunity": opportunity}
    )
    data.setdefault("kind", Kind.CALL)
    if not data.get("purpose"):
        data["purpose"] = default_purpose(
            lead=links["lead"], account=links["account"], opportunity=links["opportunity"]
        )
    activity = Activity(owner=owner, created_by=actor, **links)
    _assign(activity, data)
    _validate(activity)
    activity.save()
    if shared_with:
        activity.shared_with.set(shared_with)
    emit("activity_logged", activity, actor=actor)
    return activity


def can_change(activity: Activity, actor) -> bool:
    """Whether ``actor`` may edit or delete ``activity``: its owner, a manager of the
    owner's team subtree, or an admin."""
    if actor is None or not actor.is_authenticated or not actor.is_active:
        return False
    if actor.sees_everything or activity.owner_id == actor.pk:
        return True
    return (
        activity.owner_id is not None
        and bool(actor.managed_team_path)
        and assignable_owners(actor).filter(pk=activity.owner_id).exists()
    )


def _lock(activity: Activity, actor, version) -> Activity:
    locked = Activity.objects.select_for_update().get(pk=activity.pk)
    if not can_change(locked, actor):
        raise NotPermitted(
            _("Only the person who did it, their manager or an admin may change an activity.")
        )
    check_version(locked, version)
    return locked


@transaction.atomic
def update_activity(activity: Activity, *, actor, version=None, **data) -> Activity:
    """Change an activity's fields and, when given, its links (the same checks as
    logging). The owner and creator stay."""
    locked = _lock(activity, actor, version)
    linked_before = _linked_ids(locked)
    given = {name: data.pop(name) for name in list(data) if name in LINKS}
    if given:
        current = {name: getattr(locked, name) for name in LINKS}
        if given.get("opportunity") is not None or given.get("contact") is not None:
            # A new contact or opportunity brings its own account.
            current["account"] = None
        links = _resolve_links(actor, {**current, **given})
        for name, obj in links.items():
            setattr(locked, name, obj)
    if "purpose" in data and not data["purpose"]:
        data["purpose"] = default_purpose(
            lead=locked.lead, account=locked.account, opportunity=locked.opportunity
        )
    _assign(locked, data)
    _validate(locked)
    locked.version += 1
    locked.save()
    emit("activity_changed", locked, actor=actor, linked_before=linked_before)
    return locked


def _linked_ids(activity: Activity) -> dict:
    """The ids of the records ``activity`` is linked to, by link name (None: no link)."""
    return {name: getattr(activity, f"{name}_id") for name in LINKS}


@transaction.atomic
def delete_activity(activity: Activity, *, actor, version=None) -> None:
    """Delete an activity (the owner, their manager or an admin); listeners of
    ``activity_deleted`` get the records it was linked to."""
    locked = _lock(activity, actor, version)
    linked = _linked_ids(locked)
    locked.delete()
    emit("activity_deleted", locked, actor=actor, linked_before=linked)
