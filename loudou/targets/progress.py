"""Progress: actual figures of a rep, a team (its subtree) or the company set against
their targets — for the year grid, the dashboard and the resolve endpoint.

Everything is aggregated by the database. The year grid asks for month totals with one
GROUP BY per measure for the pipeline and activity counts, and per month for the signed
and collected amounts (their definitions live in loudou.sales.queries, which answers per
period): about 40 queries for a whole year, whatever the data volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Count, Q
from django.utils import timezone

from loudou.activities.choices import Kind as ActivityKind
from loudou.activities.models import Activity
from loudou.analytics.periods import Period, containing, local_midnight
from loudou.org.models import Team, User
from loudou.pipeline.choices import Status
from loudou.pipeline.models import Opportunity
from loudou.sales.queries import (
    collected_by_owner,
    collected_by_period,
    period_case,
    signed_by_owner,
    signed_by_period,
)

from .models import Measure, PeriodKind, Target, TargetLevel
from .services import Tiers, resolve_rows

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Owner:
    """Whose targets: the company, a team or a rep."""

    level: str
    team: Team | None = None
    user: User | None = None

    @property
    def key(self) -> str:
        if self.level == TargetLevel.REP:
            return f"rep-{self.user.pk}"
        if self.level == TargetLevel.TEAM:
            return f"team-{self.team.pk}"
        return "company"

    @property
    def name(self) -> str:
        from django.utils.translation import pgettext

        if self.user is not None:
            return str(self.user)
        if self.team is not None:
            return self.team.name
        return pgettext("target level", "Company")

    def members(self):
        """The users whose figures add up to this owner's (None = everyone)."""
        if self.level == TargetLevel.REP:
            return User.objects.filter(pk=self.user.pk)
        if self.level == TargetLevel.TEAM:
            return User.objects.filter(team__path__startswith=self.team.path)
        return None

    def target_filter(self) -> Q:
        if self.level == TargetLevel.REP:
            return Q(level=TargetLevel.REP, user=self.user)
        if self.level == TargetLevel.TEAM:
            return Q(level=TargetLevel.TEAM, team=self.team)
        return Q(level=TargetLevel.COMPANY)


def _total(per_owner: dict):
    return sum(per_owner.values(), Decimal(0)).quantize(CENT)


def _ids(qs):
    return None if qs is None else qs.values("pk")


def period_actuals(start: date, end: date, *, owners=None, product_line=None) -> dict:
    """Totals over ``owners`` (a User queryset, None = everyone) of the six target
    measures for [start, end). Six queries."""
    low, high = Period(start, end, "").bounds()
    opps = Opportunity.objects.order_by()
    acts = Activity.objects.filter(occurred_at__gte=low, occurred_at__lt=high).order_by()
    if owners is not None:
        opps = opps.filter(owner_id__in=_ids(owners))
        acts = acts.filter(owner_id__in=_ids(owners))
    if product_line is not None:
        opps = opps.filter(product_line=product_line)
    counts = opps.aggregate(
        won=Count("pk", filter=Q(status=Status.WON, closed_at__gte=low, closed_at__lt=high)),
        new=Count("pk", filter=Q(created_at__gte=low, created_at__lt=high)),
    )
    result = {
        Measure.SIGNED: _total(
            signed_by_owner(start, end, owners=owners, product_line=product_line)
        ),
        Measure.COLLECTED: _total(
            collected_by_owner(start, end, owners=owners, product_line=product_line)
        ),
        Measure.WON_COUNT: counts["won"],
        Measure.NEW_OPPORTUNITIES: counts["new"],
    }
    if product_line is None:
        row = acts.aggregate(n=Count("pk"), v=Count("pk", filter=Q(kind=ActivityKind.VISIT)))
        result[Measure.ACTIVITIES], result[Measure.VISITS] = row["n"], row["v"]
    return result


def monthly_actuals(year: int, *, owners=None, product_line=None) -> dict[int, dict]:
    """{month 1–12: {measure: total}} of ``owners`` over the year: the figures of
    :func:`period_actuals` for each month, in five queries instead of six per month. Each
    source is read once and grouped by the month its date falls in, found by comparing
    with the local midnights of the months (no time zone conversion per row)."""
    days = [date(year, m, 1) for m in range(1, 13)] + [date(year + 1, 1, 1)]
    bounds = [local_midnight(day) for day in days]
    result = {m: {measure: 0 for measure in Measure.values} for m in range(1, 13)}
    opps = Opportunity.objects.order_by()
    acts = Activity.objects.order_by()
    if owners is not None:
        opps = opps.filter(owner_id__in=_ids(owners))
        acts = acts.filter(owner_id__in=_ids(owners))
    if product_line is not None:
        opps = opps.filter(product_line=product_line)

    def by_month(qs, field, **counts):
        rows = (
            qs.filter(**{f"{field}__gte": bounds[0], f"{field}__lt": bounds[-1]})
            .annotate(month=period_case(field, bounds))
            .values("month")
            .annotate(**counts)
        )
        for row in rows:
            for measure in counts:
                result[row["month"] + 1][measure] += row[measure]

    by_month(opps.filter(status=Status.WON), "closed_at", **{Measure.WON_COUNT: Count("pk")})
    by_month(opps, "created_at", **{Measure.NEW_OPPORTUNITIES: Count("pk")})
    if product_line is None:
        by_month(acts, "occurred_at", **{
            Measure.ACTIVITIES: Count("pk"),
            Measure.VISITS: Count("pk", filter=Q(kind=ActivityKind.VISIT)),
        })  # fmt: skip
    kw = dict(owners=owners, product_line=product_line)
    signed, collected = signed_by_period(days, **kw), collected_by_period(days, **kw)
    for m in range(1, 13):
        result[m][Measure.SIGNED] = signed.get(m - 1, Decimal(0)).quantize(CENT)
        result[m][Measure.COLLECTED] = collected.get(m - 1, Decimal(0)).quantize(CENT)
    return result


def sum_months(monthly: dict, months) -> dict:
    total: dict = {}
    for m in months:
        for measure, value in monthly[m].items():
            total[measure] = total.get(measure, 0) + value
    return total


def year_targets(owner: Owner, year: int, *, product_line=None) -> list[Target]:
    """Every target row of ``owner`` starting in ``year`` (one query)."""
    qs = Target.objects.filter(
        owner.target_filter(), start__gte=date(year, 1, 1), start__lt=date(year + 1, 1, 1)
    )
    if product_line is None:
        qs = qs.filter(product_line__isnull=True)
    else:
        qs = qs.filter(product_line=product_line)
    return list(qs)


def resolve_from(rows, measure, kind, start) -> tuple[Tiers | None, Tiers | None]:
    return resolve_rows([r for r in rows if r.measure == measure], kind, start)


# --- the dashboard ---------------------------------------------------------------------


def dashboard_owners(user) -> list[Owner]:
    """The levels the dashboard shows: a rep their own; a manager their team and each
    person in it; an admin the company and every team."""
    if user.sees_everything:
        return [Owner(TargetLevel.COMPANY)] + [
            Owner(TargetLevel.TEAM, team=t) for t in Team.objects.order_by("path")
        ]
    if user.managed_team_path:
        people = User.objects.filter(
            is_active=True, left_on__isnull=True, team__path__startswith=user.managed_team_path
        ).order_by("team__path", "username")
        return [Owner(TargetLevel.TEAM, team=user.team)] + [
            Owner(TargetLevel.REP, user=p) for p in people
        ]
    return [Owner(TargetLevel.REP, user=user)]


def dashboard_data(user, measure: str, today: date | None = None) -> dict:
    """For each level the user may see, the target (tiers) and actual of ``measure`` for
    this month, quarter and year. A fixed number of queries: the owners, one for every
    target row of the year, and per period one per-owner aggregation."""
    today = today or timezone.localdate()
    periods = [containing(kind, today) for kind in ("month", "quarter", "year")]
    kinds = [PeriodKind.MONTH, PeriodKind.QUARTER, PeriodKind.YEAR]
    owners = dashboard_owners(user)
    year = periods[2]
    rows = Target.objects.filter(
        measure=measure, product_line__isnull=True, start__gte=year.start, start__lt=year.end
    )
    if not user.sees_everything:
        rows = rows.filter(
            Q(level=TargetLevel.REP, user_id__in=[o.user.pk for o in owners if o.user])
            | Q(level=TargetLevel.TEAM, team_id__in=[o.team.pk for o in owners if o.team])
        )
    grouped: dict = {}
    for row in rows:
        key = row.user_id if row.level == TargetLevel.REP else row.team_id
        grouped.setdefault((row.level, key), []).append(row)
    fn = signed_by_owner if measure == Measure.SIGNED else collected_by_owner
    team_paths = {o.team.pk: o.team.path for o in owners if o.team}
    if user.sees_everything:
        people_qs, scope = User.objects.filter(team__isnull=False), None
    else:  # only the people whose figures a card shows, not the whole company
        wanted = Q(pk__in=[o.user.pk for o in owners if o.user])
        for path in team_paths.values():
            wanted |= Q(team__path__startswith=path)
        people_qs = User.objects.filter(wanted)
    people = dict(people_qs.values_list("pk", "team__path"))
    if not user.sees_everything:
        scope = list(people)
    cards = []
    actual_by_period = [fn(p.start, p.end, owners=scope) for p in periods]
    for owner in owners:
        key = owner.user.pk if owner.user else owner.team.pk if owner.team else None
        group = grouped.get((owner.level, key), [])
        items = []
        for period, kind, per_owner in zip(periods, kinds, actual_by_period, strict=True):
            if owner.level == TargetLevel.REP:
                actual = per_owner.get(owner.user.pk, Decimal(0))
            elif owner.level == TargetLevel.TEAM:
                path = team_paths[owner.team.pk]
                actual = sum(
                    (v for uid, v in per_owner.items() if (people.get(uid) or "").startswith(path)),
                    Decimal(0),
                )
            else:
                actual = sum(per_owner.values(), Decimal(0))
            direct, rolled = resolve_rows(group, kind, period.start)
            tiers = direct or rolled
            items.append({"period": period, "kind": kind, "tiers": tiers, "actual": actual,
                          "percent": tiers.percent(actual) if tiers else None,
                          "tier": tiers.tier_reached(actual) if tiers else None})  # fmt: skip
        if any(item["tiers"] for item in items):
            cards.append({"owner": owner, "items": items})
    return {"cards": cards, "measure": measure, "periods": periods}
