"""Demo data for targets and performance: company, team and rep targets for every month
of this year (signed and collected amounts, won deals, visits) scaled to what the demo's
reps actually do, so the progress bars show a mix of above and far below target; a few
quarter targets set directly that differ from their months' sum; and standards by level.

Rows are bulk-inserted (the demo restores in tests, where every second counts); the
values respect every rule the services check (tiers in order, whole counts).
"""

import random
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count
from django.utils import timezone

from loudou.activities.choices import Kind
from loudou.activities.models import Activity
from loudou.analytics.periods import Period
from loudou.pipeline.choices import Status
from loudou.pipeline.models import Opportunity
from loudou.sales.queries import collected_by_owner, signed_by_owner

from .models import Measure, PeriodKind, Standard, Target, TargetLevel

MEASURES = (Measure.SIGNED, Measure.COLLECTED, Measure.WON_COUNT, Measure.VISITS)
# How ambitious each rep's targets are against their own pace: below 1 they beat it,
# above 1 they fall short (2.5 = far below).
AMBITION = [Decimal(x) for x in ("0.6", "0.8", "0.95", "1.1", "1.3", "1.6", "2.5")]


def _round(value: Decimal, measure) -> Decimal:
    step = Decimal(1000) if measure in (Measure.SIGNED, Measure.COLLECTED) else Decimal(1)
    rounded = (value / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
    return max(rounded, step)


def _pace(reps, today) -> dict:
    """{(rep_id, measure): average per month} over the last twelve months."""
    start = date(today.year - 1, today.month, 1)
    end = today
    months = Decimal(12)
    low, high = Period(start, end, "").bounds()
    pace = {}
    ids = [r.pk for r in reps]
    signed = signed_by_owner(start, end, owners=ids)
    collected = collected_by_owner(start, end, owners=ids)
    won = dict(
        Opportunity.objects.filter(owner_id__in=ids, status=Status.WON, closed_at__gte=low,
                                   closed_at__lt=high)
        .order_by().values("owner_id").annotate(n=Count("pk")).values_list("owner_id", "n")
    )  # fmt: skip
    visits = dict(
        Activity.objects.filter(owner_id__in=ids, kind=Kind.VISIT, occurred_at__gte=low,
                                occurred_at__lt=high)
        .order_by().values("owner_id").annotate(n=Count("pk")).values_list("owner_id", "n")
    )  # fmt: skip
    for rep in reps:
        pace[(rep.pk, Measure.SIGNED)] = signed.get(rep.pk, Decimal(0)) / months
        pace[(rep.pk, Measure.COLLECTED)] = collected.get(rep.pk, Decimal(0)) / months
        pace[(rep.pk, Measure.WON_COUNT)] = Decimal(won.get(rep.pk, 0)) / months
        pace[(rep.pk, Measure.VISITS)] = Decimal(visits.get(rep.pk, 0)) / months
    return pace


def _tiers(rng, base: Decimal, measure):
    target = _round(base, measure)
    stretch = _round(target * Decimal("1.2"), measure)
    challenge = _round(target * Decimal("1.5"), measure)
    return target, max(stretch, target), max(challenge, stretch, target)


def load_targets(rng: random.Random, ctx: dict) -> None:
    """Targets for this year's months for every rep, team and the company; a few
    quarter targets set directly; standards for trainees, juniors and seniors."""
    today = timezone.localdate()
    year = today.year
    reps = ctx["reps"]
    teams = list(ctx["teams"].values())
    pace = _pace(reps, today)
    rows = []
    team_sums: dict = {}
    for rep in reps:
        ambition = rng.choice(AMBITION)
        for measure in MEASURES:
            base = pace[(rep.pk, measure)] * ambition
            if base <= 0:
                base = Decimal(20000) if measure in (Measure.SIGNED, Measure.COLLECTED) else 2
            for month in range(1, 13):
                season = Decimal(rng.choice(("0.9", "1", "1", "1.1", "1.2")))
                target, stretch, challenge = _tiers(rng, base * season, measure)
                rows.append(Target(
                    level=TargetLevel.REP, user=rep, measure=measure, period=PeriodKind.MONTH,
                    start=date(year, month, 1), target=target, stretch=stretch,
                    challenge=challenge,
                ))  # fmt: skip
                for team in teams:
                    if rep.team.path.startswith(team.path):
                        key = (team.pk, measure, month)
                        team_sums[key] = team_sums.get(key, Decimal(0)) + target
    company: dict = {}
    for (team_id, measure, month), total in team_sums.items():
        team = next(t for t in teams if t.pk == team_id)
        target, stretch, challenge = _tiers(rng, total, measure)
        rows.append(Target(level=TargetLevel.TEAM, team=team, measure=measure,
                           period=PeriodKind.MONTH, start=date(year, month, 1), target=target,
                           stretch=stretch, challenge=challenge))  # fmt: skip
        if team.parent_id is None:
            key = (measure, month)
            company[key] = company.get(key, Decimal(0)) + total
    for (measure, month), total in company.items():
        target, stretch, challenge = _tiers(rng, total * Decimal("1.05"), measure)
        rows.append(Target(level=TargetLevel.COMPANY, measure=measure, period=PeriodKind.MONTH,
                           start=date(year, month, 1), target=target, stretch=stretch,
                           challenge=challenge))  # fmt: skip
    # Quarter targets set directly, above the sum of their months: the page shows both.
    quarter = date(year, (today.month - 1) // 3 * 3 + 1, 1)
    for measure in (Measure.SIGNED, Measure.WON_COUNT):
        months = [company[(measure, quarter.month + i)] for i in range(3)]
        target, stretch, challenge = _tiers(rng, sum(months) * Decimal("1.15"), measure)
        rows.append(Target(level=TargetLevel.COMPANY, measure=measure,
                           period=PeriodKind.QUARTER, start=quarter, target=target,
                           stretch=stretch, challenge=challenge))  # fmt: skip
    first_team = next(t for t in teams if t.parent_id is None)
    months = [team_sums[(first_team.pk, Measure.SIGNED, quarter.month + i)] for i in range(3)]
    target, stretch, challenge = _tiers(rng, sum(months) * Decimal("1.1"), Measure.SIGNED)
    rows.append(Target(level=TargetLevel.TEAM, team=first_team, measure=Measure.SIGNED,
                       period=PeriodKind.QUARTER, start=quarter, target=target, stretch=stretch,
                       challenge=challenge))  # fmt: skip
    Target.objects.bulk_create(rows)

    visits = sorted(pace[(r.pk, Measure.VISITS)] for r in reps)
    median = visits[len(visits) // 2] or Decimal(4)
    standards = [
        (Measure.VISITS, "month", "trainee", median * Decimal("0.6")),
        (Measure.VISITS, "month", "junior", median * Decimal("0.9")),
        (Measure.VISITS, "month", "senior", median * Decimal("0.8")),
        (Measure.ACTIVITIES, "month", "", median * 2),
        (Measure.WON_COUNT, "quarter", "senior", Decimal(2)),
        (Measure.NEW_OPPORTUNITIES, "month", "junior", Decimal(3)),
    ]
    Standard.objects.bulk_create(
        Standard(measure=m, period=p, level=lv, minimum=max(v.quantize(Decimal(1)), Decimal(1)),
                 note="demo")
        for m, p, lv, v in standards
    )  # fmt: skip
    ctx["targets"] = len(rows)
