"""Activities API.

Every lookup goes through ``Activity.objects.visible_to``: activities the caller owns or
sees as an owned record, plus every activity on a lead, account or opportunity the caller
may see. One outside that scope answers 404 exactly like one that does not exist. A
linked record the caller cannot see (or that does not exist) is a 422 on its field;
changing or deleting someone else's activity without being their manager is a 403.
"""

from datetime import datetime

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from loudou.api.pagination import LimitOffsetPagination, paginate
from loudou.core.exceptions import ValidationFailed
from loudou.org.models import assignable_owners
from loudou.pipeline.filters import RowId

from . import services
from .filters import ActivityFilter, KindValue, OutcomeValue, PurposeValue
from .models import MAX_DURATION_MINUTES, Activity
from .services import LINKS

router = Router(tags=["activities"])

Minutes = Field(None, ge=0, le=MAX_DURATION_MINUTES, description="Duration in minutes.")


class ActivityIn(Schema):
    kind: KindValue
    outcome: OutcomeValue | None = Field(None, description="Required except for research.")
    purpose: PurposeValue | None = Field(
        None, description="Default: follow_up on an open opportunity, prospecting on a "
        "lead or a never-won account, service otherwise."
    )  # fmt: skip
    occurred_at: datetime | None = Field(None, description="Default: now. Not in the future.")
    duration_minutes: int | None = Minutes
    gave_something: bool = False
    gave_what: str = Field("", max_length=200)
    notes: str = Field("", max_length=10_000)
    lead_id: RowId | None = None
    account_id: RowId | None = None
    contact_id: RowId | None = Field(None, description="Also links the contact's account.")
    opportunity_id: RowId | None = Field(None, description="Also links its account.")
    owner_id: RowId | None = Field(
        None, description="Who did it (default: you). A manager may name a rep of the team."
    )


class ActivityPatch(Schema):
    version: int | None = Field(
        None, ge=1, le=2**31, description="The version you last read (409 when stale)."
    )
    kind: KindValue = None
    outcome: OutcomeValue | None = None
    purpose: PurposeValue | None = Field(None, description="null: back to the default.")
    occurred_at: datetime = None
    duration_minutes: int | None = Minutes
    gave_something: bool = None
    gave_what: str = Field(None, max_length=200)
    notes: str = Field(None, max_length=10_000)
    lead_id: RowId | None = None
    account_id: RowId | None = None
    contact_id: RowId | None = None
    opportunity_id: RowId | None = None


class ActivityOut(Schema):
    id: int
    kind: str
    purpose: str
    outcome: str
    occurred_at: datetime
    duration_minutes: int | None
    gave_something: bool
    gave_what: str
    notes: str
    lead_id: int | None
    account_id: int | None
    contact_id: int | None
    opportunity_id: int | None
    owner_id: int | None
    created_by_id: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class ActivityDeleteQuery(Schema):
    version: int | None = Field(None, ge=1, le=2**31)


def _activities(request):
    return Activity.objects.visible_to(request.auth)


def _get(request, activity_id) -> Activity:
    return get_object_or_404(_activities(request), pk=activity_id)


def visible_links(request, data: dict) -> dict:
    """Turn the ``lead_id``, ``account_id``, ``contact_id`` and ``opportunity_id`` fields
    of ``data`` into rows the caller may see; anything else is a 422 on the field (the
    activity and task APIs)."""
    for name, model in LINKS.items():
        key = f"{name}_id"
        if key not in data:
            continue
        pk = data.pop(key)
        data[name] = None
        if pk is not None:
            data[name] = model.objects.visible_to(request.auth).filter(pk=pk).first()
            if data[name] is None:
                raise ValidationFailed(_("Choose a record you can see."), field=key)
    return data


def _links(request, data: dict) -> dict:
    """:func:`visible_links`, and an empty outcome or purpose for a null one."""
    data = visible_links(request, data)
    for name in ("outcome", "purpose"):
        if name in data and data[name] is None:
            data[name] = ""
    return data


@router.get("/activities", response=list[ActivityOut])
@paginate(LimitOffsetPagination)
def list_activities(request, filters: Query[ActivityFilter]):
    """Activities the caller may see, newest first."""
    return filters.apply(_activities(request), request.auth).order_by("-occurred_at", "-pk")


@router.post("/activities", response={201: ActivityOut})
def create_activity(request, payload: ActivityIn):
    """Log an activity linked to at least one lead, account, contact or opportunity."""
    data = _links(request, payload.model_dump())
    owner_id = data.pop("owner_id")
    owner = None
    if owner_id is not None:
        owner = assignable_owners(request.auth).filter(pk=owner_id).first()
        if owner is None:
            raise ValidationFailed(
                _("You may log activities only for yourself or your team."), field="owner_id"
            )
    if data.get("occurred_at") is None:
        data.pop("occurred_at", None)
    activity = services.log_activity(request.auth, owner=owner, **data)
    return Status(201, activity)


@router.get("/activities/{activity_id}", response=ActivityOut)
def get_activity(request, activity_id: RowId):
    return _get(request, activity_id)


@router.patch("/activities/{activity_id}", response=ActivityOut)
def update_activity(request, activity_id: RowId, payload: ActivityPatch):
    """Change an activity (its owner, their manager or an admin); 409 on a stale
    version."""
    activity = _get(request, activity_id)
    data = _links(request, payload.model_dump(exclude_unset=True))
    version = data.pop("version", None)
    for name in ("kind", "occurred_at", "gave_something", "gave_what", "notes"):
        if name in data and data[name] is None:
            raise ValidationFailed(_("This field cannot be empty."), field=name)
    return services.update_activity(activity, actor=request.auth, version=version, **data)


@router.delete("/activities/{activity_id}", response={204: None})
def delete_activity(request, activity_id: RowId, query: Query[ActivityDeleteQuery]):
    """Delete an activity (its owner, their manager or an admin)."""
    activity = _get(request, activity_id)
    services.delete_activity(activity, actor=request.auth, version=query.version)
    return Status(204, None)


# Visits live in this app; their endpoints (/visits...) are mounted on this router.
from .visits.api import router as visits_router  # noqa: E402

router.add_router("", visits_router)
