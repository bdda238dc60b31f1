"""Onboarding roadmap API: the bands and standards (edited by an admin), one rep's
progress and the team view.

``GET /onboarding/progress?user=ID`` answers for the caller without ``user``; a rep may
ask only for themself, a manager for their subtree, an admin for anyone; anyone else is
a 404 exactly like a user that does not exist.
"""

from datetime import date
from decimal import Decimal
from typing import Literal

from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema

from loudou.core.exceptions import NotPermitted
from loudou.pipeline.filters import RowId
from loudou.pipeline.models import Stage

from . import queries, services
from .models import Band, Comparison, Metric, Scope, Standard

router = Router(tags=["onboarding"])

MetricValue = Literal[tuple(Metric.values)]  # type: ignore[valid-type]
ScopeValue = Literal[tuple(Scope.values)]  # type: ignore[valid-type]
ComparisonValue = Literal[tuple(Comparison.values)]  # type: ignore[valid-type]
Amount = Field(..., ge=0, le=99_999_999, max_digits=10, decimal_places=2)


# --- schemas ----------------------------------------------------------------------------


class OnboardingStandardOut(Schema):
    id: int
    band_id: int
    metric: str
    scope: str
    comparison: str
    value: Decimal
    value_max: Decimal | None
    stage_id: int | None
    min_probability: Decimal | None
    label: str
    label_en: str
    position: int


class OnboardingBandOut(Schema):
    id: int
    name: str
    name_en: str
    position: int
    is_training: bool
    duration_weeks: int | None
    from_month: int | None
    to_month: int | None
    standards: list[OnboardingStandardOut]

    @staticmethod
    def resolve_standards(obj):
        return list(obj.standards.all())


class OnboardingBandIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    name_en: str = Field("", max_length=100)
    from_month: int = Field(..., ge=0, le=60)
    to_month: int = Field(..., ge=0, le=60)


class OnboardingBandPatch(Schema):
    name: str = Field(None, min_length=1, max_length=100)
    name_en: str = Field(None, max_length=100)
    duration_weeks: int = Field(None, ge=1, le=52, description="Training only.")
    from_month: int = Field(None, ge=0, le=60, description="Month bands only.")
    to_month: int = Field(None, ge=0, le=60, description="Month bands only.")


class OnboardingStandardIn(Schema):
    metric: MetricValue
    scope: ScopeValue
    comparison: ComparisonValue = "at_least"
    value: Decimal = Amount
    value_max: Decimal | None = Field(None, ge=0, le=99_999_999, max_digits=10, decimal_places=2)
    stage_id: RowId | None = None
    min_probability: Decimal | None = Field(None, ge=0, le=100, max_digits=5, decimal_places=2)
    label: str = Field("", max_length=100)
    label_en: str = Field("", max_length=100)


class OnboardingStandardPatch(Schema):
    metric: MetricValue = None
    scope: ScopeValue = None
    comparison: ComparisonValue = None
    value: Decimal = Field(None, ge=0, le=99_999_999, max_digits=10, decimal_places=2)
    value_max: Decimal | None = Field(None, ge=0, le=99_999_999, max_digits=10, decimal_places=2)
    stage_id: RowId | None = None
    min_probability: Decimal | None = Field(None, ge=0, le=100, max_digits=5, decimal_places=2)
    label: str = Field(None, max_length=100)
    label_en: str = Field(None, max_length=100)


class OnboardingCellOut(Schema):
    week: date
    actual: Decimal | None
    value: Decimal | None
    status: str | None = Field(..., description="met, behind, open (current week) or null.")


class OnboardingWeeklyOut(Schema):
    id: int
    metric: str
    label: str
    comparison: str
    value: Decimal
    value_max: Decimal | None
    unit: str
    cells: list[OnboardingCellOut] = Field(..., description="Oldest week first; last = now.")


class OnboardingGoalOut(Schema):
    id: int
    metric: str
    label: str
    comparison: str
    value: Decimal
    value_max: Decimal | None
    unit: str
    actual: Decimal | None = Field(..., description="null when no quota is set.")
    expected: Decimal | None
    status: str = Field(..., description="met, behind, open or no_quota.")
    due: date


class OnboardingBehindOut(Schema):
    id: int
    metric: str
    label: str
    value: Decimal
    value_max: Decimal | None
    unit: str
    actual: Decimal | None
    week: date | None = Field(..., description="The week missed; null for a goal.")


class OnboardingSpanOut(Schema):
    band_id: int
    name: str
    is_training: bool
    start: date
    end: date
    state: str


class OnboardingRepOut(Schema):
    id: int
    username: str
    name: str
    team_id: int | None


class OnboardingProgressOut(Schema):
    user: OnboardingRepOut
    status: str = Field(..., description="onboarding, graduated, not_started or no_hire_date.")
    hire_date: date | None
    week: int | None = Field(..., description="Week since the hire date, from 1.")
    month: int | None = Field(..., description="Whole months of the quota clock (after training).")
    band: str | None
    band_id: int | None
    band_start: date | None
    band_end: date | None
    graduates_on: date | None
    timeline: list[OnboardingSpanOut]
    weekly: list[OnboardingWeeklyOut]
    goals: list[OnboardingGoalOut]
    behind: list[OnboardingBehindOut]
    behind_count: int


class OnboardingTeamRowOut(Schema):
    user: OnboardingRepOut
    status: str
    hire_date: date | None
    band: str | None
    week: int | None
    behind_count: int


class OnboardingTeamOut(Schema):
    reps: list[OnboardingTeamRowOut]
    behind: int = Field(..., description="Reps onboarding with at least one thing behind.")


class OnboardingProgressQuery(Schema):
    user: RowId | None = Field(None, description="A user id; default: yourself.")


# --- helpers ----------------------------------------------------------------------------


def _rep(user) -> dict:
    return {"id": user.pk, "username": user.username, "name": str(user), "team_id": user.team_id}


def _standard_fields(data: dict) -> dict:
    if "stage_id" in data:
        stage_id = data.pop("stage_id")
        data["stage"] = get_object_or_404(Stage, pk=stage_id) if stage_id else None
    return data


def _admin(request):
    if not request.auth.sees_everything:
        raise NotPermitted()


# --- endpoints --------------------------------------------------------------------------


@router.get("/onboarding/bands", response=list[OnboardingBandOut])
def list_bands(request):
    """Every band in order with its standards (anyone signed in may read them)."""
    return list(Band.objects.prefetch_related("standards"))


@router.post("/onboarding/bands", response={201: OnboardingBandOut})
def create_band(request, payload: OnboardingBandIn):
    """Add a month band (admin)."""
    band = services.create_band(actor=request.auth, **payload.dict())
    return 201, band


@router.patch("/onboarding/bands/{band_id}", response=OnboardingBandOut)
def update_band(request, band_id: RowId, payload: OnboardingBandPatch):
    """Rename or move a band; training changes its duration (admin)."""
    _admin(request)
    band = get_object_or_404(Band, pk=band_id)
    return services.update_band(band, actor=request.auth, **payload.dict(exclude_unset=True))


@router.delete("/onboarding/bands/{band_id}", response={204: None})
def delete_band(request, band_id: RowId):
    """Remove a month band and its standards (admin; training stays)."""
    _admin(request)
    services.delete_band(get_object_or_404(Band, pk=band_id), actor=request.auth)
    return 204, None


@router.post("/onboarding/bands/{band_id}/standards", response={201: OnboardingStandardOut})
def create_standard(request, band_id: RowId, payload: OnboardingStandardIn):
    """Add a standard to a band (admin)."""
    _admin(request)
    band = get_object_or_404(Band, pk=band_id)
    data = _standard_fields(payload.dict())
    return 201, services.create_standard(band, actor=request.auth, **data)


@router.patch("/onboarding/standards/{standard_id}", response=OnboardingStandardOut)
def update_standard(request, standard_id: RowId, payload: OnboardingStandardPatch):
    """Change a standard (admin); every roadmap shows it on the next read."""
    _admin(request)
    standard = get_object_or_404(Standard, pk=standard_id)
    data = _standard_fields(payload.dict(exclude_unset=True))
    return services.update_standard(standard, actor=request.auth, **data)


@router.delete("/onboarding/standards/{standard_id}", response={204: None})
def delete_standard(request, standard_id: RowId):
    """Remove a standard (admin)."""
    _admin(request)
    services.delete_standard(get_object_or_404(Standard, pk=standard_id), actor=request.auth)
    return 204, None


@router.get("/onboarding/progress", response=OnboardingProgressOut)
def progress_of(request, filters: Query[OnboardingProgressQuery]):
    """One person's roadmap today; outside the caller's scope a 404."""
    pk = filters.user or request.auth.pk
    user = get_object_or_404(queries.roadmap_users(request.auth), pk=pk)
    return {"user": _rep(user), **queries.roadmap(user)}


@router.get("/onboarding/team", response=OnboardingTeamOut)
def team(request):
    """Every active rep in the caller's scope with status, band, week and behind count
    (a rep gets only themself)."""
    rows = queries.roadmaps(queries.team_reps(request.auth))
    reps = [
        {"user": _rep(rep), "status": p["status"], "hire_date": p["hire_date"],
         "band": p["band"], "week": p["week"], "behind_count": p["behind_count"]}
        for rep, p in rows
    ]  # fmt: skip
    behind = sum(1 for r in reps if r["status"] == "onboarding" and r["behind_count"])
    return {"reps": reps, "behind": behind}
