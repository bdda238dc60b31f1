"""Read-side queries on activities for other apps (performance, onboarding, reports).

Every function aggregates in the database (GROUP BY); none loops over rows. Periods are
local dates in the company's time zone, ``start`` included and ``end`` excluded. These
functions do not apply a user's visibility: the caller decides whose numbers to ask for.
"""

from datetime import date, timedelta

from django.db.models import Count, Q, QuerySet, Sum

from loudou.analytics.periods import local_midnight

from .choices import Kind
from .models import Activity


def _period(start: date, end: date, *, owners=None, kinds=None, purposes=None) -> QuerySet:
    qs = Activity.objects.filter(
        occurred_at__gte=local_midnight(start), occurred_at__lt=local_midnight(end)
    )
    if owners is not None:
        if isinstance(owners, QuerySet):
            owners = owners.values("pk")
        qs = qs.filter(owner_id__in=owners)
    if kinds is not None:
        qs = qs.filter(kind__in=list(kinds))
    if purposes is not None:
        qs = qs.filter(purpose__in=list(purposes))
    return qs.order_by()


def counts_by_owner(
    start: date, end: date, *, owners=None, kinds=None, purposes=None
) -> dict[int, int]:
    """How many activities each owner logged with ``occurred_at`` in [start, end).

    ``owners``: user ids, a User queryset, or None for everybody; ``kinds`` and
    ``purposes``: lists of choice values, or None for all. Owners without any activity
    are absent from the result (read it with ``.get(pk, 0)``).
    """
    rows = (
        _period(start, end, owners=owners, kinds=kinds, purposes=purposes)
        .filter(owner_id__isnull=False)
        .values("owner_id")
        .annotate(n=Count("pk"))
        .values_list("owner_id", "n")
    )
    return dict(rows)


def minutes_by_owner(
    start: date, end: date, *, owners=None, kinds=None, purposes=None
) -> dict[int, int]:
    """The sum of ``duration_minutes`` per owner over [start, end); activities without
    a duration count as 0. Same arguments as :func:`counts_by_owner`; owners whose
    activities have no duration at all are absent."""
    rows = (
        _period(start, end, owners=owners, kinds=kinds, purposes=purposes)
        .filter(owner_id__isnull=False, duration_minutes__isnull=False)
        .values("owner_id")
        .annotate(m=Sum("duration_minutes"))
        .values_list("owner_id", "m")
    )
    return {owner: int(minutes) for owner, minutes in rows}


def _weekly(start, end, value, *, owners=None, kinds=None, purposes=None):
    """``value`` (a Count or Sum over a condition) per owner and local week, in one
    query: a conditional aggregate per week, bounded by local midnights computed here, so
    the database compares plain timestamps (no per-row time zone conversion, which
    SQLite would do in Python)."""
    mondays = []
    monday = week_start(start)
    while monday < end:
        mondays.append(monday)
        monday += timedelta(days=7)
    if not mondays:
        return {}
    columns = {}
    for i, monday in enumerate(mondays):
        lower = local_midnight(max(monday, start))
        upper = local_midnight(min(monday + timedelta(days=7), end))
        columns[f"w{i}"] = value(Q(occurred_at__gte=lower, occurred_at__lt=upper))
    rows = (
        _period(start, end, owners=owners, kinds=kinds, purposes=purposes)
        .filter(owner_id__isnull=False)
        .values("owner_id")
        .annotate(**columns)
    )
    result: dict[int, dict[date, int]] = {}
    for row in rows:
        weeks = {m: int(row[f"w{i}"]) for i, m in enumerate(mondays) if row[f"w{i}"]}
        if weeks:
            result[row["owner_id"]] = weeks
    return result


def counts_by_owner_and_week(
    start: date, end: date, *, owners=None, kinds=None, purposes=None
) -> dict[int, dict[date, int]]:
    """:func:`counts_by_owner` per local week (Monday): ``{owner_id: {monday: n}}``, in
    one query. Weeks without an activity are absent; a week cut by ``start`` or ``end``
    counts only its days inside."""
    return _weekly(
        start, end, lambda when: Count("pk", filter=when),
        owners=owners, kinds=kinds, purposes=purposes,
    )  # fmt: skip


def minutes_by_owner_and_week(
    start: date, end: date, *, owners=None, kinds=None, purposes=None
) -> dict[int, dict[date, int]]:
    """:func:`minutes_by_owner` per local week (Monday), in one query."""
    return _weekly(
        start, end, lambda when: Sum("duration_minutes", filter=when),
        owners=owners, kinds=kinds, purposes=purposes,
    )  # fmt: skip


def visits_by_week(start: date, end: date, *, owners=None) -> dict[int, dict[date, int]]:
    """Visit statistics: visits per owner and local week (Monday) over [start, end),
    ``{owner_id: {monday: count}}``."""
    return counts_by_owner_and_week(start, end, owners=owners, kinds=[Kind.VISIT])


def week_start(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())
