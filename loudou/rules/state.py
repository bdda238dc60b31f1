"""The per-subject follow-up state (first and last contact, number of contacts), kept in
step with the activities in bulk.

Every refresh recomputes the state of a set of subjects from their activities with one
``INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE`` per subject kind (SQLite and
PostgreSQL both have the upsert): the rows never pass through Python, a recomputation is
idempotent, and two writers at once cannot trip over each other's inserts.

A *contact* is any activity except desk research and cancelled ones (a call nobody
answered is a contact attempt and counts; docs/rules.md).
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Count, Max, Min, Q, QuerySet, Value
from django.db.models import fields as model_fields
from django.utils import timezone

from loudou.activities.choices import Kind, Outcome
from loudou.activities.models import Activity

from .models import AccountFollowUp, LeadFollowUp, OpportunityFollowUp

# subject kind → (state model, the activity's link column)
STATES = {
    "lead": (LeadFollowUp, "lead_id"),
    "account": (AccountFollowUp, "account_id"),
    "opportunity": (OpportunityFollowUp, "opportunity_id"),
}


def contacts() -> QuerySet:
    """The activities that count as contacts."""
    return Activity.objects.exclude(kind=Kind.RESEARCH).exclude(outcome=Outcome.CANCELLED)


def contact_q() -> Q:
    return ~Q(kind=Kind.RESEARCH) & ~Q(outcome=Outcome.CANCELLED)


def _upsert(kind: str, subjects, now) -> None:
    """Recompute the state of the subjects of ``kind`` selected by ``subjects`` (a
    queryset of ids, or None for all)."""
    model, column = STATES[kind]
    rows = contacts().filter(**{f"{column}__isnull": False})
    if subjects is not None:
        rows = rows.filter(**{f"{column}__in": subjects})
    select = (
        rows.order_by()
        .values(column)
        .annotate(
            _first=Min("occurred_at"),
            _last=Max("occurred_at"),
            _n=Count("pk"),
            _id=Max("pk"),
            _now=Value(now, output_field=model_fields.DateTimeField()),
        )
        .values_list(column, "_first", "_last", "_n", "_id", "_now")
    )
    sql, params = select.query.sql_with_params()
    quote = connection.ops.quote_name
    pk = model._meta.pk.column
    names = [pk, "first_contact_at", "last_contact_at", "contact_count", "last_activity_id",
             "updated_at"]  # fmt: skip
    columns = ", ".join(quote(c) for c in names)
    updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in names[1:])
    # SQLite needs a WHERE in an upsert's SELECT to tell its ON CONFLICT from a join's ON.
    if " WHERE " not in sql:
        sql = sql.replace(" GROUP BY ", " WHERE 1 = 1 GROUP BY ", 1)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(model._meta.db_table)} ({columns}) {sql} "
            f"ON CONFLICT ({quote(pk)}) DO UPDATE SET {updates}",
            params,
        )


def refresh(*, leads=None, accounts=None, opportunities=None, now=None) -> None:
    """Recompute the state of the given subjects (lists or querysets of ids). Given as a
    list, a subject whose contacts were all deleted loses its state row (it was never
    contacted, as far as the rules can tell); a queryset (the sweep's catch-up of new
    activities) only adds and updates."""
    now = now or timezone.now()
    for kind, ids in (("lead", leads), ("account", accounts), ("opportunity", opportunities)):
        if ids is None:
            continue
        if isinstance(ids, list | tuple | set | frozenset):
            ids = [i for i in ids if i is not None]
            if not ids:
                continue
            model, column = STATES[kind]
            contacted = contacts().filter(**{f"{column}__in": ids}).values(column)
            model.objects.filter(pk__in=ids).exclude(pk__in=contacted).delete()
        _upsert(kind, ids, now)


def changed_activities(*, after_id: int, since) -> QuerySet:
    """Activities with an id above ``after_id`` (rows written in bulk by imports or the
    demo, which emit no event) or created since ``since`` (rows whose transaction
    committed after a later id had been seen), as one id range: from the lower of
    ``after_id`` and the first id created since ``since`` (one indexed MIN). The range
    may hold a few older rows again; recomputing them changes nothing."""
    first = Activity.objects.filter(created_at__gte=since).aggregate(first=Min("pk"))["first"]
    if first is not None:
        after_id = min(after_id, first - 1)
    return Activity.objects.filter(pk__gt=after_id)


def catch_up(*, after_id: int, since, now=None) -> None:
    """Recompute the state of every subject touched by :func:`changed_activities`; the
    id sets stay in the database (one subquery each)."""
    now = now or timezone.now()
    changed = changed_activities(after_id=after_id, since=since)
    for kind, (_model, column) in STATES.items():
        ids = changed.filter(**{f"{column}__isnull": False}).values(column).distinct()
        _upsert(kind, ids, now)


def rebuild(*, now=None) -> None:
    """Recompute every subject's state from all activities (the first sweep, or
    ``loudou rules sweep --rebuild``)."""
    now = now or timezone.now()
    for kind, (model, _column) in STATES.items():
        model.objects.all().delete()
        _upsert(kind, None, now)
