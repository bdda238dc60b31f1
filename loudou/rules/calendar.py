"""Working time: the clock of "within N hours" rules that count working hours only.

Pure functions over a :class:`Calendar` (weekly working ranges, holidays, make-up working
days 调休) in the company's time zone, so that they are tested with any clock; the
database is read once by :func:`load_calendar`.

``add_working_hours(start, h, cal)`` is when ``h`` working hours after ``start`` end.
``subtract_working_hours(end, h, cal)`` is its inverse for the sweep: the latest start
whose ``h`` working hours are over by ``end``. Because the first is monotonic in
``start``, "due by now" is the range ``start <= subtract_working_hours(now, h)``, one
indexed condition in SQL instead of a computation per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from django.utils import timezone

# How far the walk goes before giving up: a calendar with no working time at all (every
# day a holiday) must not loop for ever.
MAX_DAYS = 3 * 366

# What the default rules assume when nothing is configured (the data migration installs
# the same rows): Monday to Friday, 09:00–12:00 and 13:00–18:00.
DEFAULT_WEEK = {
    day: ((time(9), time(12)), (time(13), time(18))) for day in range(5)
}  # fmt: skip


@dataclass(frozen=True)
class Calendar:
    """Working ranges per weekday (0 = Monday), days off, and make-up working days
    (date → the weekday whose ranges they have)."""

    week: dict = field(default_factory=dict)
    holidays: frozenset = frozenset()
    workdays: dict = field(default_factory=dict)
    tz: tzinfo | None = None

    def ranges(self, day: date):
        if day in self.workdays:
            return self.week.get(self.workdays[day], ())
        if day in self.holidays:
            return ()
        return self.week.get(day.weekday(), ())

    @property
    def has_working_time(self) -> bool:
        return any(self.week.values())

    def zone(self):
        return self.tz or timezone.get_current_timezone()


def _at(day: date, moment: time, tz) -> datetime:
    return datetime.combine(day, moment, tzinfo=tz)


def add_working_hours(start: datetime, hours: float, calendar: Calendar) -> datetime:
    """The moment ``hours`` working hours after ``start``. Starting outside working time
    counts from the next working moment. A calendar without working time counts every
    hour (the clock is not stopped by a misconfiguration)."""
    if hours <= 0:
        return start
    if not calendar.has_working_time:
        return start + timedelta(hours=hours)
    tz = calendar.zone()
    local = timezone.localtime(start, tz)
    remaining = timedelta(hours=hours)
    day = local.date()
    for _ in range(MAX_DAYS):
        for begin, end in calendar.ranges(day):
            seg_start = max(_at(day, begin, tz), local)
            seg_end = _at(day, end, tz)
            if seg_start >= seg_end:
                continue
            available = seg_end - seg_start
            if remaining <= available:
                return seg_start + remaining
            remaining -= available
        day += timedelta(days=1)
    return start + timedelta(hours=hours)


def subtract_working_hours(end: datetime, hours: float, calendar: Calendar) -> datetime:
    """The latest start whose ``hours`` working hours are over by ``end``: a record
    started at or before it is due (``add_working_hours(s, hours) <= end``)."""
    if hours <= 0:
        return end
    if not calendar.has_working_time:
        return end - timedelta(hours=hours)
    tz = calendar.zone()
    local = timezone.localtime(end, tz)
    remaining = timedelta(hours=hours)
    day = local.date()
    for _ in range(MAX_DAYS):
        for begin, finish in reversed(tuple(calendar.ranges(day))):
            seg_end = min(_at(day, finish, tz), local)
            seg_start = _at(day, begin, tz)
            if seg_end <= seg_start:
                continue
            available = seg_end - seg_start
            if remaining <= available:
                return seg_end - remaining
            remaining -= available
        day -= timedelta(days=1)
    return end - timedelta(hours=hours)


def due_after(start: datetime, hours: float, *, working: bool, calendar: Calendar) -> datetime:
    """``start`` + ``hours``, in working hours when ``working``."""
    if working:
        return add_working_hours(start, hours, calendar)
    return start + timedelta(hours=hours)


def latest_start(now: datetime, hours: float, *, working: bool, calendar: Calendar) -> datetime:
    """The inverse of :func:`due_after` at ``now``."""
    if working:
        return subtract_working_hours(now, hours, calendar)
    return now - timedelta(hours=hours)


def load_calendar() -> Calendar:
    """The company's calendar from the database (WorkingPeriod, Holiday)."""
    from .models import Holiday, WorkingPeriod

    week: dict[int, list] = {}
    for weekday, begin, end in WorkingPeriod.objects.order_by("weekday", "start").values_list(
        "weekday", "start", "end"
    ):
        if begin < end:
            week.setdefault(weekday, []).append((begin, end))
    holidays, workdays = set(), {}
    for day, is_workday, like in Holiday.objects.values_list("date", "is_workday", "workday_like"):
        if is_workday:
            workdays[day] = like
        else:
            holidays.add(day)
    return Calendar(
        week={k: tuple(v) for k, v in week.items()},
        holidays=frozenset(holidays),
        workdays=workdays,
        tz=timezone.get_current_timezone(),
    )


@dataclass(frozen=True)
class Piece:
    """``due_after`` on ``[start, end)``: ``basis + shift`` (working time) or ``fixed``
    (a start outside working time, or a single moment)."""

    start: datetime
    end: datetime
    shift: timedelta | None = None
    fixed: datetime | None = None

    def due(self, basis: datetime) -> datetime:
        return basis + self.shift if self.shift is not None else self.fixed


TICK = timedelta(microseconds=1)


def working_due_pieces(low: datetime, high: datetime, hours: float, calendar: Calendar):
    """``add_working_hours(b, hours)`` for every ``low <= b <= high`` as contiguous
    pieces on which it is ``b + shift`` or a fixed moment, so that the database computes
    due times with one CASE (engine.FirstContact) instead of a Python walk per record.
    The function is monotonic and piecewise of slope 1 (inside working time) or 0
    (outside), with steps where the due time jumps a gap: its break points are the
    working ranges' ends and the starts whose due time is one of them; each break point
    is a piece of its own (one microsecond), each interval between two is checked at
    both ends. None when it cannot be cut so (no working time, or no pieces found)."""
    if not calendar.has_working_time or hours <= 0 or high < low:
        return None
    tz = calendar.zone()
    top = add_working_hours(high, hours, calendar)
    breaks = {low, high}
    day = timezone.localtime(low, tz).date() - timedelta(days=1)
    last = timezone.localtime(top, tz).date() + timedelta(days=1)
    while day <= last:
        for begin, end in calendar.ranges(day):
            for moment in (_at(day, begin, tz), _at(day, end, tz)):
                if low <= moment <= high:
                    breaks.add(moment)
                back = subtract_working_hours(moment, hours, calendar)
                if low <= back <= high:
                    breaks.add(back)
        day += timedelta(days=1)
    points = sorted(breaks)
    pieces = []
    for i, point in enumerate(points):
        pieces.append(Piece(point, point + TICK, fixed=add_working_hours(point, hours, calendar)))
        if i + 1 == len(points):
            break
        first, final = point + TICK, points[i + 1] - TICK
        if final < first:
            continue
        due_first = add_working_hours(first, hours, calendar)
        due_final = add_working_hours(final, hours, calendar)
        middle = first + (final - first) / 2
        due_middle = add_working_hours(middle, hours, calendar)
        if due_final - due_first == final - first and due_middle - middle == due_first - first:
            pieces.append(Piece(first, points[i + 1], shift=due_first - first))
        elif due_first == due_final == due_middle:
            pieces.append(Piece(first, points[i + 1], fixed=due_first))
        else:  # pragma: no cover - a calendar the cut above does not foresee
            return None
    return pieces
