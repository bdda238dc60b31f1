"""Visit statistics per rep and local week, counted by the database in one query.

A visit counts in the week of its planned time (``planned_for``; rescheduling moves it).
Per rep and week: planned (every visit of the week, whatever became of it), done,
cancelled, done with a check-in, and done with a check-in far from the address (further
than ``LOUDOU_VISIT_FAR_METRES`` from the account's coordinates).
"""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from loudou.analytics.periods import local_midnight

from ..choices import VisitStatus
from ..models import Visit
from ..queries import week_start

MAX_WEEKS = 52
METRICS = ("planned", "done", "cancelled", "checked_in", "far")


@dataclass
class WeekCounts:
    planned: int = 0
    done: int = 0
    cancelled: int = 0
    checked_in: int = 0
    far: int = 0

    @property
    def checked_in_share(self) -> float | None:
        """Share of the done visits that had a check-in (None without a done visit)."""
        return self.checked_in / self.done if self.done else None

    def add(self, other: "WeekCounts") -> None:
        for name in METRICS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class VisitStats:
    weeks: list[date]  # Mondays, oldest first
    # {owner_id: {monday: WeekCounts}}: every owner asked for, every week (zeros included)
    by_owner: dict[int, dict[date, WeekCounts]] = field(default_factory=dict)

    def owner_total(self, owner_id: int) -> WeekCounts:
        total = WeekCounts()
        for counts in self.by_owner.get(owner_id, {}).values():
            total.add(counts)
        return total

    def week_total(self, monday: date) -> WeekCounts:
        total = WeekCounts()
        for weeks in self.by_owner.values():
            total.add(weeks[monday])
        return total

    def total(self) -> WeekCounts:
        total = WeekCounts()
        for monday in self.weeks:
            total.add(self.week_total(monday))
        return total


def last_weeks(weeks: int, today: date | None = None) -> list[date]:
    """The Mondays of the last ``weeks`` local weeks, this week last."""
    weeks = max(1, min(int(weeks), MAX_WEEKS))
    this = week_start(today or timezone.localdate())
    return [this - timedelta(days=7 * i) for i in range(weeks - 1, -1, -1)]


def weekly_stats(mondays: list[date], owner_ids) -> VisitStats:
    """The counts of :data:`METRICS` per owner (ids) and week (Mondays), in one GROUP BY
    query with a conditional count per week and metric; the week bounds are local
    midnights computed here, so the database compares plain timestamps."""
    owner_ids = list(owner_ids)
    stats = VisitStats(weeks=list(mondays))
    stats.by_owner = {pk: {m: WeekCounts() for m in mondays} for pk in owner_ids}
    if not mondays or not owner_ids:
        return stats
    far = settings.LOUDOU_VISIT_FAR_METRES
    done = Q(status=VisitStatus.DONE)
    conditions = {
        "planned": Q(),
        "done": done,
        "cancelled": Q(status=VisitStatus.CANCELLED),
        "checked_in": done & Q(checked_in_at__isnull=False),
        "far": done & Q(distance_m__gt=far),
    }
    columns = {}
    for i, monday in enumerate(mondays):
        week = Q(
            planned_for__gte=local_midnight(monday),
            planned_for__lt=local_midnight(monday + timedelta(days=7)),
        )
        for name, condition in conditions.items():
            columns[f"{name}_{i}"] = Count("pk", filter=week & condition)
    rows = (
        Visit.objects.filter(
            owner_id__in=owner_ids,
            planned_for__gte=local_midnight(min(mondays)),
            planned_for__lt=local_midnight(max(mondays) + timedelta(days=7)),
        )
        .order_by()
        .values("owner_id")
        .annotate(**columns)
    )
    for row in rows:
        weeks = stats.by_owner[row["owner_id"]]
        for i, monday in enumerate(mondays):
            weeks[monday] = WeekCounts(**{name: row[f"{name}_{i}"] for name in METRICS})
    return stats


def stats_rows(stats: VisitStats, people) -> list[dict]:
    """The statistics' rows, in the order of ``people``: ``person``, ``weeks`` (their
    WeekCounts, oldest first) and ``total``, for each person with a visit in the period
    (a rep always, so a rep without visits shows as zeros)."""
    from loudou.org.models import Role

    rows = []
    for person in people:
        total = stats.owner_total(person.pk)
        if total.planned or person.role == Role.REP:
            weeks = [stats.by_owner[person.pk][m] for m in stats.weeks]
            rows.append({"person": person, "weeks": weeks, "total": total})
    return rows


def people_in_scope(user):
    """Whose visit statistics ``user`` may see, as a User queryset: an admin everyone's,
    a manager their team subtree's and their own, a rep their own. Reps and managers who
    have left are kept, so past weeks do not lose their visits."""
    from loudou.org.models import Role, User

    if user is None or not user.is_authenticated or not user.is_active:
        return User.objects.none()
    if user.sees_everything:
        return User.objects.filter(role__in=[Role.REP, Role.MANAGER])
    if user.managed_team_path:
        return User.objects.filter(Q(team__path__startswith=user.managed_team_path) | Q(pk=user.pk))
    return User.objects.filter(pk=user.pk)
