"""Worklist and daily plan API.

``GET /worklist`` is the caller's worklist (DOMAIN §7), or with ``?user=`` a team
member's for a manager (an administrator: anyone's); someone outside that scope is a
404, exactly like a missing id. Daily plans: ``/daily-plans/{day}`` where ``day`` is
``today`` or ``YYYY-MM-DD``. Reading takes ``?user=`` like the worklist; every write is
on the caller's own plan. A plan not yet stored reads as an empty plan with version 0.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from loudou.core.exceptions import ValidationFailed
from loudou.customers.models import Account
from loudou.leads.models import Lead
from loudou.pipeline.filters import RowId
from loudou.pipeline.models import Opportunity
from loudou.tasks.models import Task

from . import services
from .choices import Category, ItemStatus
from .models import DailyPlan, PlanItem
from .queries import FIRST_DAY, LAST_DAY, Item, parse_day, viewable_users, worklist

router = Router(tags=["worklist"])

CategoryValue = Literal[tuple(Category.values)]
StatusValue = Literal[tuple(ItemStatus.values)]
Version = Field(None, ge=0, le=2**31, description="The version you last read (409 when stale).")
PlanText = Field(None, max_length=services.MAX_TEXT)


class UserQuery(Schema):
    user: RowId | None = Field(
        None, description="Whose (a manager: a member of their team subtree). Default: you."
    )


class WorklistTaskOut(Schema):
    id: int
    title: str
    due_at: datetime
    overdue: bool


class WorklistBreachOut(Schema):
    id: int
    rule_id: int
    rule: str
    due_at: datetime


class ItemOut(Schema):
    kind: str = Field(description="contract, account, opportunity, lead, task or breach")
    id: int
    title: str
    reason: str
    url: str
    phone: str
    subject_type: str | None = Field(description="What an activity logged from here is about.")
    subject_id: int | None
    amount: Decimal | None
    urgent: bool = Field(description="A rule breach or a task due today or earlier.")
    tasks: list[WorklistTaskOut]
    breaches: list[WorklistBreachOut]


class SectionOut(Schema):
    key: str = Field(description="due, orders, unpaid, closing, inquiries, development")
    label: str
    hint: str
    count: int = Field(description="Every record in the section, shown or not.")
    items: list[ItemOut]


class ProspectingOut(Schema):
    start: str = Field(pattern=r"^\d{2}:\d{2}$", description="HH:MM, local time")
    end: str = Field(pattern=r"^\d{2}:\d{2}$", description="HH:MM, local time")


class WorklistOut(Schema):
    user_id: int
    date: date
    now: datetime
    prospecting: ProspectingOut
    pool_count: int = Field(description="Open leads in public pools the user may claim from.")
    sections: list[SectionOut]


class PlanItemOut(Schema):
    id: int
    position: int
    category: str
    text: str
    status: str
    note: str
    task_id: int | None
    lead_id: int | None
    account_id: int | None
    opportunity_id: int | None
    carried_from_id: int | None
    version: int


class DailyPlanOut(Schema):
    id: int | None
    user_id: int
    day: date
    problems: str
    risks: str
    countermeasures: str
    not_finished: str
    not_done_well: str
    not_done: str
    version: int
    items: list[PlanItemOut]


class DailyPlanIn(Schema):
    version: int | None = Version
    problems: str | None = PlanText
    risks: str | None = PlanText
    countermeasures: str | None = PlanText
    not_finished: str | None = PlanText
    not_done_well: str | None = PlanText
    not_done: str | None = PlanText


class PlanItemIn(Schema):
    text: str = Field(max_length=services.MAX_ITEM_TEXT)
    category: CategoryValue = "key"
    status: StatusValue = "planned"
    note: str = Field("", max_length=services.MAX_NOTE)
    task_id: RowId | None = None
    lead_id: RowId | None = None
    account_id: RowId | None = None
    opportunity_id: RowId | None = None


class PlanItemPatch(Schema):
    version: int | None = Version
    text: str = Field(None, max_length=services.MAX_ITEM_TEXT)
    category: CategoryValue = None
    status: StatusValue = None
    note: str = Field(None, max_length=services.MAX_NOTE)


class PlanVersionQuery(Schema):
    version: int | None = Version


class CarryIn(Schema):
    to: date | None = Field(None, description="Default: the next day.")


def _target(request, user_id):
    if user_id is None:
        return request.auth
    return get_object_or_404(viewable_users(request.auth), pk=user_id)


def _day(day: str) -> date:
    if day == "today":
        return timezone.localdate()
    value = parse_day(day)
    if value is None:
        raise ValidationFailed(
            _("Give the day as today or YYYY-MM-DD (2000–2100)."), field="day", code="invalid"
        )
    return value


def _item_out(item: Item) -> dict:
    return {
        "kind": item.kind,
        "id": item.obj.pk,
        "title": item.title,
        "reason": item.reason,
        "url": item.url,
        "phone": item.phone,
        "subject_type": item.subject_type or None,
        "subject_id": item.subject_id,
        "amount": item.amount,
        "urgent": item.urgent,
        "tasks": [
            {"id": t.pk, "title": t.title, "due_at": t.due_at, "overdue": t.wl_overdue}
            for t in item.tasks
        ],
        "breaches": [
            {"id": b.pk, "rule_id": b.rule_id, "rule": b.wl_rule, "due_at": b.due_at}
            for b in item.breaches
        ],
    }


@router.get("/worklist", response=WorklistOut)
def get_worklist(request, query: Query[UserQuery]):
    """The worklist of today, closest to money first: the ``due`` section (breaches and
    due tasks about no listed record), then orders and customer care, signed but unpaid,
    about to order, recent inquiries, new development (docs/worklist.md)."""
    target = _target(request, query.user)
    wl = worklist(target)
    block = services.prospecting_block(target)
    return {
        "user_id": target.pk,
        "date": wl.today,
        "now": wl.now,
        "prospecting": {"start": f"{block.start:%H:%M}", "end": f"{block.end:%H:%M}"},
        "pool_count": wl.pool_count,
        "sections": [
            {
                "key": band.key,
                "label": band.label,
                "hint": band.hint,
                "count": band.count,
                "items": [_item_out(item) for item in band.items],
            }
            for band in wl.sections
        ],
    }


def _plan_out(user, day: date) -> dict:
    plan = DailyPlan.objects.filter(user=user, day=day).first()
    data = {"id": None, "user_id": user.pk, "day": day, "version": 0, "items": []}
    for name in services.PLAN_FIELDS:
        data[name] = getattr(plan, name) if plan else ""
    if plan is not None:
        data.update(id=plan.pk, version=plan.version, items=list(plan.items.order_by("position")))
    return data


@router.get("/daily-plans/{day}", response=DailyPlanOut)
def get_daily_plan(request, day: str, query: Query[UserQuery]):
    """A daily plan (``day``: today or YYYY-MM-DD); not yet stored: empty, version 0."""
    return _plan_out(_target(request, query.user), _day(day))


@router.put("/daily-plans/{day}", response=DailyPlanOut)
def put_daily_plan(request, day: str, payload: DailyPlanIn):
    """Write the Check and Act parts of your plan (the fields sent; null leaves one as
    it is); creates the plan. 409 on a stale version."""
    day = _day(day)
    data = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    version = data.pop("version", None)
    services.update_plan(request.auth, day, actor=request.auth, version=version, **data)
    return _plan_out(request.auth, day)


def _links(request, data: dict) -> dict:
    models = {"task": Task, "lead": Lead, "account": Account, "opportunity": Opportunity}
    links = {}
    for name, model in models.items():
        pk = data.pop(f"{name}_id", None)
        if pk is None:
            continue
        row = model.objects.filter(pk=pk).first()
        if row is None:
            raise ValidationFailed(_("Choose a record you can see."), field=f"{name}_id")
        links[name] = row
    return links


@router.post("/daily-plans/{day}/items", response={201: PlanItemOut})
def add_plan_item(request, day: str, payload: PlanItemIn):
    """Add an item to your plan (at most seven: the eighth is a 422 on ``text``)."""
    day = _day(day)
    data = payload.model_dump()
    links = _links(request, data)
    try:
        item = services.add_item(request.auth, day, actor=request.auth, **data, **links)
    except ValidationFailed as exc:
        if exc.field in services.LINK_MODELS:
            exc.field = f"{exc.field}_id"
        raise
    return Status(201, item)


def _my_item(request, day: str, item_id) -> PlanItem:
    return get_object_or_404(
        PlanItem.objects.select_related("plan"),
        pk=item_id,
        plan__user=request.auth,
        plan__day=_day(day),
    )


@router.patch("/daily-plans/{day}/items/{item_id}", response=PlanItemOut)
def update_plan_item(request, day: str, item_id: RowId, payload: PlanItemPatch):
    """Change your item's text, category, status or record; 409 on a stale version."""
    item = _my_item(request, day, item_id)
    data = payload.model_dump(exclude_unset=True)
    version = data.pop("version", None)
    for name in ("text", "category", "status"):
        if name in data and data[name] is None:
            raise ValidationFailed(_("This field cannot be empty."), field=name)
    return services.update_item(item, actor=request.auth, version=version, **data)


@router.delete("/daily-plans/{day}/items/{item_id}", response={204: None})
def delete_plan_item(request, day: str, item_id: RowId, query: Query[PlanVersionQuery]):
    """Remove your item; the ones below move up."""
    item = _my_item(request, day, item_id)
    services.delete_item(item, actor=request.auth, version=query.version)
    return Status(204, None)


@router.post("/daily-plans/{day}/carry-over", response=DailyPlanOut)
def carry_over(request, day: str, payload: CarryIn):
    """Copy your unfinished items of ``day`` (each once) into the plan of ``to`` (default
    the next day); 422 when nothing is unfinished or they do not fit in seven."""
    day = _day(day)
    to = payload.to or date.fromordinal(min(day.toordinal() + 1, LAST_DAY.toordinal()))
    if not FIRST_DAY <= to <= LAST_DAY:
        raise ValidationFailed(_("Give the day as today or YYYY-MM-DD (2000–2100)."), field="to")
    plan, _n = services.carry_over(request.auth, day, to, actor=request.auth)
    return _plan_out(request.auth, plan.day)
