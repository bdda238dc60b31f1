"""Targets, performance and standards API.

Targets are read through ``Target.objects.visible_to`` (a target outside the caller's
scope is a 404 like a missing id) and written through the services: a rep may read but
not set (403), a manager sets inside their subtree, a stale ``version`` is a 409.
``GET /targets/resolve`` answers the tiers of one period with the actual figure and the
percent; ``GET /performance`` the performance list the caller may see.
"""

from dataclasses import asdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from loudou.analytics.periods import Period, parse_period
from loudou.api.pagination import LimitOffsetPagination, paginate
from loudou.core.exceptions import ValidationFailed
from loudou.org.models import Team, User
from loudou.pipeline.filters import RowId
from loudou.pipeline.models import ProductLine

from . import performance, progress, services
from .models import Measure, Standard, Target, TargetLevel
from .progress import Owner

router = Router(tags=["targets"])

MeasureValue = Literal[
    "signed", "collected", "won_count", "new_opportunities", "activities", "visits"
]


# --- schemas ---------------------------------------------------------------------------


class TargetOut(Schema):
    id: int
    level: str
    team_id: int | None
    user_id: int | None
    measure: str
    period: str
    start: date
    label: str = Field(..., description="2026-11, 2026Q4 or 2026.")
    product_line_id: int | None
    target: Decimal
    stretch: Decimal | None
    challenge: Decimal | None
    version: int
    updated_at: datetime

    @staticmethod
    def resolve_label(obj) -> str:
        return obj.period_label


class TargetIn(Schema):
    level: Literal["company", "team", "rep"]
    team_id: RowId | None = None
    user_id: RowId | None = None
    measure: MeasureValue
    period: Literal["month", "quarter", "year"]
    start: date = Field(..., description="First day of the month, quarter or year.")
    product_line_id: RowId | None = None
    target: Decimal = Field(..., ge=0, max_digits=16, decimal_places=2)
    stretch: Decimal | None = Field(None, ge=0, max_digits=16, decimal_places=2)
    challenge: Decimal | None = Field(None, ge=0, max_digits=16, decimal_places=2)


class TargetPatch(Schema):
    version: int = Field(..., ge=1, le=2**31, description="The version you last read.")
    target: Decimal = Field(None, ge=0, max_digits=16, decimal_places=2)
    stretch: Decimal | None = Field(None, ge=0, max_digits=16, decimal_places=2)
    challenge: Decimal | None = Field(None, ge=0, max_digits=16, decimal_places=2)


class TargetFilter(Schema):
    level: Literal["company", "team", "rep"] | None = None
    team: RowId | None = None
    user: RowId | None = None
    measure: MeasureValue | None = None
    period: Literal["month", "quarter", "year"] | None = None
    year: int | None = Field(None, ge=1900, le=2999)


class TargetTiersOut(Schema):
    target: Decimal | None
    stretch: Decimal | None
    challenge: Decimal | None
    source: str = Field(..., description="set or rolled_up")
    months: int = Field(..., description="Months inside the period that have a target.")


class TargetResolveOut(Schema):
    measure: str
    period: str
    start: date
    end: date = Field(..., description="Exclusive.")
    level: str
    team_id: int | None
    user_id: int | None
    tiers: TargetTiersOut | None
    set: TargetTiersOut | None = Field(None, description="The target set for the period.")
    rolled_up: TargetTiersOut | None = Field(None, description="The sum of its months.")
    actual: Decimal
    percent: float | None = Field(None, description="actual ÷ target (0.85 = 85%).")
    tier: str | None = Field(None, description="target, stretch or challenge when reached.")


class TargetResolveQuery(Schema):
    measure: MeasureValue
    period: str = Field(..., max_length=10, description="2026-11, 2026Q4 or 2026.")
    user: RowId | None = None
    team: RowId | None = None
    product_line: RowId | None = None


class PerformanceQuery(Schema):
    period: str = Field("", max_length=10, description="2026-11, 2026Q4, 2026; default: "
                        "this month. Ignored when from and to are given.")  # fmt: skip
    date_from: date | None = Field(None, alias="from")
    date_to: date | None = Field(None, alias="to", description="Inclusive.")
    team: RowId | None = None
    rep: RowId | None = None
    group: Literal["rep", "team"] = "rep"
    sort: str = Field("", max_length=40, description="A column, or pct_<measure>.")
    order: Literal["top", "bottom"] = "top"
    limit: int | None = Field(None, ge=1, le=1000)


class PerformanceTargetOut(Schema):
    measure: str
    target: Decimal | None
    stretch: Decimal | None
    challenge: Decimal | None
    source: str
    percent: float | None
    tier: str | None


class PerformanceRatingOut(Schema):
    standard_id: int
    measure: str
    product_line: str
    minimum: Decimal
    actual: Decimal
    meets: bool
    prorated: bool


class PerformanceRowOut(Schema):
    kind: str = Field(..., description="rep, team, company or average")
    name: str
    user_id: int | None
    team_id: int | None
    level: str
    members: int
    signed: Decimal
    collected: Decimal
    won_count: int
    new_opportunities: int
    activities: int
    visits: int
    avg_deal: Decimal | None
    cycle_days: float | None
    win_rate: float | None
    breaches: int | None = None
    targets: list[PerformanceTargetOut]
    ratings: list[PerformanceRatingOut]


class PerformanceOut(Schema):
    period: str
    start: date
    end: date = Field(..., description="Exclusive.")
    group: str
    rows: list[PerformanceRowOut]
    average: PerformanceRowOut | None


class StandardOut(Schema):
    id: int
    measure: str
    period: str
    level: str
    product_line_id: int | None
    minimum: Decimal
    note: str
    version: int


class StandardIn(Schema):
    measure: MeasureValue
    period: Literal["month", "quarter"]
    level: Literal["", "trainee", "junior", "senior", "lead"] = ""
    product_line_id: RowId | None = None
    minimum: Decimal = Field(..., ge=0, max_digits=16, decimal_places=2)
    note: str = Field("", max_length=200)


class StandardPatch(Schema):
    version: int = Field(..., ge=1, le=2**31)
    measure: MeasureValue = None
    period: Literal["month", "quarter"] = None
    level: Literal["", "trainee", "junior", "senior", "lead"] = None
    product_line_id: RowId | None = None
    minimum: Decimal = Field(None, ge=0, max_digits=16, decimal_places=2)
    note: str = Field(None, max_length=200)


class StandardDeleteQuery(Schema):
    version: int | None = Field(None, ge=1, le=2**31)


class TargetDeleteQuery(Schema):
    version: int | None = Field(None, ge=1, le=2**31)


# --- helpers ---------------------------------------------------------------------------


def _visible_user(request, user_id, field="user_id") -> User:
    user = User.objects.visible_to(request.auth).filter(pk=user_id).select_related("team").first()
    if user is None or not services.visible_owner(request.auth, user=user):
        raise ValidationFailed(_("Unknown rep."), field=field)
    return user


def _visible_team(request, team_id, field="team_id") -> Team:
    team = Team.objects.filter(pk=team_id).first()
    if team is None or not services.visible_owner(request.auth, team=team):
        raise ValidationFailed(_("Unknown team."), field=field)
    return team


def _product_line(line_id, field="product_line_id"):
    if line_id is None:
        return None
    line = ProductLine.objects.filter(pk=line_id).first()
    if line is None:
        raise ValidationFailed(_("Unknown product line."), field=field)
    return line


def _tiers(tiers):
    if tiers is None:
        return None
    return {"target": tiers.target, "stretch": tiers.stretch, "challenge": tiers.challenge,
            "source": tiers.source, "months": tiers.months}  # fmt: skip


def _parse(text: str, field="period") -> Period:
    try:
        period = parse_period(text)
    except (ValueError, OverflowError):
        raise ValidationFailed(
            _("Not a period: use 2026Q4, 2026-11 or 2026."), field=field
        ) from None
    if not 1900 <= period.start.year <= 2999:
        raise ValidationFailed(_("Choose a period between 1900 and 2999."), field=field)
    return period


# --- targets ---------------------------------------------------------------------------


@router.get("/targets", response=list[TargetOut])
@paginate(LimitOffsetPagination)
def list_targets(request, filters: Query[TargetFilter]):
    """The targets the caller may see, oldest period first."""
    qs = Target.objects.visible_to(request.auth)
    data = filters.model_dump(exclude_none=True)
    if "level" in data:
        qs = qs.filter(level=data["level"])
    if "team" in data:
        qs = qs.filter(team_id=data["team"])
    if "user" in data:
        qs = qs.filter(user_id=data["user"])
    if "measure" in data:
        qs = qs.filter(measure=data["measure"])
    if "period" in data:
        qs = qs.filter(period=data["period"])
    if "year" in data:
        qs = qs.filter(start__year=data["year"])
    return qs.order_by("start", "period", "measure", "pk")


@router.get("/targets/resolve", response=TargetResolveOut)
def resolve_target(request, query: Query[TargetResolveQuery]):
    """The target of one month, quarter or year (``period``) for a rep (``user``), a team
    (``team``) or the company (neither): the set and the rolled-up tiers, the one that
    applies (set wins), the actual figure, percent and tier reached."""
    if query.user is not None and query.team is not None:
        raise ValidationFailed(_("Give a rep or a team, not both."), field="team")
    period = _parse(query.period)
    if not period.label[:4].isdigit() or "W" in period.label:
        raise ValidationFailed(_("Use a month, quarter or year."), field="period")
    user = _visible_user(request, query.user, "user") if query.user is not None else None
    team = _visible_team(request, query.team, "team") if query.team is not None else None
    if user is None and team is None and not services.visible_owner(request.auth):
        raise ValidationFailed(_("Only managers and admins see the company's targets."),
                               field="user")  # fmt: skip
    line = _product_line(query.product_line, "product_line")
    if line is not None and query.measure not in services.PRODUCT_LINE_MEASURES:
        raise ValidationFailed(_("Activities and visits have no product line."),
                               field="product_line")  # fmt: skip
    direct, rolled = services.target_values(
        measure=query.measure, start=period.start, end=period.end, user=user, team=team,
        product_line=line,
    )  # fmt: skip
    level = TargetLevel.REP if user else TargetLevel.TEAM if team else TargetLevel.COMPANY
    owner = Owner(level, team=team, user=user)
    actual = progress.period_actuals(
        period.start, period.end, owners=owner.members(), product_line=line
    ).get(query.measure, 0)
    tiers = direct or rolled
    return {
        "measure": query.measure, "period": period.label, "start": period.start,
        "end": period.end, "level": level, "team_id": team.pk if team else None,
        "user_id": user.pk if user else None, "tiers": _tiers(tiers), "set": _tiers(direct),
        "rolled_up": _tiers(rolled), "actual": actual,
        "percent": tiers.percent(actual) if tiers else None,
        "tier": tiers.tier_reached(actual) if tiers else None,
    }  # fmt: skip


@router.get("/targets/{target_id}", response=TargetOut)
def get_target(request, target_id: RowId):
    return get_object_or_404(Target.objects.visible_to(request.auth), pk=target_id)


@router.post("/targets", response={201: TargetOut})
def create_target(request, payload: TargetIn):
    """Set a target. 403 when the caller may not set it, 409 when one is already set
    for the same key (change it with PATCH), 422 for tiers out of order."""
    data = payload.model_dump()
    user = _visible_user(request, data["user_id"]) if data["user_id"] is not None else None
    team = _visible_team(request, data["team_id"]) if data["team_id"] is not None else None
    row = services.set_target(
        request.auth, level=data["level"], team=team, user=user, measure=data["measure"],
        period=data["period"], start=data["start"],
        product_line=_product_line(data["product_line_id"]), target=data["target"],
        stretch=data["stretch"], challenge=data["challenge"],
    )  # fmt: skip
    return Status(201, row)


@router.patch("/targets/{target_id}", response=TargetOut)
def update_target(request, target_id: RowId, payload: TargetPatch):
    """Change the tiers; 409 on a stale version."""
    row = get_object_or_404(Target.objects.visible_to(request.auth), pk=target_id)
    data = payload.model_dump(exclude_unset=True)
    version = data.pop("version")
    return services.update_target(row, actor=request.auth, version=version, **data)


@router.delete("/targets/{target_id}", response={204: None})
def delete_target(request, target_id: RowId, query: Query[TargetDeleteQuery]):
    row = get_object_or_404(Target.objects.visible_to(request.auth), pk=target_id)
    services.delete_target(row, actor=request.auth, version=query.version)
    return Status(204, None)


# --- performance -----------------------------------------------------------------------


def _row_out(row: performance.Row) -> dict:
    values = row.values
    return {
        "kind": row.kind, "name": row.name, "user_id": row.user_id, "team_id": row.team_id,
        "level": row.level, "members": row.members,
        **{c: values.get(c) for c in performance.COLUMNS},
        "breaches": values.get("breaches"),
        "targets": [
            {"measure": m, "target": t.target, "stretch": t.stretch, "challenge": t.challenge,
             "source": t.source, "percent": row.percent(m), "tier": row.tier(m)}
            for m, t in row.targets.items()
        ],
        "ratings": [asdict(r) for r in row.ratings],
    }  # fmt: skip


@router.get("/performance", response=PerformanceOut)
def performance_list(request, query: Query[PerformanceQuery]):
    """The performance list the caller may see: a rep gets their own row and their team's
    average; a manager their subtree; an admin everyone (``group=team``: one row per team,
    and the company)."""
    if query.date_from or query.date_to:
        if not (query.date_from and query.date_to):
            raise ValidationFailed(_("Give both dates of a range."), field="to")
        if query.date_from > query.date_to:
            raise ValidationFailed(_("The end date is before the start date."), field="to")
        if not 1900 <= query.date_from.year <= query.date_to.year <= 2998:
            raise ValidationFailed(_("Choose dates between 1900 and 2998."), field="to")
        period = Period(query.date_from, query.date_to + timedelta(days=1),
                        f"{query.date_from.isoformat()}–{query.date_to.isoformat()}")  # fmt: skip
    elif query.period:
        period = _parse(query.period)
    else:
        period = performance.today_period("month")
    team = _visible_team(request, query.team, "team") if query.team is not None else None
    rep = _visible_user(request, query.rep, "rep") if query.rep is not None else None
    valid_sorts = set(performance.COLUMNS) | {f"pct_{m}" for m in Measure.values}
    if query.sort and query.sort not in valid_sorts:
        raise ValidationFailed(_("Unknown column."), field="sort")
    report = performance.build_report(request.auth, period, group=query.group, team=team,
                                      rep=rep)  # fmt: skip
    rows = report.rows
    if query.sort:
        rows = performance.sort_rows(rows, query.sort, descending=query.order == "top",
                                     limit=query.limit)  # fmt: skip
    elif query.limit:
        rows = rows[: query.limit]
    return {
        "period": period.label, "start": period.start, "end": period.end, "group": query.group,
        "rows": [_row_out(r) for r in rows],
        "average": _row_out(report.average) if report.average else None,
    }  # fmt: skip


# --- standards -------------------------------------------------------------------------


@router.get("/standards", response=list[StandardOut])
@paginate(LimitOffsetPagination)
def list_standards(request):
    """Every standard (all users may read them; admins change them)."""
    return Standard.objects.order_by("measure", "period", "level", "pk")


@router.get("/standards/{standard_id}", response=StandardOut)
def get_standard(request, standard_id: RowId):
    return get_object_or_404(Standard, pk=standard_id)


def _standard_fields(data: dict) -> dict:
    if "product_line_id" in data:
        data["product_line"] = _product_line(data.pop("product_line_id"))
    return data


@router.post("/standards", response={201: StandardOut})
def create_standard(request, payload: StandardIn):
    """Add a standard (admins; others 403). 409 when the same one exists."""
    row = services.create_standard(request.auth, **_standard_fields(payload.model_dump()))
    return Status(201, row)


@router.patch("/standards/{standard_id}", response=StandardOut)
def update_standard(request, standard_id: RowId, payload: StandardPatch):
    row = get_object_or_404(Standard, pk=standard_id)
    data = _standard_fields(payload.model_dump(exclude_unset=True))
    version = data.pop("version")
    return services.update_standard(row, actor=request.auth, version=version, **data)


@router.delete("/standards/{standard_id}", response={204: None})
def delete_standard(request, standard_id: RowId, query: Query[StandardDeleteQuery]):
    row = get_object_or_404(Standard, pk=standard_id)
    services.delete_standard(row, actor=request.auth, version=query.version)
    return Status(204, None)
