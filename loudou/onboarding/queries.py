"""The query layer of the roadmap: who may be looked at, the configured bands, and the
facts of many reps at once.

Everything is aggregated by the database per owner (and per week); the number of
queries depends on the configured standards, never on the number of reps
(tests/unit/test_onboarding_queries.py). Activities come from
``loudou.activities.queries``, quotas from ``loudou.targets.services.targets_for_reps``,
completed revenue from ``loudou.sales.queries.completed_by_owner``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from loudou.analytics.periods import local_midnight
from loudou.core.db import Cents
from loudou.org.models import Role, User
from loudou.pipeline.choices import StageKind, Status

from . import progress
from .models import FLOW_METRICS, Band, Metric, Scope
from .progress import BandSpec, Facts, StandardSpec

MINUTES = Decimal(60)


# --- who ---------------------------------------------------------------------------------


def roadmap_users(viewer):
    """Whose roadmap ``viewer`` may open: an admin everybody, a manager themself and
    their team's subtree, anyone else only themself."""
    if viewer is None or not viewer.is_authenticated or not viewer.is_active:
        return User.objects.none()
    if viewer.sees_everything:
        return User.objects.all()
    if viewer.managed_team_path:
        return User.objects.filter(
            Q(team__path__startswith=viewer.managed_team_path) | Q(pk=viewer.pk)
        )
    return User.objects.filter(pk=viewer.pk)


def team_reps(viewer):
    """The reps of the team view: active reps (not gone) whose roadmap ``viewer`` sees."""
    return (
        roadmap_users(viewer)
        .filter(role=Role.REP, is_active=True, left_on__isnull=True)
        .select_related("team")
        .order_by("hire_date", "name", "username")
    )


# --- configuration -----------------------------------------------------------------------


def load_bands() -> list[BandSpec]:
    """Every band with its standards, as plain data (two queries)."""
    bands = Band.objects.prefetch_related("standards")
    return [
        BandSpec(
            id=b.pk,
            name=b.display_name,
            is_training=b.is_training,
            duration_weeks=b.duration_weeks,
            from_month=b.from_month,
            to_month=b.to_month,
            standards=tuple(
                StandardSpec(
                    id=s.pk,
                    metric=s.metric,
                    scope=s.scope,
                    value=s.value,
                    comparison=s.comparison,
                    value_max=s.value_max,
                    stage_id=s.stage_id,
                    min_probability=s.min_probability,
                    label=s.display_label,
                )  # fmt: skip
                for s in sorted(b.standards.all(), key=lambda s: (s.scope, s.position, s.pk))
            ),
        )
        for b in bands
    ]


# --- facts -------------------------------------------------------------------------------


# The activity metrics: (aggregate, condition, divisor). A count or a sum of minutes over
# the activities that meet the condition (the figures of loudou.activities.queries'
# counts_by_owner and minutes_by_owner with that kind or purpose), shown in hours.
def _activity_metrics():
    from loudou.activities.choices import Kind, Purpose

    return {
        Metric.VISITS: (Count, "pk", Q(kind=Kind.VISIT), 1),
        Metric.VISIT_HOURS: (Sum, "duration_minutes", Q(kind=Kind.VISIT), MINUTES),
        Metric.PROSPECTING_HOURS: (
            Sum, "duration_minutes", Q(purpose=Purpose.PROSPECTING), MINUTES
        ),
        Metric.ACCOUNTS_RESEARCHED: (Count, "pk", Q(kind=Kind.RESEARCH), 1),
    }  # fmt: skip


def _weekly_activity(weeks, ids, metrics) -> dict[int, dict[date, dict[str, Decimal]]]:
    """Activity metrics per owner and week, in one query whatever the metrics: one pass
    over the owners' activities of those weeks, a conditional aggregate per metric and
    week (bounded by local midnights computed here: no time zone conversion per row)."""
    from loudou.activities.models import Activity

    parts = _activity_metrics()
    wanted = [m for m in parts if m in metrics]
    result: dict = defaultdict(lambda: defaultdict(dict))
    if not weeks or not wanted or not ids:
        return result
    columns = {}
    for i, week in enumerate(weeks):
        when = Q(
            occurred_at__gte=local_midnight(week),
            occurred_at__lt=local_midnight(week + timedelta(7)),
        )
        for j, metric in enumerate(wanted):
            aggregate, column, condition, _divisor = parts[metric]
            columns[f"m{j}w{i}"] = aggregate(column, filter=condition & when)
    rows = (
        Activity.objects.filter(
            owner_id__in=ids,
            occurred_at__gte=local_midnight(weeks[0]),
            occurred_at__lt=local_midnight(weeks[-1] + timedelta(days=7)),
        )
        .values("owner_id")
        .annotate(**columns)
        .order_by()
    )
    for row in rows:
        for i, week in enumerate(weeks):
            for j, metric in enumerate(wanted):
                value = row[f"m{j}w{i}"]
                if value:
                    cell = result[row["owner_id"]][week]
                    cell[metric] = cell.get(metric, Decimal(0)) + Decimal(value) / parts[metric][3]
    return result


def _per_week(model, owner_field, when_field, weeks, ids, **filters):
    """{owner: {monday: count}} of ``model`` rows in each week: one query, one
    conditional count per week."""
    counts = {
        f"w{i}": Count(
            "pk",
            filter=Q(
                **{
                    f"{when_field}__gte": local_midnight(week),
                    f"{when_field}__lt": local_midnight(week + timedelta(days=7)),
                }
            ),
        )  # fmt: skip
        for i, week in enumerate(weeks)
    }
    rows = (
        model.objects.filter(
            **{f"{owner_field}_id__in": ids, f"{when_field}__gte": local_midnight(weeks[0])},
            **filters,
        )
        .values(f"{owner_field}_id")
        .annotate(**counts)
        .order_by()
    )
    return {
        row[f"{owner_field}_id"]: {week: row[f"w{i}"] for i, week in enumerate(weeks)}
        for row in rows
    }


def _hired_since(owner_field: str, when_field: str, hires: dict[int, date]) -> Q:
    """Rows of each owner from their hire date (local midnight) on: one condition per
    hire date, each a range on the (owner, time) index — no join to the users and no time
    zone conversion per row."""
    by_day: dict[date, list[int]] = defaultdict(list)
    for owner, hired in hires.items():
        by_day[hired].append(owner)
    each = Q(pk__in=[])
    for hired, owners in sorted(by_day.items()):
        each |= Q(
            **{f"{owner_field}_id__in": sorted(owners), f"{when_field}__gte": local_midnight(hired)}
        )
    # the same rows, with a range the index serves first (every owner from the earliest
    # hire date): the per-owner conditions then only sift what it reads
    first = min(hires.values())
    return (
        Q(**{f"{owner_field}_id__in": sorted(hires), f"{when_field}__gte": local_midnight(first)})
        & each
    )


def _since_hire(model, owner_field, when_field, hires: dict[int, date], **filters):
    """Rows per owner from the owner's hire date (local date) on: one query."""
    if not hires:
        return {}
    rows = (
        model.objects.filter(_hired_since(owner_field, when_field, hires), **filters)
        .values(f"{owner_field}_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {row[f"{owner_field}_id"]: row["n"] for row in rows}


def _activity_since_hire(hires: dict[int, date], metrics) -> dict[int, dict[str, Decimal]]:
    """Activity metrics per owner since the owner's hire date: one query."""
    from loudou.activities.models import Activity

    parts = _activity_metrics()
    wanted = {str(m): parts[m][0](parts[m][1], filter=parts[m][2]) for m in parts if m in metrics}
    if not wanted or not hires:
        return {}
    rows = (
        Activity.objects.filter(_hired_since("owner", "occurred_at", hires))
        .values("owner_id")
        .annotate(**wanted)
        .order_by()
    )
    result = {}
    for row in rows:
        values = {}
        for metric in wanted:
            raw = Decimal(row[metric] or 0)
            values[metric] = raw / MINUTES if metric.endswith("_hours") else raw
        result[row["owner_id"]] = values
    return result


def _stage_matches(standards, stages) -> dict[int, set[int]]:
    """For each opportunities-at-stage standard, the open stages that count: the chosen
    stage and the later ones of its pipeline, or every stage whose default win rate
    reaches ``min_probability``."""
    by_id = {s["pk"]: s for s in stages}
    result = {}
    for standard in standards:
        if standard.stage_id is not None and standard.stage_id in by_id:
            chosen = by_id[standard.stage_id]
            result[standard.id] = {
                s["pk"] for s in stages
                if s["pipeline_id"] == chosen["pipeline_id"]
                and (s["position"], s["pk"]) >= (chosen["position"], chosen["pk"])
            }  # fmt: skip
        elif standard.min_probability is not None:
            result[standard.id] = {
                s["pk"] for s in stages if s["default_probability"] >= standard.min_probability
            }
        else:
            result[standard.id] = set()
    return result


def collect_facts(reps, bands: list[BandSpec], today: date) -> dict[int, Facts]:
    """The facts of every rep in ``reps`` (users with a hire date) who is onboarding on
    ``today``. Only what the standards in force need is fetched."""
    from loudou.customers.models import Account
    from loudou.pipeline.models import Opportunity, Stage

    current: dict[int, BandSpec] = {}
    for rep in reps:
        if rep.hire_date is None or rep.hire_date > today:
            continue
        span = progress.span_at(progress.timeline(rep.hire_date, bands), today)
        if span is not None:
            current[rep.pk] = span.band
    facts = {pk: Facts() for pk in current}
    if not current:
        return facts
    ids = list(current)
    in_force = [s for band in {b.id: b for b in current.values()}.values() for s in band.standards]
    weekly_metrics = {s.metric for s in in_force if s.scope == Scope.WEEKLY}
    goal_metrics = {s.metric for s in in_force if s.scope == Scope.GOAL}
    weeks = progress.week_starts(today)

    # flow metrics, week by week (activities, accounts, sales)
    for owner, by_week in _weekly_activity(weeks, ids, weekly_metrics).items():
        for week, values in by_week.items():
            facts[owner].weekly.setdefault(week, {}).update(values)

    def add_weekly(metric, counts):
        for owner, by_week in counts.items():
            for week, n in by_week.items():
                cell = facts[owner].weekly.setdefault(week, {})
                cell[metric] = cell.get(metric, Decimal(0)) + Decimal(n)

    if weekly_metrics & {Metric.NEW_ACCOUNTS, Metric.ACCOUNTS_RESEARCHED}:
        created = _per_week(Account, "created_by", "created_at", weeks, ids)
        for metric in weekly_metrics & {Metric.NEW_ACCOUNTS, Metric.ACCOUNTS_RESEARCHED}:
            add_weekly(metric, created)
    if Metric.SALES in weekly_metrics:
        add_weekly(
            Metric.SALES,
            _per_week(Opportunity, "owner", "closed_at", weeks, ids, status=Status.WON),
        )

    # flow metrics since the hire date (goals): each source is read only for the reps
    # whose band has a goal it feeds (a rep's goals read nothing else of since_hire)
    flow_goals = goal_metrics & FLOW_METRICS

    def hires_for(metrics) -> dict[int, date]:
        return {
            rep.pk: rep.hire_date
            for rep in reps
            if rep.pk in current
            and any(s.scope == Scope.GOAL and s.metric in metrics
                    for s in current[rep.pk].standards)
        }  # fmt: skip

    activity_goals = flow_goals & _activity_metrics().keys()
    if activity_goals:
        for owner, values in _activity_since_hire(
            hires_for(activity_goals), activity_goals
        ).items():
            facts[owner].since_hire.update(values)

    def add_since(metric, counts):
        for owner, n in counts.items():
            total = facts[owner].since_hire
            total[metric] = total.get(metric, Decimal(0)) + Decimal(n)

    account_goals = flow_goals & {Metric.NEW_ACCOUNTS, Metric.ACCOUNTS_RESEARCHED}
    if account_goals:
        created = _since_hire(Account, "created_by", "created_at", hires_for(account_goals))
        for metric in account_goals:
            add_since(metric, created)
    if Metric.SALES in flow_goals:
        add_since(
            Metric.SALES,
            _since_hire(
                Opportunity, "owner", "closed_at", hires_for({Metric.SALES}), status=Status.WON
            ),
        )

    # the pipeline now
    open_opps = Opportunity.objects.filter(owner_id__in=ids, status=Status.OPEN).order_by()
    if Metric.POTENTIAL_ACCOUNTS in goal_metrics:
        rows = open_opps.values("owner_id").annotate(n=Count("account_id", distinct=True))
        for row in rows:
            facts[row["owner_id"]].potential_accounts = row["n"]
    at_stage = [s for s in in_force if s.metric == Metric.OPPORTUNITIES_AT_STAGE]
    needs_quota = goal_metrics & {Metric.COVERAGE, Metric.YEAR_QUOTA_DONE}
    if at_stage or Metric.COVERAGE in goal_metrics:
        rows = open_opps.values("owner_id", "stage_id", "probability").annotate(
            n=Count("pk"), cents=Sum(Cents("amount"))
        )
        matches = {}
        if at_stage:
            stages = list(
                Stage.objects.filter(kind=StageKind.OPEN).values(
                    "pk", "pipeline_id", "position", "default_probability"
                )
            )
            matches = _stage_matches(at_stage, stages)
        for row in rows:
            owner = facts[row["owner_id"]]
            owner.weighted_open += (
                Decimal(row["cents"] or 0) * Decimal(row["probability"]) / 10000
            ).quantize(Decimal("0.01"))
            band = current[row["owner_id"]]
            for standard in band.standards:
                if row["stage_id"] in matches.get(standard.id, ()):
                    owner.at_stage[standard.id] = owner.at_stage.get(standard.id, 0) + row["n"]
    if needs_quota:
        from loudou.sales.queries import completed_by_owner
        from loudou.targets.services import targets_for_reps

        basis = settings.LOUDOU_COMPLETED_BASIS
        year_start, year_end = date(today.year, 1, 1), date(today.year + 1, 1, 1)
        quotas = targets_for_reps(measures=[basis], start=year_start, end=year_end, user_ids=ids)
        done = completed_by_owner(year_start, today + timedelta(days=1), basis=basis, owners=ids)
        for pk, owner in facts.items():
            tiers = quotas.get((pk, basis))
            owner.year_quota = tiers.target if tiers is not None else None
            owner.completed_year = Decimal(done.get(pk, 0))
    return facts


# --- the roadmaps ------------------------------------------------------------------------


def roadmaps(reps, today: date | None = None, bands: list[BandSpec] | None = None) -> list:
    """(rep, progress) for every rep: a fixed number of queries for any number of reps."""
    today = today or timezone.localdate()
    bands = load_bands() if bands is None else bands
    reps = list(reps)
    facts = collect_facts(reps, bands, today)
    return [
        (rep, progress.rep_progress(rep.hire_date, bands, facts.get(rep.pk, Facts()), today))
        for rep in reps
    ]


def roadmap(rep, today: date | None = None) -> dict:
    return roadmaps([rep], today)[0][1]


def team_summary(viewer, today: date | None = None) -> dict:
    """The team view: every rep in scope with status, band, week and behind count."""
    rows = roadmaps(team_reps(viewer), today)
    onboarding = [(r, p) for r, p in rows if p["status"] in (progress.ONBOARDING,
                                                               progress.NOT_STARTED)]  # fmt: skip
    return {
        "onboarding": onboarding,
        "graduated": [r for r, p in rows if p["status"] == progress.GRADUATED],
        "no_hire_date": [r for r, p in rows if p["status"] == progress.NO_HIRE_DATE],
        "behind": sum(1 for _r, p in onboarding if p["behind_count"]),
    }
