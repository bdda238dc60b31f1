"""Writes of the PDCA daily plan and the worklist settings. Pages, the API and the demo
call these.

Contract:

- Only the plan's own user writes it (``actor`` must be ``user``); a manager reads a
  team member's plan but cannot change it (:class:`NotPermitted`).
- Every write locks the plan row (``select_for_update``; created on first write with
  version 0), which serialises all writes to one plan. The plan's ``version`` guards
  the Check/Act texts (``update_plan``); each item's own ``version`` guards that item
  (``update_item``, ``delete_item``). A stale version is refused with a
  :class:`Conflict`. A plan not yet stored has version 0.
- At most seven items: the eighth is refused with a field error on ``text`` (the
  database refuses it too: positions 1–7, unique per plan).
- A refused action raises before anything is written.
"""

from types import SimpleNamespace

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.core.services import check_version
from loudou.customers.models import Account
from loudou.leads.models import Lead
from loudou.pipeline.models import Opportunity
from loudou.tasks.models import Task

from .choices import UNFINISHED, Category, ItemStatus
from .models import DEFAULT_PROSPECTING, MAX_ITEMS, DailyPlan, PlanItem, WorklistSettings

PLAN_FIELDS = (
    "problems", "risks", "countermeasures", "not_finished", "not_done_well", "not_done",
)  # fmt: skip
ITEM_FIELDS = ("text", "category", "status", "note")
LINK_MODELS = {"lead": Lead, "account": Account, "opportunity": Opportunity, "task": Task}
MAX_TEXT = 5000
MAX_ITEM_TEXT = PlanItem._meta.get_field("text").max_length
MAX_NOTE = PlanItem._meta.get_field("note").max_length


def _own(user, actor) -> None:
    if actor is None or actor.pk != user.pk:
        raise NotPermitted(_("Only its owner can change a daily plan."), code="read_only")


def _locked_plan(user, day, version) -> DailyPlan:
    """The plan of ``user`` on ``day``, created if missing (version 0), locked, and
    checked against ``version``."""
    plan, _created = DailyPlan.objects.get_or_create(user=user, day=day, defaults={"version": 0})
    plan = DailyPlan.objects.select_for_update().get(pk=plan.pk)
    check_version(plan, version)
    return plan


def _bump(plan: DailyPlan, fields=()) -> None:
    plan.version += 1
    plan.save(update_fields=[*fields, "version", "updated_at"])


def _clean_item_fields(fields: dict, *, partial: bool) -> dict:
    unknown = set(fields) - set(ITEM_FIELDS)
    if unknown:
        raise TypeError(f"unknown plan item fields: {sorted(unknown)}")
    data = {}
    if "text" in fields or not partial:
        text = (fields.get("text") or "").strip()
        if not text:
            raise ValidationFailed(_("Say what you plan to do."), field="text", code="required")
        if len(text) > MAX_ITEM_TEXT:
            raise ValidationFailed(
                _("At most %(n)s characters.") % {"n": MAX_ITEM_TEXT}, field="text"
            )
        data["text"] = text
    if "category" in fields:
        if fields["category"] not in Category.values:
            raise ValidationFailed(_("Choose key, routine or ad hoc."), field="category")
        data["category"] = fields["category"]
    if "status" in fields:
        if fields["status"] not in ItemStatus.values:
            raise ValidationFailed(_("Choose a status from the list."), field="status")
        data["status"] = fields["status"]
    if "note" in fields:
        note = (fields["note"] or "").strip()
        if len(note) > MAX_NOTE:
            raise ValidationFailed(_("At most %(n)s characters.") % {"n": MAX_NOTE}, field="note")
        data["note"] = note
    return data


def _check_links(actor, links: dict) -> dict:
    """Each linked record must be one the actor can see (a task: also one assigned to
    them); a contact or opportunity does not bring anything else along."""
    for name, obj in links.items():
        if obj is None:
            continue
        model = LINK_MODELS[name]
        visible = model.objects.visible_to(actor)
        if name == "task":
            visible = Task.objects.filter(Q(pk__in=visible.values("pk")) | Q(assignees=actor))
        if not isinstance(obj, model) or not visible.filter(pk=obj.pk).exists():
            raise ValidationFailed(_("Choose a record you can see."), field=name)
    return links


@transaction.atomic
def update_plan(user, day, *, actor, version=None, **fields) -> DailyPlan:
    """Write the Check and Act parts of ``user``'s plan of ``day`` (creating the plan)."""
    _own(user, actor)
    unknown = set(fields) - set(PLAN_FIELDS)
    if unknown:
        raise TypeError(f"unknown daily plan fields: {sorted(unknown)}")
    data = {}
    for name, value in fields.items():
        value = (value or "").strip()
        if len(value) > MAX_TEXT:
            raise ValidationFailed(_("At most %(n)s characters.") % {"n": MAX_TEXT}, field=name)
        data[name] = value
    plan = _locked_plan(user, day, version)
    for name, value in data.items():
        setattr(plan, name, value)
    _bump(plan, data.keys())
    return plan


def _free_position(plan: DailyPlan) -> int:
    used = set(plan.items.values_list("position", flat=True))
    for position in range(1, MAX_ITEMS + 1):
        if position not in used:
            return position
    raise ValidationFailed(
        _("A daily plan holds at most %(n)s items: finish or remove one first.") % {"n": MAX_ITEMS},
        field="text",
        code="plan_full",
    )


@transaction.atomic
def add_item(
    user, day, *, actor, text, category=Category.KEY, status=ItemStatus.PLANNED, note="",
    task=None, lead=None, account=None, opportunity=None,
) -> PlanItem:  # fmt: skip
    """Add an item to ``user``'s plan of ``day`` (creating the plan); at most seven."""
    _own(user, actor)
    data = _clean_item_fields(
        {"text": text, "category": category, "status": status, "note": note}, partial=False
    )
    links = _check_links(
        actor, {"task": task, "lead": lead, "account": account, "opportunity": opportunity}
    )
    plan = _locked_plan(user, day, None)
    return PlanItem.objects.create(plan=plan, position=_free_position(plan), **data, **links)


def _locked_item(item: PlanItem, actor, version) -> tuple[PlanItem, DailyPlan]:
    _own(item.plan.user, actor)
    plan = DailyPlan.objects.select_for_update().get(pk=item.plan_id)
    locked = PlanItem.objects.select_for_update().filter(pk=item.pk, plan=plan).first()
    if locked is None:
        raise Conflict(_("This item was removed meanwhile; reload the plan."), code="gone")
    check_version(locked, version)
    return locked, plan


@transaction.atomic
def update_item(item: PlanItem, *, actor, version=None, **fields) -> PlanItem:
    """Change an item's text, category, status (Do) or record."""
    data = _clean_item_fields(fields, partial=True)
    item, plan = _locked_item(item, actor, version)
    for name, value in data.items():
        setattr(item, name, value)
    item.version += 1
    item.save(update_fields=[*data.keys(), "version", "updated_at"])
    return item


@transaction.atomic
def delete_item(item: PlanItem, *, actor, version=None) -> DailyPlan:
    """Remove an item; the ones below it move up, so positions stay 1..n."""
    item, plan = _locked_item(item, actor, version)
    position = item.position
    item.delete()
    # In ascending order each target position is already free (unique constraint).
    for later in plan.items.filter(position__gt=position).order_by("position"):
        later.position -= 1
        later.save(update_fields=["position", "updated_at"])
    return plan


def unfinished_to_carry(user, from_day):
    """Unfinished items of ``from_day`` not yet carried to any later day."""
    return (
        PlanItem.objects.filter(plan__user=user, plan__day=from_day, status__in=UNFINISHED)
        .filter(carried_to__isnull=True)
        .order_by("position")
    )


@transaction.atomic
def carry_over(user, from_day, to_day, *, actor) -> tuple[DailyPlan, int]:
    """Copy the unfinished items of ``from_day`` into the plan of ``to_day`` (as planned,
    same category, text and links), each once. Refused, changing nothing, when they do
    not fit in the seven items of ``to_day``. Returns the target plan and how many items
    were carried."""
    _own(user, actor)
    if to_day <= from_day:
        raise ValidationFailed(_("Carry unfinished items forward to a later day."), field="to")
    source = DailyPlan.objects.filter(user=user, day=from_day).first()
    if source is not None:
        DailyPlan.objects.select_for_update().get(pk=source.pk)
    items = list(unfinished_to_carry(user, from_day))
    if not items:
        raise ValidationFailed(_("Nothing unfinished to carry over."), code="nothing")
    plan = _locked_plan(user, to_day, None)
    used = set(plan.items.values_list("position", flat=True))
    free = [p for p in range(1, MAX_ITEMS + 1) if p not in used]
    if len(items) > len(free):
        raise ValidationFailed(
            _(
                "%(n)s unfinished items do not fit: the plan of %(day)s has room for "
                "%(free)s more. Remove some items first."
            )
            % {"n": len(items), "day": to_day.isoformat(), "free": len(free)},
            field="to",
            code="plan_full",
        )
    PlanItem.objects.bulk_create(
        [
            PlanItem(
                plan=plan,
                position=position,
                category=item.category,
                text=item.text,
                task_id=item.task_id,
                lead_id=item.lead_id,
                account_id=item.account_id,
                opportunity_id=item.opportunity_id,
                carried_from=item,
            )  # fmt: skip
            for item, position in zip(items, free, strict=False)
        ]
    )
    return plan, len(items)


@transaction.atomic
def set_prospecting_time(user, *, actor, start, end, version=None) -> WorklistSettings:
    """Set the daily prospecting block of ``user`` (their own only)."""
    _own(user, actor)
    if start is None or end is None or end <= start:
        raise ValidationFailed(_("The block must end after it starts."), field="prospecting_end")
    settings_row, _created = WorklistSettings.objects.get_or_create(
        user=user, defaults={"version": 0}
    )
    settings_row = WorklistSettings.objects.select_for_update().get(pk=settings_row.pk)
    check_version(settings_row, version)
    settings_row.prospecting_start, settings_row.prospecting_end = start, end
    settings_row.version += 1
    settings_row.save()
    return settings_row


def prospecting_block(user) -> SimpleNamespace:
    """The user's block (the default when never set), for display: start, end, version."""
    row = WorklistSettings.objects.filter(user=user).first()
    if row is None:
        start, end = DEFAULT_PROSPECTING
        return SimpleNamespace(start=start, end=end, version=0)
    return SimpleNamespace(
        start=row.prospecting_start, end=row.prospecting_end, version=row.version
    )
