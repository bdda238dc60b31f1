"""The funnel reports: query results (queries.py) put through the mathematics of
DOMAIN §8 (funnel.py, montecarlo.py). The CLI, the API and the pages all call these, so
they print, return and show the same numbers.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import numpy as np
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.pipeline import summaries
from loudou.pipeline.choices import Status

from . import funnel as fm
from . import montecarlo, queries
from .periods import Period, containing
from .queries import Scope

ZERO = Decimal("0.00")


def _remembering(report):
    """Run ``report(scope, …)`` inside scope.remembering(): its parts read the owner set
    and the pipeline's stages once."""

    @functools.wraps(report)
    def wrapper(scope, *args, **kwargs):
        with scope.remembering():
            return report(scope, *args, **kwargs)

    return wrapper


def _f(value) -> float | None:
    return None if value is None else float(value)


def _money(value) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def _stages(scope: Scope):
    return scope.open_stages()


def _pipeline_stage_ids(scope: Scope):
    """Every stage of the pipeline (archived too) when the scope is the whole pipeline,
    else None: see queries.stay_histograms."""
    if not scope.is_whole_pipeline():
        return None
    return scope.stage_ids()


def stage_stats(scope: Scope, qs=None, *, rows=None) -> list[fm.StageStats]:
    """Funnel statistics per non-terminal stage for the opportunities of ``qs`` (or from
    ``rows`` of queries.furthest_counts / scope_counts already fetched; without either,
    the scope's own opportunities)."""
    stages = _stages(scope)
    if rows is None:
        rows = queries.scope_counts(scope) if qs is None else queries.furthest_counts(qs)
    counts = {(r["furthest_stage_id"], r["status"]): r["n"] for r in rows}
    won = sum(n for (_stage, status), n in counts.items() if status == Status.WON)
    inputs = [
        fm.StageInput(
            key=s.pk,
            name=s.display_name,
            open=counts.get((s.pk, Status.OPEN), 0),
            lost=counts.get((s.pk, Status.LOST), 0),
            won_furthest=counts.get((s.pk, Status.WON), 0),
        )
        for s in stages
    ]
    return fm.funnel(inputs, won, stable_at=settings.LOUDOU_STABLE_THRESHOLD)


def win_rates(scope: Scope, stats: list[fm.StageStats]) -> dict[int, Fraction]:
    """The stage win rates used by the forecast: the configured default, or — when the
    pipeline learns from history — the observed win rate from the stage once stable."""
    rates = {}
    for stage, stat in zip(_stages(scope), stats, strict=True):
        learned = scope.pipeline.learn_win_rates and stat.stable and stat.win_rate_from is not None
        rates[stage.pk] = (
            stat.win_rate_from if learned else Fraction(stage.default_probability) / 100
        )
    return rates


def _days(seconds: int, count: int) -> float | None:
    return round(seconds / count / 86400, 1) if count else None


@_remembering
def funnel_report(scope: Scope, *, stays: bool = True) -> dict:
    """Counts by furthest stage, conversion with n and Wilson interval, win rate from each
    stage, open and weighted amounts, and time in stage (DOMAIN §8). ``stays=False``
    leaves time in stage out (no stays, days None): the dashboard shows none of it."""
    summaries.ensure_fresh()  # catch up with a bulk load first, if one happened
    furthest = queries.scope_counts(scope)
    stats = stage_stats(scope, rows=furthest)
    rates = win_rates(scope, stats)
    open_now = queries.open_by_stage_from_groups(queries.scope_open_groups(scope))
    stays = queries.scope_stays(scope) if stays else {}
    totals = {s: 0 for s in Status.values}
    for row in furthest:
        totals[row["status"]] += row["n"]
    stages = []
    for stage, stat in zip(_stages(scope), stats, strict=True):
        amount = open_now.get(stage.pk, {}).get("amount", ZERO)
        stay = stays.get(stage.pk, {"count": 0, "seconds": 0, "hours": {}})
        median_hours = fm.median_from_histogram(stay["hours"])
        stages.append(
            {
                "id": stage.pk,
                "name": stage.display_name,
                "entered": stat.entered,
                "advanced": stat.advanced,
                "lost": stat.lost,
                "open": stat.open,
                "n": stat.n,
                "conversion": _f(stat.conversion),
                "ci_low": stat.ci_low,
                "ci_high": stat.ci_high,
                "stable": stat.stable,
                "win_rate_from": _f(stat.win_rate_from),
                "win_rate_used": float(rates[stage.pk]),
                "win_rate_learned": rates[stage.pk] != Fraction(stage.default_probability) / 100,
                "open_now": open_now.get(stage.pk, {}).get("count", 0),
                "open_amount": _money(amount),
                "weighted_amount": _money(
                    Decimal(amount)
                    * Decimal(rates[stage.pk].numerator)
                    / Decimal(rates[stage.pk].denominator)
                ),
                "stays": stay["count"],
                "days_mean": _days(stay["seconds"], stay["count"]),
                "days_median": round(median_hours / 24, 1) if median_hours is not None else None,
            }
        )
    return {
        "pipeline": scope.pipeline.display_name,
        "stable_at": settings.LOUDOU_STABLE_THRESHOLD,
        "stages": stages,
        "won": totals[Status.WON],
        "lost": totals[Status.LOST],
        "open": totals[Status.OPEN],
    }


def _rep_funnels(scope: Scope):
    """What the per-rep report and the dashboard's weak steps share: the pipeline's open
    stages, their names, the team's pooled stats, and per rep row (owner id) their won
    count, their stats and the keys of their weak steps."""
    stages = _stages(scope)
    team = stage_stats(scope, rows=queries.scope_counts(scope, team=True))
    by_owner: dict[int, dict] = {}
    for row in queries.scope_counts(scope, by_owner=True):
        by_owner.setdefault(row["owner_id"], {})[(row["furthest_stage_id"], row["status"])] = row[
            "n"
        ]
    names = {s.pk: s.display_name for s in stages}  # once, not per rep (a language lookup)
    if not (getattr(scope.user, "sees_everything", False) or scope.user.managed_team_path):
        # A rep compares themself with the team; deals merely shared with them do not
        # bring their owners in as rows.
        by_owner = {k: v for k, v in by_owner.items() if k == scope.user.pk}
    funnels = {}
    for owner_id, counts in by_owner.items():
        won = sum(n for (_s, status), n in counts.items() if status == Status.WON)
        inputs = [
            fm.StageInput(
                key=s.pk,
                name=names[s.pk],
                open=counts.get((s.pk, Status.OPEN), 0),
                lost=counts.get((s.pk, Status.LOST), 0),
            )
            for s in stages
        ]
        stats = fm.funnel(inputs, won, stable_at=settings.LOUDOU_STABLE_THRESHOLD)
        funnels[owner_id] = (won, stats, set(fm.weak_steps(stats, team)))
    return stages, names, team, funnels


@_remembering
def rep_weak_steps(scope: Scope) -> dict:
    """For each rep row of reps_report: the names of their weak steps in pipeline order
    (the dashboard's alerts, without the rest of the per-rep report)."""
    summaries.ensure_fresh()  # catch up with a bulk load first, if one happened
    stages, names, _team, funnels = _rep_funnels(scope)
    return {owner_id: [names[s.pk] for s in stages if s.pk in weak]
            for owner_id, (_won, _stats, weak) in funnels.items()}  # fmt: skip


@_remembering
def reps_report(scope: Scope) -> dict:
    """Each rep's conversion per stage against the team's pooled rate, with the weak
    steps flagged (DOMAIN §8 rep vs team) and the shape of their open funnel."""
    from loudou.org.models import User

    summaries.ensure_fresh()  # catch up with a bulk load first, if one happened
    stages, names, team, funnels = _rep_funnels(scope)
    open_now: dict[int, dict[int, int]] = {}
    for row in queries.scope_open(scope, by_owner=True, bands=False):
        open_now.setdefault(row["owner_id"], {})[row["stage_id"]] = row["n"]
    owners = User.objects.only("pk", "name", "first_name", "last_name", "username").in_bulk(
        [o for o in funnels if o is not None]
    )
    reps = []
    for owner_id, (won, stats, weak) in funnels.items():
        current = [open_now.get(owner_id, {}).get(s.pk, 0) for s in stages]
        owner = owners.get(owner_id)
        reps.append(
            {
                "owner_id": owner_id,
                "name": str(owner) if owner else "—",
                "username": owner.username if owner else "",
                "won": won,
                "stages": [
                    {
                        "id": s.pk,
                        "name": names[s.pk],
                        "n": st.n,
                        "conversion": _f(st.conversion),
                        "ci_low": st.ci_low,
                        "ci_high": st.ci_high,
                        "team": _f(t.conversion),
                        "weak": s.pk in weak,
                        "open_now": c,
                    }
                    for s, st, t, c in zip(stages, stats, team, current, strict=True)
                ],
                "shape": fm.shape(
                    current, [st.conversion for st in stats], team[0].conversion if team else None
                ),
            }
        )
    reps.sort(key=lambda r: r["name"])
    return {
        "pipeline": scope.pipeline.display_name,
        "team": [
            {"id": s.pk, "name": s.display_name, "conversion": _f(t.conversion), "n": t.n}
            for s, t in zip(stages, team, strict=True)
        ],
        "reps": reps,
    }


def _local_days(start: datetime, until: datetime):
    """The local dates [first, last) that hold the moments [start, until]: sales dates
    (an order's sign date, a payment's day) count through the day of ``until``."""
    first = timezone.localtime(start).date()
    last = timezone.localtime(until).date() + timedelta(days=1)
    return first, max(first, last)


def completed_revenue(scope: Scope, qs, start: datetime, until: datetime, *, won=None) -> dict:
    """Completed sales revenue of the scope from ``start`` to ``until`` (DOMAIN §8), on
    the company's basis (``LOUDOU_COMPLETED_BASIS``):

    - signed: the scope's deals won in [start, until) plus the out-of-funnel orders of the
      scope's owners signed up to that day (loudou.sales.queries). A won deal's contract
      is not an out-of-funnel order, so no win counts twice;
    - collected: the payments received by the scope's owners
      (``completed_by_owner(basis="collected")``), which cover funnel deals and orders.

    ``won_in_funnel`` and ``out_of_funnel`` are the two parts on the signed basis."""
    from loudou.sales import queries as sales

    first, last = _local_days(start, until)
    owners = queries.scope_owners(scope)
    line = scope.product_line_id
    out = sum(sales.out_of_funnel_by_owner(first, last, owners=owners, product_line=line)
              .values(), ZERO)  # fmt: skip
    if won is None:  # the funnel deals won in [start, until), unless already read
        won = queries.won_between(qs, start, until)["amount"]
    basis = settings.LOUDOU_COMPLETED_BASIS
    if basis == "signed":
        completed = won + out
    else:
        completed = sum(sales.completed_by_owner(first, last, basis=basis, owners=owners,
                                                 product_line=line).values(), ZERO)  # fmt: skip
    return {"completed": completed, "won_in_funnel": won, "out_of_funnel": out, "basis": basis}


def scope_target(scope: Scope, period: Period) -> tuple[Decimal | None, str | None]:
    """The target of the scope for ``period`` from the targets module: the rep's (owner
    filter or a rep's own view), the team's (team filter or a manager's view) or the
    company's (an admin without filters), on the measure of the completed basis. Returns
    (amount, "set" | "rolled_up") or (None, None) — also for a week, which has no target."""
    from loudou.core.exceptions import ValidationFailed
    from loudou.targets.models import Measure
    from loudou.targets.services import target_value

    measure = Measure.SIGNED if settings.LOUDOU_COMPLETED_BASIS == "signed" else Measure.COLLECTED
    try:
        tiers = target_value(measure=measure, start=period.start, end=period.end,
                             product_line=scope.product_line_id,
                             **queries.target_owner(scope))  # fmt: skip
    except ValidationFailed:  # not exactly a month, quarter or year
        return None, None
    if tiers is None or tiers.target is None:
        return None, None
    return tiers.target, tiers.source


def _target(scope, period, given):
    if given is not None:
        return given, "given"
    return scope_target(scope, period)


def _forecast_at(scope: Scope, qs, stats, moment: datetime, period: Period, *,
                 current=None, stage_ids=None, won=None) -> dict:  # fmt: skip
    """Completed revenue in the period up to ``moment`` plus the weighted pipeline as it
    stood at ``moment`` (rebuilt from history when the moment is in the past).
    ``current``: the open pipeline now per stage, if already read."""
    start, _end = period.bounds()
    rates = win_rates(scope, stats)
    done = completed_revenue(scope, qs, start, moment, won=won)
    if stage_ids is None:
        stage_ids = scope.stage_ids()
    state = None
    if current is not None:  # from the maintained deltas when they can answer
        state = queries.open_at(scope, moment, stages=stage_ids, current=current)
    if state is None:
        state = queries.state_at(qs, moment, stages=stage_ids, current=current,
                                 whole=scope.is_whole_pipeline())  # fmt: skip
    open_amounts = {k: v["amount"] for k, v in state["open"].items()}
    open_amounts = {k: v for k, v in open_amounts.items() if k in rates}
    result = fm.forecast(done["completed"], open_amounts, rates)
    return {**done, **result}


@_remembering
def forecast_report(
    scope: Scope,
    period: Period,
    *,
    as_of: datetime | None = None,
    target: Decimal | None = None,
    runs: int = 2000,
    run_rate: bool = False,
) -> dict:
    """Forecast 销售预计 = completed + weighted pipeline, coverage, sales progress with its
    two terms, and a Monte Carlo band (P10/P50/P90) of the period's revenue.

    Completed revenue includes out-of-funnel orders (completed_revenue). Their run-rate
    for the rest of the period (to date ÷ elapsed fraction × remaining fraction) is always
    reported as its own line; with ``run_rate`` the forecast adds it. The target is the
    one given, else the scope's target of the period (``target_source`` says which);
    sales progress divides by the quarter's target."""
    summaries.ensure_fresh()  # catch up with a bulk load first, if one happened
    now = timezone.now()
    as_of = min(as_of or now, now)
    qs = scope.opportunities()
    counts = queries.scope_counts(scope)
    stats = stage_stats(scope, rows=counts)
    groups = queries.scope_open_groups(scope)  # the open deals, read once
    open_now = queries.open_by_stage_from_groups(groups)
    stage_ids = scope.stage_ids()
    week_ago = as_of - timedelta(days=7)
    won_now, won_before = queries.won_amounts_until(qs, period.bounds()[0], [as_of, week_ago])
    current = _forecast_at(scope, qs, stats, as_of, period, current=open_now,
                           stage_ids=stage_ids, won=won_now)  # fmt: skip
    before = _forecast_at(scope, qs, stats, week_ago, period, current=open_now,
                          stage_ids=stage_ids, won=won_before)  # fmt: skip
    start, end = period.bounds()
    span = Fraction(int((end - start).total_seconds()))
    elapsed = min(max(Fraction(int((as_of - start).total_seconds())) / span, Fraction(0)), 1)
    oof_run_rate = fm.run_rate(current["out_of_funnel"], elapsed, 1 - elapsed)
    target, target_source = _target(scope, period, target)
    try:
        quarter = containing("quarter", timezone.localtime(as_of).date())
    except ValueError:  # a year outside 1000–9999 has no quarter label
        quarter = None
    if quarter is not None and period.label.upper() == quarter.label:
        quarter_target, quarter_source = target, target_source
    elif quarter is not None:
        quarter_target, quarter_source = scope_target(scope, quarter)
    else:
        quarter_target, quarter_source = None, None
    progress = fm.progress(
        current["forecast"],
        before["forecast"],
        current["completed"],
        before["completed"],
        quarter_target,
    )
    if run_rate:  # an option: the run-rate joins the forecast (not its weekly progress)
        current["forecast"] += oof_run_rate
    band = _monte_carlo(scope, qs, stats, as_of, period, current["completed"], runs,
                        groups=groups)  # fmt: skip
    return {
        "pipeline": scope.pipeline.display_name,
        "period": period.label,
        "as_of": as_of.isoformat(),
        "target": None if target is None else _money(target),
        "target_source": target_source,
        "quarter_target": None if quarter_target is None else _money(quarter_target),
        "quarter_target_source": quarter_source,
        "completed_basis": current["basis"],
        "completed": _money(current["completed"]),
        "won_in_funnel": _money(current["won_in_funnel"]),
        "out_of_funnel": _money(current["out_of_funnel"]),
        "out_of_funnel_run_rate": _money(oof_run_rate),
        "run_rate_included": run_rate,
        "weighted_pipeline": _money(current["weighted_pipeline"]),
        "forecast": _money(current["forecast"]),
        "coverage": _f(fm.coverage(current["forecast"], target)),
        "progress": _f(progress["progress"]),
        "progress_forecast_delta": _money(progress["forecast_delta"]),
        "progress_sales_delta": _money(progress["sales_delta"]),
        "forecast_last_week": _money(before["forecast"]),
        **{k: _money(band[k]) for k in ("p10", "p50", "p90")},
        "simulations": band["runs"],
        "velocity_per_day": _velocity(counts, stats),
    }


def _stay_samples(stays: dict, stages) -> list:
    """Per stage, stay lengths in days drawn from the hour histogram (weights kept): each
    hour's middle, (hour + 0.5) / 24 days, repeated max(1, round(count × scale)) times
    (round half to even, as Python's round), hours in order (the same draws whatever the
    order the rows came in); scale keeps about 5,000 samples per stage."""
    samples = []
    for stage in stages:
        hours = sorted(stays.get(stage.pk, {}).get("hours", {}).items())
        hour_array = np.array([hour for hour, _c in hours], dtype=np.float64)
        samples.append(_samples_of(hour_array, np.array([c for _h, c in hours], dtype=np.int64)))
    return samples


def _samples_of(hours, counts):
    """One stage's samples from its hours (ascending) and their counts (_stay_samples)."""
    total = int(counts.sum())
    scale = min(1.0, 5000 / total) if total else 1.0
    middles = (hours.astype(np.float64) + 0.5) / 24
    repeats = np.maximum(1, np.round(counts.astype(np.float64) * scale)).astype(np.int64)
    return np.repeat(middles, repeats)


def _stay_samples_from_rows(rows, stages) -> list:
    """_stay_samples from plain histogram rows (stage, hour, count) in (stage, hour)
    order (queries.scope_stay_rows): the same samples, no dictionaries."""
    table = np.array(rows, dtype=np.int64).reshape(-1, 3)
    samples = []
    for stage in stages:
        mine = table[table[:, 0] == stage.pk]
        samples.append(_samples_of(mine[:, 1], mine[:, 2]))
    return samples


def _win_from(stages, stats) -> dict[int, Fraction]:
    return {s.pk: (st.win_rate_from or Fraction(0)) for s, st in zip(stages, stats, strict=True)}


def _monte_carlo(scope, qs, stats, as_of, period, completed, runs, *, stays_before=None,
                 groups=None):  # fmt: skip
    stages = _stages(scope)
    index = {s.pk: i for i, s in enumerate(stages)}
    win_from = {
        s.pk: (st.win_rate_from or Fraction(0)) for s, st in zip(stages, stats, strict=True)
    }
    _start, end = period.bounds()
    days_left = max((end - as_of).total_seconds() / 86400, 0.0)
    rows = queries.scope_stay_rows(scope) if stays_before is None else None
    if rows is not None:  # the summaries' rows as they are: no dictionaries built
        samples = _stay_samples_from_rows(rows, stages)
    else:
        if stays_before is None:
            stays = queries.scope_stays(scope)
        else:
            stays = queries.stay_histograms(qs, before=stays_before,
                                            stages=_pipeline_stage_ids(scope))  # fmt: skip
        samples = _stay_samples(stays, stages)
    close = {
        s.pk: montecarlo.close_within(samples, index[s.pk], days_left, seed=index[s.pk])
        for s in stages
    }
    groups = [
        (g["count"], g["amount"] / g["count"], _p(win_from, close, g["stage_id"]))
        for g in (queries.open_amount_groups(qs) if groups is None else groups)
        if g["stage_id"] in index
    ]
    return montecarlo.simulate_period(groups, completed=completed, runs=runs, seed=0)


def _p(win_from, close, stage_id) -> float:
    """Probability that one open deal of the stage is won within the period."""
    return float(win_from[stage_id]) * close[stage_id]


def _velocity(counts, stats) -> str | None:
    """Sales velocity = open count × average won amount × win rate ÷ average cycle days,
    from the scope's counts (queries.scope_counts: the won deals' amounts and cycles)."""
    won = queries.won_totals(counts)
    open_count = sum(r["n"] for r in counts if r["status"] == Status.OPEN)
    first = stats[0] if stats else None
    if not won["count"] or first is None or first.win_rate_from is None or not won["cycle_seconds"]:
        return None
    avg_amount = won["amount"] / won["count"]
    avg_days = Decimal(won["cycle_seconds"]) / won["count"] / 86400
    value = fm.velocity(open_count, avg_amount, first.win_rate_from, avg_days)
    return None if value is None else _money(value)


@_remembering
def reverse_report(
    scope: Scope,
    target: Decimal | None = None,
    *,
    avg_deal: Decimal | None = None,
    period: Period | None = None,
    completed: Decimal | None = None,
) -> dict:
    """The reverse funnel: how many opportunities each stage needs to reach ``target``
    given what is already completed in the period (completed_revenue: out-of-funnel orders
    included) and the observed conversions. Without ``target``, the scope's target of the
    period; when there is none either, ``remaining`` and the counts are None.
    ``completed``: the period's completed revenue up to now, when the caller has it."""
    summaries.ensure_fresh()  # catch up with a bulk load first, if one happened
    qs = scope.opportunities()
    counts = queries.scope_counts(scope)
    stats = stage_stats(scope, rows=counts)
    period = period or containing("quarter", timezone.localdate())
    start, end = period.bounds()
    until = min(end, timezone.now())
    if completed is None:  # unless the caller read it already (the dashboard)
        completed = (completed_revenue(scope, qs, start, until)["completed"] if until > start
                     else ZERO)  # fmt: skip
    target, target_source = _target(scope, period, target)
    if avg_deal is None:
        won = queries.won_totals(counts)
        avg_deal = won["amount"] / won["count"] if won["count"] else None
    stages = _stages(scope)
    # What a stage holds today (current stage, as on the board) is what can be replenished.
    current = queries.open_by_stage_from_groups(queries.scope_open_groups(scope))
    open_now = [current.get(s.pk, {}).get("count", 0) for s in stages]
    head = {
        "pipeline": scope.pipeline.display_name,
        "target": None if target is None else _money(target),
        "target_source": target_source,
        "completed": _money(completed),
        "period": period.label,
    }
    if not avg_deal or target is None:
        return {
            **head,
            "remaining": None if target is None else _money(max(target - completed, ZERO)),
            "wins_needed": None,
            "avg_deal": None if not avg_deal else _money(avg_deal),
            "stages": [
                {"name": s.display_name, "needed": None, "open": o, "replenish": False}
                for s, o in zip(stages, open_now, strict=True)
            ],
        }
    plan = fm.reverse_funnel(
        target, completed, Decimal(avg_deal), [st.conversion for st in stats], open_now
    )
    return {
        **head,
        "remaining": _money(plan["remaining"]),
        "wins_needed": float(plan["wins_needed"]),
        "avg_deal": _money(avg_deal),
        "stages": [
            {
                "name": s.display_name,
                "needed": needed,
                "open": o,
                "replenish": bool(r),
                "conversion": _f(st.conversion),
            }
            for s, st, needed, o, r in zip(
                stages, stats, plan["needed"], open_now, plan["replenish"], strict=True
            )
        ],
    }


def backtest(scope: Scope, periods: list[Period], *, runs: int = 1000) -> dict:
    """Replay past periods: from the pipeline open at each period's start (and only the
    history known then), simulate the period's revenue; report how often what was then
    actually won from that pipeline fell inside the P10–P90 band."""
    qs = scope.opportunities()
    spans = [period.bounds() for period in periods]
    starts = [start for start, _end in spans]
    # what every period needs from the whole history, in one pass each
    learned = queries.furthest_counts_before(qs, starts)
    stays = queries.stay_histograms_before(qs, starts)
    actuals = queries.won_amounts_between_changes(qs, spans)
    rows = []
    for i, period in enumerate(periods):
        start = starts[i]
        known = qs.filter(created_at__lt=start)
        stats = stage_stats(scope, rows=learned[i])
        state = queries.state_at(known, start)
        band = _monte_carlo_state(scope, stays[i], stats, start, period, state, runs)
        actual = actuals[i]
        rows.append(
            {
                "period": period.label,
                "open_at_start": sum(v["count"] for v in state["open"].values()),
                "p10": _money(band["p10"]),
                "p50": _money(band["p50"]),
                "p90": _money(band["p90"]),
                "actual": _money(actual),
                "inside": band["p10"] <= actual <= band["p90"],
            }
        )
    inside = sum(r["inside"] for r in rows)
    return {
        "pipeline": scope.pipeline.display_name,
        "periods": rows,
        "inside": inside,
        "total": len(rows),
        "hit_rate": inside / len(rows) if rows else None,
    }


def _monte_carlo_state(scope, stays, stats, start, period, state, runs):
    """Monte Carlo from a rebuilt past state (groups per stage, one band each)."""
    stages = _stages(scope)
    index = {s.pk: i for i, s in enumerate(stages)}
    win_from = {
        s.pk: (st.win_rate_from or Fraction(0)) for s, st in zip(stages, stats, strict=True)
    }
    _s, end = period.bounds()
    days_left = (end - start).total_seconds() / 86400
    samples = _stay_samples(stays, stages)
    groups = []
    for stage_id, v in state["open"].items():
        if stage_id in index and v["count"]:
            p = float(win_from[stage_id]) * montecarlo.close_within(
                samples, index[stage_id], days_left, seed=index[stage_id]
            )
            groups.append((v["count"], v["amount"] / v["count"], p))
    return montecarlo.simulate_period(groups, completed=ZERO, runs=runs, seed=0)


def last_periods(kind: str, count: int) -> list[Period]:
    """The ``count`` complete periods of ``kind`` before the current one, oldest first."""
    current = containing(kind, timezone.localdate())
    periods = []
    period = current
    for _i in range(count):
        period = period.previous()
        periods.append(period)
    return list(reversed(periods))


DIMENSIONS = ("region", "industry", "product_line", "source", "team", "rep")


def _growth(now: Decimal, before: Decimal) -> float | None:
    """(now − before) ÷ before; None when there was nothing before."""
    if not before:
        return None
    return float((now - before) / before)


@_remembering
def breakdown_report(scope: Scope, dimension: str, period: Period) -> dict:
    """Won amount and count per region, industry, product line, source, team or rep in
    ``period``, with growth against the period before (month-on-month for a month,
    quarter-on-quarter for a quarter …) and against the same period a year earlier."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r} (use {', '.join(DIMENSIONS)})")
    summaries.ensure_fresh()  # catch up with a bulk load first, if one happened
    previous, year_ago = period.previous(), period.year_before()
    read: dict[tuple, dict] = {}  # a year's period before is also its year ago: read once

    def rows_of(p: Period) -> dict:
        key = p.bounds()
        if key not in read:  # whole months from WonCount (queries.scope_breakdown)
            read[key] = {r["key"]: r for r in queries.scope_breakdown(scope, dimension, p)}
        return read[key]

    now_rows, before_rows, year_rows = rows_of(period), rows_of(previous), rows_of(year_ago)
    empty = {"count": 0, "amount": ZERO}
    rows = []
    for key in sorted(set(now_rows) | set(before_rows) | set(year_rows)):
        now, before = now_rows.get(key, empty), before_rows.get(key, empty)
        year = year_rows.get(key, empty)
        rows.append(
            {
                "key": key,
                "won": now["count"],
                "amount": _money(now["amount"]),
                "previous_amount": _money(before["amount"]),
                "year_ago_amount": _money(year["amount"]),
                "growth_previous": _growth(now["amount"], before["amount"]),
                "growth_year": _growth(now["amount"], year["amount"]),
            }
        )
    rows.sort(key=lambda r: Decimal(r["amount"]), reverse=True)
    total = sum((Decimal(r["amount"]) for r in rows), ZERO)
    total_before = sum((Decimal(r["previous_amount"]) for r in rows), ZERO)
    total_year = sum((Decimal(r["year_ago_amount"]) for r in rows), ZERO)
    return {
        "pipeline": scope.pipeline.display_name,
        "dimension": dimension,
        "period": period.label,
        "previous": previous.label,
        "year_ago": year_ago.label,
        "rows": rows,
        "total": _money(total),
        "growth_previous": _growth(total, total_before),
        "growth_year": _growth(total, total_year),
    }


def _rate_fields(prefix: str, rate: dict) -> dict:
    return {
        prefix: _f(rate["rate"]),
        f"{prefix}_n": rate["n"],
        f"{prefix}_ci_low": rate["ci_low"],
        f"{prefix}_ci_high": rate["ci_high"],
        f"{prefix}_stable": rate["stable"],
    }


def _source_row(key: str, name: str, lead: dict, opp: dict, stable_at: int) -> dict:
    lead_rate = fm.resolved_rate(lead["converted"], lead["disqualified"], stable_at=stable_at)
    opp_rate = fm.resolved_rate(opp["won"], opp["lost"], stable_at=stable_at)
    return {
        "source": key,
        "name": name,
        "leads": lead["leads"],
        "converted": lead["converted"],
        "disqualified": lead["disqualified"],
        "open_leads": lead["leads"] - lead["converted"] - lead["disqualified"],
        **_rate_fields("lead_conversion", lead_rate),
        "leads_into_pipeline": lead["into_pipeline"],
        "leads_won": lead["won"],
        "leads_won_amount": _money(lead["won_amount"]),
        "opportunities": opp["opportunities"],
        "won": opp["won"],
        "lost": opp["lost"],
        "open": opp["open"],
        "won_amount": _money(opp["won_amount"]),
        **_rate_fields("win_rate", opp_rate),
    }


def leads_report(scope: Scope) -> dict:
    """Lead conversion by source (DOMAIN §8): leads → opportunities (converted against
    disqualified; leads still being worked do not count yet, as in the funnel) and
    opportunities → orders (won against lost), each with n, its 95% interval and the
    "not yet stable" mark; plus how many of a source's leads became a won deal of the
    pipeline. Leads are narrowed like the opportunities except by pipeline (a lead has
    none until it is converted)."""
    from loudou.customers.choices import Source

    stable_at = settings.LOUDOU_STABLE_THRESHOLD
    lead_rows = queries.scope_leads(scope)
    opp_rows = queries.scope_sources(scope)
    no_leads = {"leads": 0, "converted": 0, "disqualified": 0, "into_pipeline": 0, "won": 0,
                "won_amount": ZERO}  # fmt: skip
    no_opps = {"opportunities": 0, "won": 0, "lost": 0, "open": 0, "won_amount": ZERO}
    labels = dict(Source.choices)
    keys = [k for k in labels if k in lead_rows or k in opp_rows]
    keys += sorted(k for k in set(lead_rows) | set(opp_rows) if k not in labels)
    rows = [
        _source_row(
            key,
            str(labels[key]) if key in labels else (key or _("No source")),
            lead_rows.get(key, no_leads),
            opp_rows.get(key, no_opps),
            stable_at,
        )  # fmt: skip
        for key in keys
    ]

    def total(rows_by_key, empty):
        summed = dict(empty)
        for row in rows_by_key.values():
            for name, value in row.items():
                summed[name] += value
        return summed

    return {
        "pipeline": scope.pipeline.display_name,
        "stable_at": stable_at,
        "sources": rows,
        "total": _source_row(
            "",
            str(_("All sources")),
            total(lead_rows, no_leads),
            total(opp_rows, no_opps),
            stable_at,
        ),  # fmt: skip
    }
