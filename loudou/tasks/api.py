"""Tasks API.

Every lookup goes through ``Task.objects.visible_to``: tasks the caller owns or sees as
an owned record, plus every task the caller is an assignee of. One outside that scope
answers 404 exactly like one that does not exist. A linked record or an assignee the
caller may not choose is a 422 on its field; changing someone else's task without being
an assignee or their manager is a 403; a stale ``version`` is a 409.
"""

from datetime import datetime

from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from loudou.activities.api import visible_links
from loudou.activities.filters import KindValue
from loudou.api.pagination import LimitOffsetPagination, paginate
from loudou.core.exceptions import ValidationFailed
from loudou.org.models import User, assignable_owners
from loudou.pipeline.filters import RowId

from . import services
from .filters import TaskFilter
from .models import Task

router = Router(tags=["tasks"])

MAX_ASSIGNEES = 50
Version = Field(None, ge=1, le=2**31, description="The version you last read (409 when stale).")


class TaskIn(Schema):
    title: str = Field(..., min_length=1, max_length=200)
    kind: KindValue = "other"
    notes: str = Field("", max_length=10_000)
    due_at: datetime | None = Field(
        None, description="Default: now. For an all-day task, any time of its local day."
    )
    all_day: bool = False
    remind_at: datetime | None = Field(None, description="When to notify the assignees.")
    assignee_ids: list[RowId] = Field(
        [], max_length=MAX_ASSIGNEES, description="Besides the owner, who is always one."
    )
    owner_id: RowId | None = Field(
        None, description="Who is responsible (default: you). A manager may name a rep of "
        "the team."
    )  # fmt: skip
    lead_id: RowId | None = None
    account_id: RowId | None = None
    contact_id: RowId | None = Field(None, description="Also links the contact's account.")
    opportunity_id: RowId | None = Field(None, description="Also links its account.")


class TaskPatch(Schema):
    version: int | None = Version
    title: str = Field(None, min_length=1, max_length=200)
    kind: KindValue = None
    notes: str = Field(None, max_length=10_000)
    due_at: datetime = None
    all_day: bool = None
    remind_at: datetime | None = Field(None, description="null: no reminder.")
    assignee_ids: list[RowId] = Field(
        None, max_length=MAX_ASSIGNEES, description="The whole new list (the owner stays)."
    )
    owner_id: RowId = None
    lead_id: RowId | None = None
    account_id: RowId | None = None
    contact_id: RowId | None = None
    opportunity_id: RowId | None = None


class TaskRecordOut(Schema):
    id: int
    title: str
    kind: str
    notes: str
    due_at: datetime
    all_day: bool
    remind_at: datetime | None
    reminded_at: datetime | None
    done_at: datetime | None
    done_by_id: int | None
    is_overdue: bool
    owner_id: int | None
    assignee_ids: list[int]
    lead_id: int | None
    account_id: int | None
    contact_id: int | None
    opportunity_id: int | None
    source: str
    breach_id: int | None
    origin_activity_id: int | None
    created_by_id: int | None
    version: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_assignee_ids(obj) -> list[int]:
        return sorted(a.pk for a in obj.assignees.all())


class TaskVersionQuery(Schema):
    version: int | None = Version


class CalendarFeedOut(Schema):
    token: str
    https_url: str
    webcal_url: str
    created_at: datetime


def _tasks(request):
    return Task.objects.visible_to(request.auth).prefetch_related("assignees")


def _get(request, task_id) -> Task:
    return get_object_or_404(_tasks(request), pk=task_id)


def _people(request, data: dict) -> dict:
    if "owner_id" in data:
        pk = data.pop("owner_id")
        if pk is not None:
            data["owner"] = assignable_owners(request.auth).filter(pk=pk).first()
            if data["owner"] is None:
                raise ValidationFailed(
                    _("You may give tasks only to yourself or your team."), field="owner_id"
                )
    if "assignee_ids" in data:
        ids = set(data.pop("assignee_ids") or ())
        if len(ids) != User.objects.filter(pk__in=ids).count():
            raise ValidationFailed(
                _("Choose assignees among your active colleagues."), field="assignee_ids"
            )
        data["assignees"] = ids
    return data


def _fresh(task) -> Task:
    return Task.objects.prefetch_related("assignees").get(pk=task.pk)


@router.get("/tasks", response=list[TaskRecordOut])
@paginate(LimitOffsetPagination)
def list_tasks(request, filters: Query[TaskFilter]):
    """Tasks the caller may see, narrowed by the filters (default: my open tasks),
    soonest first (done: most recently done first)."""
    return filters.apply(_tasks(request), request.auth).order_by(*filters.ordering())


@router.post("/tasks", response={201: TaskRecordOut})
def create_task(request, payload: TaskIn):
    """Create a task (you are its owner unless ``owner_id`` names a rep of your team)."""
    data = _people(request, visible_links(request, payload.model_dump()))
    task = services.create_task(request.auth, **data)
    return Status(201, _fresh(task))


@router.get("/tasks/{task_id}", response=TaskRecordOut)
def get_task(request, task_id: RowId):
    return _get(request, task_id)


@router.patch("/tasks/{task_id}", response=TaskRecordOut)
def update_task(request, task_id: RowId, payload: TaskPatch):
    """Change a task (owner, assignee, the owner's manager or an admin); 409 on a stale
    version."""
    task = _get(request, task_id)
    data = _people(request, visible_links(request, payload.model_dump(exclude_unset=True)))
    version = data.pop("version", None)
    for name in ("title", "kind", "notes", "due_at", "all_day", "owner"):
        if name in data and data[name] is None:
            raise ValidationFailed(_("This field cannot be empty."), field=name)
    if "notes" in data:
        data["notes"] = data["notes"] or ""
    return _fresh(services.update_task(task, actor=request.auth, version=version, **data))


@router.post("/tasks/{task_id}/complete", response=TaskRecordOut)
def complete_task(request, task_id: RowId, query: Query[TaskVersionQuery]):
    """Mark a task done (nothing changes if it is done already)."""
    task = _get(request, task_id)
    return _fresh(services.complete_task(task, actor=request.auth, version=query.version))


@router.post("/tasks/{task_id}/reopen", response=TaskRecordOut)
def reopen_task(request, task_id: RowId, query: Query[TaskVersionQuery]):
    """Mark a done task open again."""
    task = _get(request, task_id)
    return _fresh(services.reopen_task(task, actor=request.auth, version=query.version))


@router.delete("/tasks/{task_id}", response={204: None})
def delete_task(request, task_id: RowId, query: Query[TaskVersionQuery]):
    """Delete a task (owner, assignee, the owner's manager or an admin)."""
    task = _get(request, task_id)
    services.delete_task(task, actor=request.auth, version=query.version)
    return Status(204, None)


def _feed_out(request, feed) -> dict:
    url = request.build_absolute_uri(reverse("tasks:feed", args=[feed.token]))
    return {
        "token": feed.token,
        "https_url": url,
        "webcal_url": "webcal://" + url.split("://", 1)[1],
        "created_at": feed.created_at,
    }


@router.get("/calendar-feed", response=CalendarFeedOut)
def get_calendar_feed(request):
    """Your secret calendar address (created on first use): subscribe to it in a phone's
    calendar app to see your tasks there."""
    return _feed_out(request, services.calendar_feed(request.auth))


@router.post("/calendar-feed/regenerate", response=CalendarFeedOut)
def regenerate_calendar_feed(request):
    """A new secret calendar address; the old one answers 404 from now on."""
    return _feed_out(request, services.regenerate_feed(request.auth))
