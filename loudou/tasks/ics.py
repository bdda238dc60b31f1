"""The calendar feed (RFC 5545) of one user's tasks, written with ``icalendar``.

Each task is a VEVENT, not a VTODO: the calendar apps of iPhones, Android phones and
Outlook show subscribed events but ignore to-dos. A timed task is an event of
:data:`EVENT_MINUTES` starting at its due time (in UTC); an all-day task is an all-day
event on its local day. The UID is stable per task, so a changed task replaces its old
copy; a reminder becomes a VALARM relative to the start; a done task keeps its place
with a check mark in front of its title.
"""

from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from icalendar import Alarm, Calendar, Event

EVENT_MINUTES = 30
REFRESH = timedelta(minutes=15)
DONE_MARK = "✓ "


def uid(task) -> str:
    return f"task-{task.pk}@loudou"


def _description(task, url: str) -> str:
    lines = []
    if task.notes:
        lines.append(task.notes)
    subject = task.subject
    if subject is not None:
        lines.append(f"{subject._meta.verbose_name}: {subject}")
    lines.append(url)
    return "\n".join(lines)


def _event(task, base_url: str) -> Event:
    url = base_url.rstrip("/") + task.get_absolute_url()
    event = Event()
    event.add("uid", uid(task))
    event.add("dtstamp", task.updated_at.astimezone(UTC))
    event.add("last-modified", task.updated_at.astimezone(UTC))
    event.add("sequence", task.version)
    event.add("summary", (DONE_MARK if task.done_at else "") + task.title)
    if task.all_day:
        day = timezone.localdate(task.due_at)
        start = timezone.make_aware(datetime.combine(day, time.min))
        event.add("dtstart", day)
        event.add("dtend", day + timedelta(days=1))
        event.add("transp", "TRANSPARENT")
    else:
        start = task.due_at
        event.add("dtstart", task.due_at.astimezone(UTC))
        event.add("dtend", (task.due_at + timedelta(minutes=EVENT_MINUTES)).astimezone(UTC))
    event.add("description", _description(task, url))
    event.add("url", url)
    event.add("categories", [task.get_kind_display()])
    if task.remind_at and not task.done_at:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", task.title)
        alarm.add("trigger", task.remind_at - start)
        event.add_component(alarm)
    return event


def feed(user, tasks, base_url: str) -> bytes:
    """The whole calendar of ``user``'s ``tasks``, with links under ``base_url``."""
    with translation.override(user.language or settings.LANGUAGE_CODE):
        cal = Calendar()
        cal.add("prodid", "-//Loudou//Tasks//EN")
        cal.add("version", "2.0")
        cal.add("calscale", "GREGORIAN")
        cal.add("method", "PUBLISH")
        cal.add("x-wr-calname", _("Loudou tasks · %(user)s") % {"user": user})
        cal.add("x-wr-timezone", timezone.get_current_timezone_name())
        cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
        cal.add("x-published-ttl", REFRESH)
        for task in tasks:
            cal.add_component(_event(task, base_url))
        return cal.to_ical()
