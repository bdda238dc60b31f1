"""Visits API (mounted on the activities router, under /api/v1/visits).

Every lookup goes through ``Visit.objects.visible_to`` (the owner, their managers,
admins, people it is shared with): a visit outside that scope answers 404 exactly like
one that does not exist. A linked record the caller cannot see is a 422 on its field;
an action the caller may not take on a visit they see is a 403 (check-in: the owner
only); an action the visit's state no longer allows, or a stale version, is a 409.
"""

from datetime import date, datetime, timedelta
from typing import Literal

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from loudou.analytics.periods import local_midnight
from loudou.api.pagination import LimitOffsetPagination, paginate
from loudou.core.exceptions import ValidationFailed
from loudou.customers.models import Account, Contact
from loudou.org.models import assignable_owners
from loudou.pipeline.filters import RowId
from loudou.pipeline.models import Opportunity

from ..choices import VISIT_OUTCOMES, Outcome, VisitStatus
from ..filters import FIRST_DAY, LAST_DAY, PurposeValue
from ..models import MAX_DURATION_MINUTES, Visit
from . import services
from .queries import MAX_WEEKS, METRICS, last_weeks, people_in_scope, stats_rows, weekly_stats

router = Router(tags=["visits"])

StatusValue = Literal[tuple(VisitStatus.values)]
VisitOutcomeValue = Literal[tuple(str(o) for o in VISIT_OUTCOMES)]
Version = Field(None, ge=1, le=2**31, description="The version you last read (409 when stale).")


class VisitFilter(Schema):
    """What the visit list can be narrowed by; ``apply`` never widens the scope."""

    owner: RowId | None = None
    status: StatusValue | None = None
    account: RowId | None = None
    date_from: date | None = Field(
        None, ge=FIRST_DAY, le=LAST_DAY, description="Planned on or after this local day."
    )
    date_to: date | None = Field(
        None, ge=FIRST_DAY, le=LAST_DAY, description="Planned on or before this local day."
    )
    checked_in: bool | None = None

    def apply(self, qs):
        if self.owner is not None:
            qs = qs.filter(owner_id=self.owner)
        if self.account is not None:
            qs = qs.filter(account_id=self.account)
        if self.status is not None:
            qs = qs.filter(status=self.status)
        if self.checked_in is not None:
            qs = qs.filter(checked_in_at__isnull=not self.checked_in)
        if self.date_from:
            qs = qs.filter(planned_for__gte=local_midnight(self.date_from))
        if self.date_to:
            qs = qs.filter(planned_for__lt=local_midnight(self.date_to + timedelta(days=1)))
        return qs


def _when_in_range(value: datetime | None, field: str) -> None:
    if value is not None and not (date(1900, 1, 2) <= value.date() <= date(9998, 12, 30)):
        raise ValidationFailed(_("Give a time between the years 1900 and 9998."), field=field)


class VisitIn(Schema):
    account_id: RowId | None = Field(
        None, description="Required unless a contact or opportunity gives it."
    )
    planned_for: datetime = Field(description="When, with its time zone.")
    contact_id: RowId | None = None
    opportunity_id: RowId | None = None
    purpose: PurposeValue | None = Field(
        None, description="Default: from the links, like an activity."
    )
    topic: str = Field("", max_length=200)
    owner_id: RowId | None = Field(
        None, description="Who goes (default: you); a manager may name a rep of the team."
    )


class VisitPatch(Schema):
    version: int | None = Version
    planned_for: datetime = Field(None, description="Moves the visit and its task.")
    contact_id: RowId | None = None
    opportunity_id: RowId | None = None
    purpose: PurposeValue | None = Field(None, description="null: back to the default.")
    topic: str = Field(None, max_length=200)


class CheckInIn(Schema):
    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False)
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False)
    accuracy: float | None = Field(
        None, ge=0, le=services.MAX_ACCURACY_M, allow_inf_nan=False,
        description="Metres, as the browser's geolocation reports it.",
    )  # fmt: skip
    version: int | None = Version


class RecordIn(Schema):
    outcome: VisitOutcomeValue = Outcome.VISITED.value
    notes: str = Field("", max_length=10_000)
    gave_something: bool = False
    gave_what: str = Field("", max_length=200)
    duration_minutes: int | None = Field(None, ge=0, le=MAX_DURATION_MINUTES)
    check_out: bool = Field(False, description="After a check-in: leaving now.")
    version: int | None = Version


class CancelIn(Schema):
    reason: str = Field(min_length=1, max_length=300)
    version: int | None = Version


class VisitOut(Schema):
    id: int
    account_id: int
    contact_id: int | None
    opportunity_id: int | None
    owner_id: int | None
    created_by_id: int | None
    purpose: str
    topic: str
    planned_for: datetime
    status: str
    task_id: int | None
    activity_id: int | None
    done_at: datetime | None
    checked_in_at: datetime | None
    latitude: float | None
    longitude: float | None
    accuracy_m: int | None
    distance_m: int | None
    far: bool = Field(description="Checked in further than LOUDOU_VISIT_FAR_METRES away.")
    checked_out_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str
    version: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_far(obj) -> bool:
        return obj.is_far


class StatsQuery(Schema):
    weeks: int = Field(8, ge=1, le=MAX_WEEKS, description="How many weeks, this one last.")
    owner: RowId | None = None


class WeekOut(Schema):
    week: date = Field(description="The Monday.")
    planned: int
    done: int
    cancelled: int
    checked_in: int
    far: int


class StatsRowOut(Schema):
    owner_id: int
    owner: str
    weeks: list[WeekOut]


class StatsOut(Schema):
    weeks: list[date]
    far_metres: int
    rows: list[StatsRowOut]


def _visits(request):
    return Visit.objects.visible_to(request.auth)


def _get(request, visit_id) -> Visit:
    return get_object_or_404(_visits(request), pk=visit_id)


def _row(model, request, pk, field):
    if pk is None:
        return None
    row = model.objects.visible_to(request.auth).filter(pk=pk).first()
    if row is None:
        raise ValidationFailed(_("Choose a record you can see."), field=field)
    return row


@router.get("/visits", response=list[VisitOut])
@paginate(LimitOffsetPagination)
def list_visits(request, filters: Query[VisitFilter]):
    """Visits the caller may see, by planned time (newest first)."""
    return filters.apply(_visits(request)).order_by("-planned_for", "-pk")


@router.post("/visits", response={201: VisitOut})
def plan_visit(request, payload: VisitIn):
    """Plan a visit; its task (kind visit, due at the planned time) is created too."""
    _when_in_range(payload.planned_for, "planned_for")
    owner = None
    if payload.owner_id is not None:
        owner = assignable_owners(request.auth).filter(pk=payload.owner_id).first()
        if owner is None:
            raise ValidationFailed(
                _("You may plan visits only for yourself or your team."), field="owner_id"
            )
    visit = services.plan_visit(
        request.auth,
        account=_row(Account, request, payload.account_id, "account_id"),
        contact=_row(Contact, request, payload.contact_id, "contact_id"),
        opportunity=_row(Opportunity, request, payload.opportunity_id, "opportunity_id"),
        planned_for=payload.planned_for, purpose=payload.purpose or "", topic=payload.topic,
        owner=owner,
    )  # fmt: skip
    return Status(201, visit)


@router.get("/visits/stats", response=StatsOut)
def visit_stats(request, query: Query[StatsQuery]):
    """Per person in the caller's scope (an admin everyone, a manager the team subtree,
    a rep themself) and local week: planned, done, cancelled, done with a check-in, and
    check-ins far from the address. A visit counts in the week it is planned for."""
    people = people_in_scope(request.auth)
    if query.owner is not None:
        people = people.filter(pk=query.owner)
    people = list(people.order_by("name", "username"))
    stats = weekly_stats(last_weeks(query.weeks), [p.pk for p in people])
    rows = [
        {
            "owner_id": row["person"].pk, "owner": str(row["person"]),
            "weeks": [
                {"week": m, **{name: getattr(counts, name) for name in METRICS}}
                for m, counts in zip(stats.weeks, row["weeks"], strict=True)
            ],
        }
        for row in stats_rows(stats, people)
    ]  # fmt: skip
    return {"weeks": stats.weeks, "far_metres": settings.LOUDOU_VISIT_FAR_METRES, "rows": rows}


@router.get("/visits/{visit_id}", response=VisitOut)
def get_visit(request, visit_id: RowId):
    return _get(request, visit_id)


@router.patch("/visits/{visit_id}", response=VisitOut)
def update_visit(request, visit_id: RowId, payload: VisitPatch):
    """Change a planned visit: time (moves its task), contact, opportunity, purpose,
    topic. 409 when it is no longer planned or the version is stale."""
    visit = _get(request, visit_id)
    data = payload.model_dump(exclude_unset=True)
    version = data.pop("version", None)
    for name in ("planned_for", "topic"):
        if name in data and data[name] is None:
            raise ValidationFailed(_("This field cannot be empty."), field=name)
    _when_in_range(data.get("planned_for"), "planned_for")
    if "contact_id" in data:
        data["contact"] = _row(Contact, request, data.pop("contact_id"), "contact_id")
    if "opportunity_id" in data:
        data["opportunity"] = _row(
            Opportunity, request, data.pop("opportunity_id"), "opportunity_id"
        )
    if "purpose" in data and data["purpose"] is None:
        data["purpose"] = ""
    return services.update_visit(visit, actor=request.auth, version=version, **data)


@router.post("/visits/{visit_id}/check-in", response=VisitOut)
def check_in(request, visit_id: RowId, payload: CheckInIn):
    """Check in at the customer (the owner only, once): the position the phone gave, now.
    The answer carries the distance from the account's coordinates and ``far``."""
    visit = _get(request, visit_id)
    return services.check_in(
        visit, actor=request.auth, latitude=payload.latitude, longitude=payload.longitude,
        accuracy=payload.accuracy, version=payload.version,
    )  # fmt: skip


@router.post("/visits/{visit_id}/record", response=VisitOut)
def record_visit(request, visit_id: RowId, payload: RecordIn):
    """Mark the visit done: logs its activity (kind visit) and completes its task."""
    visit = _get(request, visit_id)
    data = payload.model_dump()
    return services.record_visit(visit, actor=request.auth, **data)


@router.post("/visits/{visit_id}/cancel", response=VisitOut)
def cancel_visit(request, visit_id: RowId, payload: CancelIn):
    """Cancel a planned visit with a reason; its open task is removed."""
    visit = _get(request, visit_id)
    return services.cancel_visit(
        visit, actor=request.auth, reason=payload.reason, version=payload.version
    )
