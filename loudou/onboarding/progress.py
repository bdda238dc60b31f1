"""Where a new rep stands on the roadmap: pure functions over plain data, no ORM.

:mod:`queries` fetches small aggregates (per owner and week) and builds the
:class:`Facts` of each rep; :func:`rep_progress` turns them and the configured bands into
the roadmap the pages, the API and the CLI show. The rules (docs/onboarding.md):

- The training band runs ``duration_weeks`` from the hire date; the quota clock ("month
  0") starts when it ends; the month bands are spans of that clock; after the last band
  the rep has graduated.
- Weekly standards are judged on calendar weeks (Monday–Sunday). The current week is
  ``met`` or still ``open``; a finished week is ``met`` or ``behind``. Each past week is
  judged against the band the rep was in on that week's Monday.
- A goal is due at the end of its band. Until then it is ``behind`` when the actual is
  below the pro-rata share of the goal for the whole weeks already elapsed in the band,
  ``open`` otherwise (so nobody is behind in the first week of a band).
- Flow metrics (activities, accounts, sales) as a goal count since the hire date.
- Coverage and quota done need a quota: without one the goal says ``no_quota``.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from .models import FLOW_METRICS, HOUR_METRICS, PERCENT_METRICS, Comparison, Metric, Scope

HISTORY_WEEKS = 4  # finished weeks shown besides the current one

MET, BEHIND, OPEN, NO_QUOTA = "met", "behind", "open", "no_quota"

NO_HIRE_DATE, NOT_STARTED, ONBOARDING, GRADUATED = (
    "no_hire_date",
    "not_started",
    "onboarding",
    "graduated",
)


@dataclass(frozen=True)
class StandardSpec:
    """A standard as plain data (from :class:`models.Standard`)."""

    id: int
    metric: str
    scope: str
    value: Decimal
    comparison: str = Comparison.AT_LEAST
    value_max: Decimal | None = None
    stage_id: int | None = None
    min_probability: Decimal | None = None
    label: str = ""


@dataclass(frozen=True)
class BandSpec:
    """A band as plain data (from :class:`models.Band`)."""

    id: int
    name: str
    is_training: bool = False
    duration_weeks: int | None = None
    from_month: int | None = None
    to_month: int | None = None
    standards: tuple[StandardSpec, ...] = ()

    def weekly(self):
        return [s for s in self.standards if s.scope == Scope.WEEKLY]

    def goals(self):
        return [s for s in self.standards if s.scope == Scope.GOAL]


@dataclass(frozen=True)
class Span:
    """A band placed on one rep's calendar: [start, end)."""

    band: BandSpec
    start: date
    end: date


@dataclass
class Facts:
    """What the data says about one rep (built by :mod:`queries`).

    ``weekly``: {monday: {metric: value}} for flow metrics; ``since_hire``: {metric: value};
    ``at_stage``: {standard id: open opportunities matching it}; money in Decimal."""

    weekly: dict[date, dict[str, Decimal]] = field(default_factory=dict)
    since_hire: dict[str, Decimal] = field(default_factory=dict)
    potential_accounts: int = 0
    at_stage: dict[int, int] = field(default_factory=dict)
    weighted_open: Decimal = Decimal(0)
    year_quota: Decimal | None = None
    completed_year: Decimal = Decimal(0)


# --- the calendar ------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's end (31 Jan + 1 = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_starts(today: date, history: int = HISTORY_WEEKS) -> list[date]:
    """The Mondays of the last ``history`` finished weeks and of the current one, oldest
    first."""
    current = monday(today)
    return [current - timedelta(weeks=n) for n in range(history, -1, -1)]


def quota_start(hire_date: date, bands: list[BandSpec]) -> date:
    """Month 0 of the quota clock: the end of training (the hire date without one)."""
    weeks = sum(b.duration_weeks or 0 for b in bands if b.is_training)
    return hire_date + timedelta(weeks=weeks)


def timeline(hire_date: date, bands: list[BandSpec]) -> list[Span]:
    """Every band on the rep's calendar, in order."""
    start = quota_start(hire_date, bands)
    spans = [Span(b, hire_date, start) for b in bands if b.is_training]
    months = sorted((b for b in bands if not b.is_training), key=lambda b: b.from_month)
    spans += [
        Span(b, add_months(start, b.from_month), add_months(start, b.to_month)) for b in months
    ]
    return spans


def span_at(spans: list[Span], day: date) -> Span | None:
    return next((s for s in spans if s.start <= day < s.end), None)


def months_between(start: date, day: date) -> int:
    months = (day.year - start.year) * 12 + day.month - start.month
    if day.day < start.day:
        months -= 1
    return months


# --- verdicts ----------------------------------------------------------------------------


def meets(standard: StandardSpec, actual: Decimal) -> bool:
    """At least the value (a range's lower end: "6–8 visits" means at least 6)."""
    return actual >= standard.value


def weekly_status(standard: StandardSpec, actual: Decimal, *, finished: bool) -> str:
    if meets(standard, actual):
        return MET
    return BEHIND if finished else OPEN


def goal_status(
    standard: StandardSpec, actual: Decimal | None, span: Span, today: date
) -> tuple[str, Decimal | None]:
    """(status, expected by now) of a goal of the band ``span`` on ``today``."""
    if actual is None:
        return NO_QUOTA, None
    total_weeks = Decimal(max((span.end - span.start).days, 1)) / 7
    elapsed_weeks = (today - span.start).days // 7
    fraction = min(Decimal(elapsed_weeks) / total_weeks, Decimal(1))
    expected = (standard.value * fraction).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    if meets(standard, actual):
        return MET, expected
    return (BEHIND if actual < expected else OPEN), expected


# --- the values --------------------------------------------------------------------------


def _round(value: Decimal, places: str = "0.1") -> Decimal:
    return Decimal(value).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def percent(part: Decimal, whole: Decimal | None) -> Decimal | None:
    if not whole:
        return None
    return _round(Decimal(part) * 100 / Decimal(whole))


def rest_of_year_fraction(today: date) -> Decimal:
    """The share of the calendar year from ``today`` (included) to 31 December."""
    year_end = date(today.year, 12, 31)
    days = 366 if calendar.isleap(today.year) else 365
    return Decimal((year_end - today).days + 1) / days


def goal_actual(standard: StandardSpec, facts: Facts, today: date) -> Decimal | None:
    """A goal's actual value now; None when it needs a quota and there is none."""
    metric = standard.metric
    if metric in FLOW_METRICS:
        return _round(facts.since_hire.get(metric, Decimal(0)))
    if metric == Metric.POTENTIAL_ACCOUNTS:
        return Decimal(facts.potential_accounts)
    if metric == Metric.OPPORTUNITIES_AT_STAGE:
        return Decimal(facts.at_stage.get(standard.id, 0))
    if metric == Metric.COVERAGE:
        if not facts.year_quota:
            return None
        rest = facts.year_quota * rest_of_year_fraction(today)
        return percent(facts.weighted_open, rest)
    if metric == Metric.YEAR_QUOTA_DONE:
        return percent(facts.completed_year, facts.year_quota)
    raise ValueError(f"unknown metric {metric!r}")


def unit(metric: str) -> str:
    if metric in HOUR_METRICS:
        return "h"
    if metric in PERCENT_METRICS:
        return "%"
    return ""


def standard_data(standard: StandardSpec) -> dict:
    return {
        "id": standard.id,
        "metric": standard.metric,
        "scope": standard.scope,
        "comparison": standard.comparison,
        "value": standard.value,
        "value_max": standard.value_max if standard.comparison == Comparison.BETWEEN else None,
        "label": standard.label,
        "unit": unit(standard.metric),
    }


# --- one rep -----------------------------------------------------------------------------


def rep_progress(hire_date: date | None, bands: list[BandSpec], facts: Facts, today: date):
    """The roadmap of one rep on ``today`` as plain data (see docs/onboarding.md for the
    keys). ``bands`` in any order; ``facts`` from :mod:`queries`."""
    result = {
        "status": NO_HIRE_DATE, "hire_date": hire_date, "week": None, "month": None,
        "band": None, "band_id": None, "band_start": None, "band_end": None, "graduates_on": None,
        "timeline": [], "weeks": [], "weekly": [], "goals": [], "behind": [],
        "behind_count": 0,
    }  # fmt: skip
    if hire_date is None:
        return result
    spans = timeline(hire_date, bands)
    graduates_on = max((s.end for s in spans), default=hire_date)
    result["graduates_on"] = graduates_on
    start = quota_start(hire_date, bands)
    result["timeline"] = [
        {
            "band_id": s.band.id, "name": s.band.name, "is_training": s.band.is_training,
            "start": s.start, "end": s.end,
            "state": "past" if s.end <= today else ("current" if s.start <= today else "future"),
        }
        for s in spans
    ]  # fmt: skip
    if today < hire_date:
        result["status"] = NOT_STARTED
        return result
    result["week"] = (today - hire_date).days // 7 + 1
    result["month"] = months_between(start, today) if today >= start else None
    current = span_at(spans, today)
    if current is None:
        result["status"] = GRADUATED
        return result
    result["status"] = ONBOARDING
    result.update(band=current.band.name, band_id=current.band.id, band_start=current.start,
                  band_end=current.end)  # fmt: skip
    weeks = week_starts(today)
    result["weeks"] = weeks
    behind = []
    for standard in current.band.weekly():
        cells = []
        for week in weeks:
            finished = week + timedelta(days=7) <= today
            week_end = week + timedelta(days=7)
            span = span_at(spans, max(week, hire_date)) if week_end > hire_date else None
            rule = None
            if span is not None:
                rule = next((s for s in span.band.weekly() if s.metric == standard.metric), None)
            actual = _round(facts.weekly.get(week, {}).get(standard.metric, Decimal(0)))
            if rule is None:
                cells.append({"week": week, "actual": actual if span else None,
                              "value": None, "status": None, "finished": finished})  # fmt: skip
                continue
            status = weekly_status(rule, actual, finished=finished)
            cells.append({"week": week, "actual": actual, "value": rule.value,
                          "status": status, "finished": finished})  # fmt: skip
        last_finished = cells[-2] if len(cells) > 1 else None
        row = {**standard_data(standard), "cells": cells, "this_week": cells[-1]}
        result["weekly"].append(row)
        if last_finished and last_finished["status"] == BEHIND:
            behind.append({**standard_data(standard), "actual": last_finished["actual"],
                           "week": last_finished["week"]})  # fmt: skip
    for standard in current.band.goals():
        actual = goal_actual(standard, facts, today)
        status, expected = goal_status(standard, actual, current, today)
        row = {**standard_data(standard), "actual": actual, "expected": expected,
               "status": status, "due": current.end}  # fmt: skip
        result["goals"].append(row)
        if status == BEHIND:
            behind.append({**standard_data(standard), "actual": actual, "week": None})
    result["behind"] = behind
    result["behind_count"] = len(behind)
    return result
