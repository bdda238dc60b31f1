"""Analytics API: the same payloads as ``loudou report`` (funnel, reps, forecast,
reverse, breakdown, leads), computed over what the caller may see."""

from datetime import date, datetime, time
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from loudou.core.exceptions import ValidationFailed

from . import reports
from .periods import containing, parse_period
from .scope import ScopeError, build_scope

router = Router(tags=["analytics"])


class ScopeParams(Schema):
    pipeline: str | None = Field(None, description="Pipeline id or name (中文 or English).")
    date_from: date | None = Field(None, alias="from", description="Created on or after.")
    date_to: date | None = Field(None, alias="to", description="Created on or before.")
    team: str | None = Field(None, description="Team id or name (its whole subtree).")
    owner: str | None = Field(None, description="User id or username.")
    product_line: int | None = None


SCOPE_FIELDS = ("pipeline", "date_from", "date_to", "team", "owner", "product_line")


class ForecastParams(ScopeParams):
    period: str | None = Field(None, description="2026Q4, 2026-11, 2026W47 or 2026.")
    as_of: date | None = None
    target: Decimal | None = Field(
        None, ge=0, max_digits=16, decimal_places=2,
        description="Overrides the target set for the scope in Targets.",
    )  # fmt: skip
    run_rate: bool = Field(False, description="Add the out-of-funnel run-rate to the forecast.")


class ReverseParams(ScopeParams):
    target: Decimal | None = Field(
        None, ge=0, max_digits=16, decimal_places=2,
        description="Default: the target set for the scope and period in Targets.",
    )  # fmt: skip
    avg_deal: Decimal | None = Field(None, gt=0, max_digits=16, decimal_places=2)
    period: str | None = None


class BreakdownParams(ScopeParams):
    by: str = Field("region", description="region, industry, product_line, source, team or rep")
    period: str | None = Field(None, description="2026Q4, 2026-11, 2026W47 or 2026.")


class BreakdownRow(Schema):
    key: str
    won: int
    amount: str
    previous_amount: str
    year_ago_amount: str
    growth_previous: float | None
    growth_year: float | None


class BreakdownOut(Schema):
    pipeline: str
    dimension: str
    period: str
    previous: str
    year_ago: str
    rows: list[BreakdownRow]
    total: str
    growth_previous: float | None
    growth_year: float | None


class FunnelStageOut(Schema):
    id: int
    name: str
    entered: int
    advanced: int
    lost: int
    open: int
    n: int
    conversion: float | None
    ci_low: float | None
    ci_high: float | None
    stable: bool
    win_rate_from: float | None
    win_rate_used: float
    win_rate_learned: bool
    open_now: int
    open_amount: str
    weighted_amount: str
    stays: int
    days_mean: float | None
    days_median: float | None


class FunnelOut(Schema):
    pipeline: str
    stable_at: int
    stages: list[FunnelStageOut]
    won: int
    lost: int
    open: int


class ForecastOut(Schema):
    pipeline: str
    period: str
    as_of: str
    target: str | None
    target_source: str | None = Field(description="given, set, rolled_up or null (none)")
    quarter_target: str | None
    quarter_target_source: str | None
    completed_basis: str
    completed: str
    won_in_funnel: str
    out_of_funnel: str
    out_of_funnel_run_rate: str
    run_rate_included: bool
    weighted_pipeline: str
    forecast: str
    coverage: float | None
    progress: float | None
    progress_forecast_delta: str
    progress_sales_delta: str
    forecast_last_week: str
    p10: str
    p50: str
    p90: str
    simulations: int
    velocity_per_day: str | None


class ReverseStageOut(Schema):
    name: str
    needed: int | None
    open: int
    replenish: bool
    conversion: float | None = None


class ReverseOut(Schema):
    pipeline: str
    target: str | None
    target_source: str | None = Field(description="given, set, rolled_up or null (none)")
    remaining: str | None
    wins_needed: float | None
    avg_deal: str | None
    completed: str
    period: str
    stages: list[ReverseStageOut]


class SourceOut(Schema):
    source: str = Field(description="Source code; empty for leads and deals without one.")
    name: str
    leads: int
    converted: int
    disqualified: int
    open_leads: int
    lead_conversion: float | None = Field(description="converted ÷ (converted + disqualified)")
    lead_conversion_n: int
    lead_conversion_ci_low: float | None
    lead_conversion_ci_high: float | None
    lead_conversion_stable: bool
    leads_into_pipeline: int
    leads_won: int
    leads_won_amount: str
    opportunities: int
    won: int
    lost: int
    open: int
    won_amount: str
    win_rate: float | None = Field(description="won ÷ (won + lost)")
    win_rate_n: int
    win_rate_ci_low: float | None
    win_rate_ci_high: float | None
    win_rate_stable: bool


class LeadsOut(Schema):
    pipeline: str
    stable_at: int
    sources: list[SourceOut]
    total: SourceOut


class RepStageOut(Schema):
    id: int
    name: str
    n: int
    conversion: float | None
    ci_low: float | None
    ci_high: float | None
    team: float | None
    weak: bool
    open_now: int


class RepOut(Schema):
    owner_id: int | None
    name: str
    username: str
    won: int
    stages: list[RepStageOut]
    shape: dict


class RepsOut(Schema):
    pipeline: str
    team: list[dict]
    reps: list[RepOut]


def _scope(request, params: ScopeParams):
    try:
        return build_scope(request.auth, **params.dict(include=set(SCOPE_FIELDS)))
    except ScopeError as exc:
        raise ValidationFailed(str(exc), field=exc.field) from exc


def _period(text: str | None):
    if not text:
        return containing("quarter", timezone.localdate())
    try:
        return parse_period(text)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="period") from exc


@router.get("/analytics/funnel", response=FunnelOut, summary="Funnel by furthest stage")
def funnel(request, params: Query[ScopeParams]):
    return reports.funnel_report(_scope(request, params))


@router.get("/analytics/reps", response=RepsOut, summary="Each rep against the team")
def reps(request, params: Query[ScopeParams]):
    return reports.reps_report(_scope(request, params))


@router.get("/analytics/forecast", response=ForecastOut, summary="Forecast and coverage")
def forecast(request, params: Query[ForecastParams]):
    moment = None
    if params.as_of is not None and not 1900 <= params.as_of.year <= 2999:
        raise ValidationFailed(_("The date must lie between 1900 and 2999."), field="as_of")
    if params.as_of is not None:
        tz = timezone.get_current_timezone()
        moment = datetime.combine(params.as_of, time.max, tzinfo=tz)
    return reports.forecast_report(
        _scope(request, params), _period(params.period), as_of=moment, target=params.target,
        run_rate=params.run_rate,
    )  # fmt: skip


@router.get("/analytics/reverse", response=ReverseOut, summary="Reverse funnel planner")
def reverse(request, params: Query[ReverseParams]):
    return reports.reverse_report(
        _scope(request, params), params.target, avg_deal=params.avg_deal,
        period=_period(params.period),
    )  # fmt: skip


@router.get("/analytics/leads", response=LeadsOut, summary="Lead conversion by source")
def leads(request, params: Query[ScopeParams]):
    return reports.leads_report(_scope(request, params))


@router.get("/analytics/breakdown", response=BreakdownOut, summary="Breakdown with growth")
def breakdown(request, params: Query[BreakdownParams]):
    if params.by not in reports.DIMENSIONS:
        raise ValidationFailed(_("Unknown breakdown: %(by)s.") % {"by": params.by}, field="by")
    return reports.breakdown_report(_scope(request, params), params.by, _period(params.period))
