"""Performance lists: per rep and team, over a period, every figure aggregated by the
database (GROUP BY owner), then summed per team from those per-rep rows — never a loop
over opportunities, payments or activities. The number of queries is fixed (about a
dozen) whatever the number of reps or records; docs/targets.md defines each figure.

Standards (``Standard``) are applied when read, so a changed standard changes every
rating at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from loudou.activities.choices import Kind as ActivityKind
from loudou.activities.models import Activity
from loudou.analytics.periods import Period, local_midnight
from loudou.core.db import Cents
from loudou.org.models import Team, User
from loudou.pipeline.choices import Status
from loudou.pipeline.models import Opportunity, StageChange
from loudou.sales.queries import collected_by_owner, signed_by_owner

from .models import PRODUCT_LINE_MEASURES, Measure, Standard, StandardPeriod
from .services import Tiers, targets_for_reps, targets_for_teams

DAY = 86400
CENT = Decimal("0.01")

# The columns of the list, in order; the first six can have targets and standards.
COLUMNS = (
    "signed", "collected", "won_count", "new_opportunities", "activities", "visits",
    "avg_deal", "cycle_days", "win_rate",
)  # fmt: skip
TARGET_MEASURES = tuple(Measure.values)
LOWER_IS_BETTER = frozenset({"cycle_days"})


def column_labels() -> dict[str, str]:
    return {
        "signed": _("Signed"),
        "collected": _("Collected"),
        "won_count": _("Deals won"),
        "new_opportunities": _("New opportunities"),
        "activities": _("Activities"),
        "visits": _("Visits"),
        "avg_deal": _("Average deal"),
        "cycle_days": _("Cycle (days)"),
        "win_rate": _("Win rate"),
    }


def breaches_by_owner(start: date, end: date, *, owners=None) -> dict[int, int] | None:
    """Late follow-up rule breaches per owner, due in [start, end) (loudou.rules.queries:
    one GROUP BY)."""
    from loudou.rules.queries import breaches_by_owner as late_breaches

    return late_breaches(start, end, owners=owners)


# --- raw figures per owner ----------------------------------------------------------------


def _bounds(start: date, end: date):
    return Period(start, end, "").bounds()


def raw_by_owner(start: date, end: date, *, owners, product_line=None) -> dict[int, dict]:
    """{user_id: components} for the users of ``owners`` (a User queryset, or None for
    every owner): sums and counts that add up across a team (amounts, counts, seconds).
    Eight queries (nine with breaches)."""
    low, high = _bounds(start, end)
    raw: dict[int, dict] = {}

    def put(key, values):
        for owner, value in values.items():
            raw.setdefault(owner, {})[key] = value

    put("signed", signed_by_owner(start, end, owners=owners, product_line=product_line))
    put("collected", collected_by_owner(start, end, owners=owners, product_line=product_line))
    opps = Opportunity.objects.order_by()
    if owners is not None:
        opps = opps.filter(owner_id__in=owners.values("pk"))
    if product_line is not None:
        opps = opps.filter(product_line=product_line)
    closed = (
        opps.filter(closed_at__gte=low, closed_at__lt=high, status__in=[Status.WON, Status.LOST])
        .values("owner_id")
        .annotate(
            won=Count("pk", filter=Q(status=Status.WON)),
            lost=Count("pk", filter=Q(status=Status.LOST)),
            cents=Sum(Cents("amount"), filter=Q(status=Status.WON)),
        )
    )
    for row in closed:
        if row["owner_id"] is None:
            continue
        entry = raw.setdefault(row["owner_id"], {})
        entry["won_count"] = row["won"]
        entry["lost_count"] = row["lost"]
        entry["won_amount"] = (Decimal(row["cents"] or 0) / 100).quantize(CENT)
    # the stays of the deals won in the period, reached through a join (the won deals
    # first, from their index, then their stage changes)
    changes = StageChange.objects.filter(
        opportunity__status=Status.WON, opportunity__closed_at__gte=low,
        opportunity__closed_at__lt=high, stay_seconds__isnull=False,
    )  # fmt: skip
    if owners is not None:
        changes = changes.filter(opportunity__owner_id__in=owners.values("pk"))
    if product_line is not None:
        changes = changes.filter(opportunity__product_line=product_line)
    cycles = changes.order_by().values("opportunity__owner_id").annotate(s=Sum("stay_seconds"))
    put(
        "cycle_seconds",
        {r["opportunity__owner_id"]: int(r["s"] or 0) for r in cycles
         if r["opportunity__owner_id"] is not None},
    )  # fmt: skip
    created = (
        opps.filter(created_at__gte=low, created_at__lt=high)
        .values("owner_id")
        .annotate(n=Count("pk"))
    )
    put("new_opportunities", {r["owner_id"]: r["n"] for r in created if r["owner_id"] is not None})
    put_activities(put, start, end, owners)
    breaches = breaches_by_owner(start, end, owners=owners)
    if breaches is not None:
        put("breaches", breaches)
    return raw


def put_activities(put, start: date, end: date, owners) -> None:
    """Activities and visits per owner in one pass over the activities of the period
    (the figures of ``activities.queries.counts_by_owner`` without and with
    ``kinds=[visit]``)."""
    acts = Activity.objects.filter(
        occurred_at__gte=local_midnight(start), occurred_at__lt=local_midnight(end),
        owner_id__isnull=False,
    ).order_by()  # fmt: skip
    if owners is not None:
        acts = acts.filter(owner_id__in=owners.values("pk"))
    rows = acts.values("owner_id").annotate(
        n=Count("pk"), visits=Count("pk", filter=Q(kind=ActivityKind.VISIT))
    )
    put("activities", {row["owner_id"]: row["n"] for row in rows})
    put("visits", {row["owner_id"]: row["visits"] for row in rows if row["visits"]})


ADDITIVE = ("signed", "collected", "won_count", "lost_count", "won_amount", "cycle_seconds",
            "new_opportunities", "activities", "visits", "breaches")  # fmt: skip


def add_raw(parts) -> dict:
    """Sum components of several owners (a team's total)."""
    total: dict = {}
    for part in parts:
        for key in ADDITIVE:
            if key in part:
                total[key] = total.get(key, 0) + part[key]
    return total


def figures(raw: dict) -> dict:
    """The list's columns from summed components; ratios are recomputed, not averaged."""
    won = raw.get("won_count", 0)
    closed = won + raw.get("lost_count", 0)
    result = {
        "signed": Decimal(raw.get("signed", 0)).quantize(CENT),
        "collected": Decimal(raw.get("collected", 0)).quantize(CENT),
        "won_count": won,
        "new_opportunities": raw.get("new_opportunities", 0),
        "activities": raw.get("activities", 0),
        "visits": raw.get("visits", 0),
        "avg_deal": (Decimal(raw.get("won_amount", 0)) / won).quantize(CENT) if won else None,
        "cycle_days": round(raw.get("cycle_seconds", 0) / won / DAY, 1) if won else None,
        "win_rate": won / closed if closed else None,
    }
    if "breaches" in raw:
        result["breaches"] = raw["breaches"]
    return result


def average(values: dict, members: int) -> dict:
    """A team's figures per member (the rep's "team average"); ratios stay as they are."""
    if not members:
        return values
    result = dict(values)
    for key in ("signed", "collected"):
        result[key] = (values[key] / members).quantize(CENT)
    for key in ("won_count", "new_opportunities", "activities", "visits", "breaches"):
        if key in values:
            result[key] = round(values[key] / members, 1)
    return result


# --- standards ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rating:
    """One standard applied to one rep over the report's period."""

    standard_id: int
    measure: str
    product_line: str
    minimum: Decimal  # scaled to the report's period
    actual: Decimal
    meets: bool
    prorated: bool


def _scale(standard_period: str, period: Period) -> tuple[Decimal, bool]:
    """How many standard periods the report's period holds: whole months or quarters
    when it is made of them, else prorated by days (``prorated`` True)."""
    step = 1 if standard_period == StandardPeriod.MONTH else 3
    start, end = period.start, period.end
    months = (end.year - start.year) * 12 + end.month - start.month
    aligned = start.day == 1 and end.day == 1 and months > 0
    if aligned and (step == 1 or ((start.month - 1) % 3 == 0 and months % 3 == 0)):
        return Decimal(months // step), False
    days_per = Decimal("30.4375") * step
    return (Decimal(period.days) / days_per).quantize(Decimal("0.0001")), True


def applicable_standards(standards, level: str) -> list[Standard]:
    """The standards for a rep of ``level``: for each (measure, period, product line), the
    one written for the level wins over the one for every level."""
    chosen: dict = {}
    for std in standards:
        if std.level and std.level != level:
            continue
        key = (std.measure, std.period, std.product_line_id)
        if key not in chosen or (std.level and not chosen[key].level):
            chosen[key] = std
    return list(chosen.values())


def rate(standards, level, values: dict, line_values: dict, period: Period) -> list[Rating]:
    """Rate one rep against the standards that apply to their level. ``line_values`` holds
    {(product_line_id, measure): actual} for product-line standards."""
    ratings = []
    for std in applicable_standards(standards, level):
        if std.product_line_id:
            actual = line_values.get((std.product_line_id, std.measure), 0)
        else:
            actual = values.get(std.measure) or 0
        factor, prorated = _scale(std.period, period)
        minimum = (std.minimum * factor).quantize(CENT)
        ratings.append(
            Rating(
                standard_id=std.pk,
                measure=std.measure,
                product_line=str(std.product_line) if std.product_line_id else "",
                minimum=minimum,
                actual=Decimal(actual),
                meets=Decimal(actual) >= minimum,
                prorated=prorated,
            )  # fmt: skip
        )
    return ratings


def _only(raw: dict, people) -> dict:
    ids = {person.pk for person in people}
    return {owner: parts for owner, parts in raw.items() if owner in ids}


def _line_figures(standards, period: Period, owners, people) -> dict[int, dict]:
    """{user_id: {(line_id, measure): actual}} for the product-line standards: one set of
    queries per product line that a standard names (a handful)."""
    result: dict[int, dict] = {}
    lines = {s.product_line_id for s in standards if s.product_line_id}
    for line in lines:
        raw = _only(
            raw_by_owner(period.start, period.end, owners=owners, product_line=line), people
        )
        for owner, parts in raw.items():
            values = figures(parts)
            for measure in PRODUCT_LINE_MEASURES:
                result.setdefault(owner, {})[(line, measure)] = values[measure]
    return result


# --- the report --------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the list: a rep, a team (its subtree's total), the company, or a rep's
    team average."""

    kind: str  # rep | team | company | average
    name: str
    values: dict
    user_id: int | None = None
    team_id: int | None = None
    team_name: str = ""
    level: str = ""
    members: int = 1
    targets: dict = field(default_factory=dict)  # measure → Tiers
    ratings: list = field(default_factory=list)

    def percent(self, measure) -> float | None:
        tiers = self.targets.get(measure)
        return tiers.percent(self.values.get(measure)) if tiers else None

    def tier(self, measure) -> str | None:
        tiers: Tiers | None = self.targets.get(measure)
        return tiers.tier_reached(self.values.get(measure)) if tiers else None

    @property
    def below(self) -> int:
        return sum(1 for r in self.ratings if not r.meets)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.user_id or self.team_id or ''}"


@dataclass
class Report:
    period: Period
    group: str
    rows: list[Row]
    average: Row | None
    has_breaches: bool
    standards: list


def people_in_scope(viewer, *, team: Team | None = None):
    """Who the viewer's list covers: active users with a team, in the viewer's scope
    (admin: all; manager: their subtree; rep: their own team, shown only as an average
    beside themself), narrowed to ``team``'s subtree."""
    qs = User.objects.filter(is_active=True, left_on__isnull=True, team__isnull=False)
    if not viewer.sees_everything:
        path = viewer.managed_team_path
        if path:
            qs = qs.filter(team__path__startswith=path)
        elif viewer.team_id:
            qs = qs.filter(team_id=viewer.team_id)
        else:
            qs = qs.filter(pk=viewer.pk)
    if team is not None:
        qs = qs.filter(team__path__startswith=team.path)
    return qs.order_by()


def build_report(viewer, period: Period, *, group="rep", team=None, rep=None) -> Report:
    """The performance list the viewer may see for ``period``. ``group`` is ``rep`` (one
    row per person) or ``team`` (one row per visible team, totals of its subtree, plus the
    company for an admin). A plain rep gets their own row and their team's average."""
    people_qs = people_in_scope(viewer, team=team)
    people = list(
        people_qs.select_related("team").only(
            "pk",
            "username",
            "name",
            "first_name",
            "last_name",
            "level",
            "team__name",
            "team__path",
        )  # fmt: skip
    )
    # Everyone in scope: aggregate every owner, then keep the people of the list — a
    # range over the period's index instead of a lookup per person (the same figures).
    scope = None if viewer.sees_everything and team is None else people_qs
    raw = _only(raw_by_owner(period.start, period.end, owners=scope), people)
    has_breaches = any("breaches" in parts for parts in raw.values())
    standards = list(Standard.objects.select_related("product_line"))
    is_rep_view = not (viewer.sees_everything or viewer.managed_team_path)
    average_row = None
    if group == "team":
        rows = _team_rows(viewer, people, raw, period, team)
    else:
        line_values = _line_figures(standards, period, scope, people) if standards else {}
        ids = [p.pk for p in people]
        targets = targets_for_reps(
            measures=TARGET_MEASURES, start=period.start, end=period.end, user_ids=ids
        )
        rows = []
        for person in people:
            if is_rep_view and person.pk != viewer.pk:
                continue
            if rep is not None and person.pk != rep.pk:
                continue
            values = figures(raw.get(person.pk, {}))
            rows.append(
                Row(
                    kind="rep",
                    name=str(person),
                    values=values,
                    user_id=person.pk,
                    team_id=person.team_id,
                    team_name=person.team.name,
                    level=person.level,
                    targets={
                        m: targets[(person.pk, m)]
                        for m in TARGET_MEASURES
                        if (person.pk, m) in targets
                    },
                    ratings=rate(
                        standards, person.level, values, line_values.get(person.pk, {}), period
                    ),
                )  # fmt: skip
            )
        if is_rep_view and people:
            total = figures(add_raw(raw.get(p.pk, {}) for p in people))
            average_row = Row(
                kind="average", name=_("Team average"), values=average(total, len(people)),
                members=len(people),
            )  # fmt: skip
    return Report(period=period, group=group, rows=rows, average=average_row,
                  has_breaches=has_breaches, standards=standards)  # fmt: skip


def _team_rows(viewer, people, raw, period, team) -> list[Row]:
    """One row per visible team: its subtree's members summed; an admin also gets the
    company (everyone with a team)."""
    teams = Team.objects.order_by("path")
    if team is not None:
        teams = teams.filter(path__startswith=team.path)
    if not viewer.sees_everything:
        path = viewer.managed_team_path
        teams = teams.filter(path__startswith=path) if path else teams.filter(pk=viewer.team_id)
    teams = list(teams)
    targets = targets_for_teams(
        measures=TARGET_MEASURES, start=period.start, end=period.end,
        team_ids=[t.pk for t in teams],
    )  # fmt: skip
    rows = []
    if viewer.sees_everything and team is None:
        rows.append(
            Row(
                kind="company",
                name=pgettext("target level", "Company"),
                values=figures(add_raw(raw.values())),
                members=len(people),
                targets={m: targets[(None, m)] for m in TARGET_MEASURES if (None, m) in targets},
            )  # fmt: skip
        )
    is_rep_view = not (viewer.sees_everything or viewer.managed_team_path)
    for t in teams:
        members = [p for p in people if p.team.path.startswith(t.path)]
        total = figures(add_raw(raw.get(p.pk, {}) for p in members))
        rows.append(
            Row(
                kind="average" if is_rep_view else "team",
                name=t.name,
                values=average(total, len(members)) if is_rep_view else total,
                team_id=t.pk,
                members=len(members),
                targets={}
                if is_rep_view
                else {m: targets[(t.pk, m)] for m in TARGET_MEASURES if (t.pk, m) in targets},
            )  # fmt: skip
        )
    return rows


def sort_rows(rows: list[Row], measure: str, *, descending=True, limit=None) -> list[Row]:
    """Rank rows by one column (or ``pct_<measure>`` for % of target); rows without a
    value go last either way. ``limit`` keeps the first N (top or bottom)."""

    def value(row):
        if measure.startswith("pct_"):
            return row.percent(measure[4:])
        return row.values.get(measure)

    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    present.sort(key=value, reverse=descending)
    ranked = present + missing
    return ranked[:limit] if limit else ranked


def today_period(kind: str) -> Period:
    from loudou.analytics.periods import containing

    return containing(kind, timezone.localdate())
