"""Reporting periods in the company's time zone: 2026Q4, 2026-11, 2026W47, 2026, or a
date range; and the week/month/quarter/year shortcuts of the report filters."""

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone


def local_midnight(day: date) -> datetime:
    """The aware instant at which ``day`` begins in the company's (current) time zone:
    the bound to compare a timestamp column with, so that no row's time is converted."""
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


@dataclass(frozen=True)
class Period:
    """[start, end) as dates; ``label`` as the user wrote it."""

    start: date
    end: date  # exclusive
    label: str

    def bounds(self) -> tuple[datetime, datetime]:
        """Aware datetimes of the start and end in the company's time zone."""
        return local_midnight(self.start), local_midnight(self.end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def previous(self) -> "Period":
        """The period of the same kind just before this one (for growth figures)."""
        return (
            parse_period(_shift(self.label, -1))
            if _KIND.match(self.label)
            else Period(self.start - (self.end - self.start), self.start, f"before {self.label}")
        )

    def year_before(self) -> "Period":
        """The same period a year earlier (for year-on-year growth)."""
        if _KIND.match(self.label):
            try:
                return parse_period(f"{int(self.label[:4]) - 1}{self.label[4:]}")
            except ValueError:  # week 53 of a year that has none
                pass
        start, end = _minus_year(self.start), _minus_year(self.end)
        return Period(start, end, f"{start.isoformat()}–{end.isoformat()}")


_KIND = re.compile(r"^(\d{4})(?:(Q)([1-4])|-(\d{2})|W(\d{2}))?$")


def _minus_year(d: date) -> date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year - 1, day=28)


def _month_start(year: int, month: int) -> date:
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return date(year, month, 1)


def parse_period(text: str) -> Period:
    """Parse 2026, 2026Q4, 2026-11 or 2026W47 (ISO week), years 1900–2999. Raises
    ValueError otherwise."""
    text = text.strip().upper()
    match = _KIND.match(text)
    if not match:
        raise ValueError(f"not a period: {text!r} (use 2026, 2026Q4, 2026-11 or 2026W47)")
    year = int(match.group(1))
    if not 1900 <= year <= 2999:
        raise ValueError(f"year out of range: {text!r}")
    if match.group(2):
        q = int(match.group(3))
        return Period(_month_start(year, 3 * q - 2), _month_start(year, 3 * q + 1), text)
    if match.group(4):
        month = int(match.group(4))
        if not 1 <= month <= 12:
            raise ValueError(f"not a month: {text!r}")
        return Period(_month_start(year, month), _month_start(year, month + 1), text)
    if match.group(5):
        week = int(match.group(5))
        try:
            start = date.fromisocalendar(year, week, 1)
            return Period(start, start + timedelta(days=7), text)
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"not a week: {text!r}") from exc
    return Period(date(year, 1, 1), date(year + 1, 1, 1), text)


def _shift(label: str, step: int) -> str:
    period = parse_period(label)
    match = _KIND.match(label.upper())
    if match.group(2):
        index = period.start.year * 4 + (period.start.month - 1) // 3 + step
        return f"{index // 4}Q{index % 4 + 1}"
    if match.group(4):
        start = _month_start(period.start.year, period.start.month + step)
        return f"{start.year}-{start.month:02d}"
    if match.group(5):
        start = period.start + timedelta(weeks=step)
        iso = start.isocalendar()
        return f"{iso.year}W{iso.week:02d}"
    return str(period.start.year + step)


def containing(kind: str, day: date) -> Period:
    """The week, month, quarter or year that contains ``day``."""
    if kind == "week":
        iso = day.isocalendar()
        return parse_period(f"{iso.year}W{iso.week:02d}")
    if kind == "month":
        return parse_period(f"{day.year}-{day.month:02d}")
    if kind == "quarter":
        return parse_period(f"{day.year}Q{(day.month - 1) // 3 + 1}")
    if kind == "year":
        return parse_period(str(day.year))
    raise ValueError(f"unknown period kind {kind!r}")
