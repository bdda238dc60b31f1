"""The working-hours clock of follow-up rules (loudou.rules.calendar): pure functions,
tested with a controlled calendar across lunch, nights, weekends, holidays and make-up
working days (调休)."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loudou.rules.calendar import (
    DEFAULT_WEEK,
    Calendar,
    add_working_hours,
    load_calendar,
    subtract_working_hours,
)

TZ = ZoneInfo("Asia/Shanghai")
# 2025-09-29 is a Monday. 国庆 2025: 1–8 October off, Sunday 28 September and Saturday
# 11 October worked.
WEEK = Calendar(week=DEFAULT_WEEK, tz=TZ)
GOLDEN_WEEK = Calendar(
    week=DEFAULT_WEEK,
    holidays=frozenset(date(2025, 10, d) for d in range(1, 9)),
    workdays={date(2025, 9, 28): 0, date(2025, 10, 11): 0},
    tz=TZ,
)


def at(y, m, d, h, mi=0):
    return datetime(y, m, d, h, mi, tzinfo=TZ)


def test_hours_inside_one_morning():
    """Two working hours from 09:30 end at 11:30 the same morning."""
    assert add_working_hours(at(2025, 9, 29, 9, 30), 2, WEEK) == at(2025, 9, 29, 11, 30)


def test_lunch_break_does_not_count():
    """Five hours from 09:00 run 09–12 and 13–15: due at 15:00, not 14:00."""
    assert add_working_hours(at(2025, 9, 29, 9), 5, WEEK) == at(2025, 9, 29, 15)


def test_start_in_the_evening_counts_from_next_morning():
    """A lead arriving at 20:00 on Monday has its 5 hours from Tuesday 09:00."""
    assert add_working_hours(at(2025, 9, 29, 20), 5, WEEK) == at(2025, 9, 30, 15)


def test_friday_afternoon_runs_over_the_weekend():
    """From Friday 17:00, five hours: one on Friday, then Monday 09–12 and 13–14."""
    assert add_working_hours(at(2025, 9, 26, 17), 5, WEEK) == at(2025, 9, 29, 14)


def test_holidays_are_skipped():
    """From Tuesday 30 September 17:00 with the National Day week off: one hour that
    day, then nothing until Thursday 9 October."""
    assert add_working_hours(at(2025, 9, 30, 17), 5, GOLDEN_WEEK) == at(2025, 10, 9, 14)
    assert add_working_hours(at(2025, 9, 30, 17), 5, WEEK) == at(2025, 10, 1, 14)


def test_make_up_days_are_worked():
    """Sunday 28 September and Saturday 11 October are worked (调休) like a Monday: a
    lead at 08:00 that Sunday is due 15:00 the same day, one on Friday 10 October at
    17:00 on the Saturday at 14:00."""
    assert add_working_hours(at(2025, 9, 28, 8), 5, GOLDEN_WEEK) == at(2025, 9, 28, 15)
    assert add_working_hours(at(2025, 9, 28, 8), 5, WEEK) == at(2025, 9, 29, 15)
    assert add_working_hours(at(2025, 10, 10, 17), 5, GOLDEN_WEEK) == at(2025, 10, 11, 14)


def test_end_of_range_exactly():
    """An amount that ends exactly at 18:00 is due at 18:00, not the next morning."""
    assert add_working_hours(at(2025, 9, 29, 13), 5, WEEK) == at(2025, 9, 29, 18)


def test_subtract_is_the_latest_start():
    """At Monday 14:00, five working hours back is Friday 17:00; at Monday 20:00 (after
    work) it is Monday 13:00."""
    assert subtract_working_hours(at(2025, 9, 29, 14), 5, WEEK) == at(2025, 9, 26, 17)
    assert subtract_working_hours(at(2025, 9, 29, 20), 5, WEEK) == at(2025, 9, 29, 13)


def test_no_working_time_counts_every_hour():
    """A calendar without working hours does not stop the clock."""
    empty = Calendar(tz=TZ)
    assert add_working_hours(at(2025, 9, 27, 22), 5, empty) == at(2025, 9, 28, 3)
    assert subtract_working_hours(at(2025, 9, 28, 3), 5, empty) == at(2025, 9, 27, 22)


MOMENTS = st.datetimes(
    min_value=datetime(2025, 9, 20),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(2025, 10, 20),  # noqa: DTZ001
    timezones=st.just(TZ),
)


@settings(max_examples=300, deadline=None)
@given(start=MOMENTS, end=MOMENTS, hours=st.integers(min_value=1, max_value=40))
def test_due_by_end_exactly_when_started_by_latest_start(start, end, hours):
    """The sweep's range condition is exact: a record started at ``start`` is due by
    ``end`` if and only if ``start <= subtract_working_hours(end, hours)``."""
    due = add_working_hours(start, hours, GOLDEN_WEEK)
    latest = subtract_working_hours(end, hours, GOLDEN_WEEK)
    assert (due <= end) == (start <= latest)


@settings(max_examples=200, deadline=None)
@given(start=MOMENTS, hours=st.integers(min_value=1, max_value=40))
def test_due_time_is_working_time(start, hours):
    """The due time always falls inside (or at the end of) a working range."""
    due = add_working_hours(start, hours, GOLDEN_WEEK).astimezone(TZ)
    ranges = GOLDEN_WEEK.ranges(due.date())
    assert any(begin < due.time() <= end for begin, end in ranges)


@pytest.mark.django_db
def test_calendar_from_the_database_has_the_default_week():
    """The data migration installs Monday–Friday 09:00–12:00 and 13:00–18:00."""
    calendar = load_calendar()
    assert calendar.ranges(date(2025, 9, 29)) == ((time(9), time(12)), (time(13), time(18)))
    assert calendar.ranges(date(2025, 9, 27)) == ()
    assert add_working_hours(at(2025, 9, 26, 17), 5, calendar) == at(2025, 9, 29, 14)
    assert timedelta(0) == add_working_hours(at(2025, 9, 26, 17), 0, calendar) - at(2025, 9, 26, 17)
