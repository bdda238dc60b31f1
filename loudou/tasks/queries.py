"""Read-side helpers the pages, the calendar, the feed and the API share."""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Q
from django.utils import timezone

from loudou.analytics.periods import local_midnight
from loudou.org.models import assignable_owners

from .models import FEED_DONE_WINDOW, Task

RELATED = ("owner", "lead", "account", "contact", "opportunity")


def with_related(qs):
    """What a list row shows: owner, linked records and assignees, in a fixed number of
    queries whatever the number of rows."""
    return qs.select_related(*RELATED).prefetch_related("assignees")


def mark_changeable(tasks, user) -> list:
    """Set ``can_change`` on each task (the rule of services.can_change) with at most one
    query for the whole list; the tasks' assignees must be prefetched."""
    tasks = list(tasks)
    if user.sees_everything:
        team = None
    elif user.managed_team_path:
        team = set(assignable_owners(user).values_list("pk", flat=True))
    else:
        team = set()
    for t in tasks:
        t.can_change = (
            team is None
            or t.owner_id == user.pk
            or t.owner_id in team
            or any(a.pk == user.pk for a in t.assignees.all())
        )
    return tasks


def feed_tasks(user, now=None):
    """The tasks of a user's calendar feed: every open task they are an assignee of, and
    the ones done in the last 30 days."""
    now = now or timezone.now()
    recent = Q(done_at__isnull=True) | Q(done_at__gte=now - FEED_DONE_WINDOW)
    qs = Task.objects.assigned_to(user).filter(recent)
    return qs.select_related("lead", "account", "contact", "opportunity").order_by("due_at", "pk")


# --- calendar ----------------------------------------------------------------------------

VIEWS = ("day", "week", "month")


@dataclass
class Period:
    """The days a calendar view shows: [start, end), and where prev/next/today lead."""

    view: str
    anchor: date
    start: date
    end: date
    prev: date
    next: date

    @property
    def bounds(self):
        return local_midnight(self.start), local_midnight(self.end)


def period(view: str, anchor: date) -> Period:
    if view == "day":
        return Period(view, anchor, anchor, anchor + timedelta(days=1),
                      anchor - timedelta(days=1), anchor + timedelta(days=1))  # fmt: skip
    if view == "week":
        start = anchor - timedelta(days=anchor.weekday())
        return Period(view, anchor, start, start + timedelta(days=7),
                      anchor - timedelta(days=7), anchor + timedelta(days=7))  # fmt: skip
    first = anchor.replace(day=1)
    next_first = (first + timedelta(days=32)).replace(day=1)
    prev_first = (first - timedelta(days=1)).replace(day=1)
    start = first - timedelta(days=first.weekday())
    last = next_first - timedelta(days=1)
    end = last + timedelta(days=7 - last.weekday())
    return Period(view, first, start, end, prev_first, next_first)


@dataclass
class Day:
    """One day of a calendar view with its tasks: all-day ones first, then by time."""

    day: date
    in_period: bool
    is_today: bool
    all_day: list = field(default_factory=list)
    timed: list = field(default_factory=list)

    @property
    def tasks(self) -> list:
        return self.all_day + self.timed

    @property
    def is_weekend(self) -> bool:
        return self.day.weekday() >= 5


def days(p: Period, tasks, today: date) -> list[Day]:
    """The days of ``p`` with ``tasks`` placed on their local due day."""
    result = []
    by_day: dict[date, Day] = {}
    current = p.start
    while current < p.end:
        in_period = p.view != "month" or current.month == p.anchor.month
        d = Day(current, in_period, current == today)
        result.append(d)
        by_day[current] = d
        current += timedelta(days=1)
    for t in tasks:
        d = by_day.get(timezone.localdate(t.due_at))
        if d is not None:
            (d.all_day if t.all_day else d.timed).append(t)
    return result


def weeks(day_list: list[Day]) -> list[list[Day]]:
    return [day_list[i : i + 7] for i in range(0, len(day_list), 7)]
