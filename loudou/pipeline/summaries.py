"""Maintained summaries of the stage history, so that the funnel reports need no scan of
a million opportunities or millions of history rows (DOMAIN §8, issue 4).

Three tables, all derived — never a source of truth:

- ``FunnelCount``: per (pipeline, owner, furthest stage, status) the number of
  opportunities, their summed amount (cents) and their summed recorded stays (for a won
  deal: its cycle). The funnel's entered/advanced/lost/open, the win rates, the won
  count and amount and the velocity's cycle all come from it.
- ``StayCount``: per (stage left, whole hour of the stay) the number of completed stays
  and their seconds: the time-in-stage histogram.
- ``OpenCount``: per (pipeline, owner, current stage, amount band) the number of open
  opportunities and their summed amount (cents): the open pipeline now (the funnel's
  open amounts, the per-rep open shape, the forecast's weighted pipeline and the Monte
  Carlo's amount groups).
- ``SummaryState``: the id of the last StageChange known to be in the summaries.

How they stay equal to a recomputation from the history:

- The pipeline services change them in the same transaction as the StageChange they
  write (:func:`apply`), touching rows in key order (no deadlock between two moves).
- Deleting opportunities (one, or a queryset: an import's undo) takes them out of the
  summaries in the same transaction (:func:`on_opportunity_deleted`, a pre_delete
  receiver; one pass per queryset, not per row).
- A hand-over (``handed_over`` event) recounts the FunnelCount rows of the people
  involved (:func:`recount_owners`); an admin edit applies its difference.
- Whatever else writes opportunities or history in bulk (the importer, the test-data
  generator) calls :func:`rebuild_summaries` afterwards. As a safety net,
  :func:`ensure_fresh` (called by every report) sees history written past
  ``SummaryState.last_change_id`` and rebuilds first; a bulk *update* of existing
  opportunities' owner, amount, status or furthest stage without new history cannot be
  seen that way, so such a path must call :func:`rebuild_summaries`.
"""

from __future__ import annotations

import threading
import weakref
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from loudou.core.db import Cents

from .choices import Status
from .models import FunnelCount, OpenCount, Opportunity, StageChange, StayCount, SummaryState

HOUR = 3600
STATE_ID = 1
# the summaries' unique keys and the values added up under them (see _upsert)
COUNT_KEYS = ["pipeline", "owner_key", "furthest_stage", "status"]
COUNT_VALUES = ["count", "amount_cents", "stays_seconds"]
STAY_KEYS = ["stage", "hour"]
STAY_VALUES = ["count", "seconds"]
OPEN_KEYS = ["pipeline", "owner_key", "stage", "band"]
OPEN_VALUES = ["count", "amount_cents"]
# The amount bands of the open pipeline (OpenCount.band i: amount < AMOUNT_EDGES[i], the
# last band above them all): the Monte Carlo forecast treats the deals of one band alike.
AMOUNT_EDGES = [1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
                1_000_000, 2_000_000, 5_000_000, 10_000_000]  # fmt: skip


def band_of(amount) -> int:
    """The amount band of ``amount`` (as band_expression())."""
    amount = Decimal(amount or 0)
    for i, edge in enumerate(AMOUNT_EDGES):
        if amount < edge:
            return i
    return len(AMOUNT_EDGES)


def band_expression(field: str = "amount"):
    """The amount band of a money column, computed by the database."""
    return Case(
        *[When(**{f"{field}__lt": edge}, then=Value(i)) for i, edge in enumerate(AMOUNT_EDGES)],
        default=Value(len(AMOUNT_EDGES)),
        output_field=IntegerField(),
    )


def cents(amount) -> int:
    return int((Decimal(amount) * 100).to_integral_value(ROUND_HALF_UP))


def snapshot(opp: Opportunity) -> tuple:
    """What an opportunity contributes to the summaries: its FunnelCount key, amount
    (cents) and stays, and its OpenCount key (None unless open)."""
    key = (opp.pipeline_id, opp.owner_id or 0, opp.furthest_stage_id, opp.status)
    open_key = None
    if opp.status == Status.OPEN:
        open_key = (opp.pipeline_id, opp.owner_id or 0, opp.stage_id, band_of(opp.amount))
    return key, cents(opp.amount), int(opp.stays_seconds or 0), open_key


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _upsert(model, keys: list[str], values: list[str], rows: list[tuple]) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET v = v + excluded.v, for each row
    (key values then value deltas), in key order."""
    if not rows:
        return
    table = _quote(model._meta.db_table)
    columns = [model._meta.get_field(k).column for k in keys] + values
    sql = (
        f"INSERT INTO {table} ({', '.join(_quote(c) for c in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(_quote(model._meta.get_field(k).column) for k in keys)}) "
        "DO UPDATE SET "
        + ", ".join(f"{_quote(v)} = {table}.{_quote(v)} + excluded.{_quote(v)}" for v in values)
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, sorted(rows))


def apply(before: tuple | None, after: tuple | None, *, stay=None, change_id=None) -> None:
    """Move one opportunity's contribution from ``before`` to ``after`` (snapshots; None
    for "did not exist"), add a completed ``stay`` = (stage id, seconds), and advance
    the state past ``change_id`` (the StageChange just written). Inside the service's
    transaction, after the opportunity row is locked."""
    deltas: dict[tuple, list[int]] = {}
    open_deltas: dict[tuple, list[int]] = {}
    for snap, sign in ((before, -1), (after, 1)):
        if snap is None:
            continue
        key, amount, stays, open_key = snap
        entry = deltas.setdefault(key, [0, 0, 0])
        entry[0] += sign
        entry[1] += sign * amount
        entry[2] += sign * stays
        if open_key is not None:
            entry = open_deltas.setdefault(open_key, [0, 0])
            entry[0] += sign
            entry[1] += sign * amount
    rows = [(*key, *d) for key, d in deltas.items() if any(d)]
    _upsert(FunnelCount, COUNT_KEYS, COUNT_VALUES, rows)
    rows = [(*key, *d) for key, d in open_deltas.items() if any(d)]
    _upsert(OpenCount, OPEN_KEYS, OPEN_VALUES, rows)
    if stay is not None and stay[1] is not None:
        stage_id, seconds = stay
        _upsert(StayCount, STAY_KEYS, STAY_VALUES, [(stage_id, seconds // HOUR, 1, seconds)])
    if change_id is not None:
        _advance(change_id)


def _advance(change_id: int) -> None:
    """Move the state to ``change_id`` if every earlier change was already in the
    summaries (a bulk load's rows past the state keep it behind, so that the next report
    rebuilds)."""
    state = _quote(SummaryState._meta.db_table)
    changes = _quote(StageChange._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {state} SET last_change_id = %s WHERE id = %s AND last_change_id < %s "
            f"AND last_change_id >= COALESCE((SELECT MAX(id) FROM {changes} WHERE id < %s), 0)",
            [change_id, STATE_ID, change_id, change_id],
        )


def is_fresh() -> bool:
    """True when no history row was written past the summaries (two index lookups)."""
    last = SummaryState.objects.filter(pk=STATE_ID).values_list("last_change_id", flat=True)
    newest = StageChange.objects.aggregate(m=Max("pk"))["m"]
    known = last.first()
    return newest is None or (known is not None and newest <= known)


def ensure_fresh() -> None:
    """Rebuild the summaries when a bulk load wrote history behind their back."""
    if not is_fresh():
        rebuild_summaries()


def _lock_writers() -> None:
    """Keep the services' writers out while the summaries are rebuilt: on PostgreSQL an
    EXCLUSIVE lock on the opportunities waits for every transaction that locked one
    (services lock the row first) and holds new ones back; plain reads go on. SQLite's
    IMMEDIATE transaction already serialises writers."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {_quote(Opportunity._meta.db_table)} IN EXCLUSIVE MODE")


def _refresh_stays_seconds(opportunity_ids=None, *, since: int | None = None) -> None:
    """Set Opportunity.stays_seconds = Σ stay_seconds of its history, for the given
    opportunities and those with history rows after ``since``, one set-based UPDATE
    per 5,000."""
    ids: set[int] = set(opportunity_ids or ())
    if since is not None:
        ids |= set(
            StageChange.objects.filter(pk__gt=since)
            .values_list("opportunity_id", flat=True)
            .distinct()
            .order_by()
        )
    total = Subquery(
        StageChange.objects.filter(opportunity=OuterRef("pk"), stay_seconds__isnull=False)
        .order_by()
        .values("opportunity")
        .annotate(s=Sum("stay_seconds"))
        .values("s")
    )
    ordered = sorted(ids)
    for start in range(0, len(ordered), 5000):
        chunk = ordered[start : start + 5000]
        Opportunity.objects.filter(pk__in=chunk).update(stays_seconds=Coalesce(total, Value(0)))


def _refresh_all_stays_seconds() -> None:
    """Opportunity.stays_seconds for every opportunity: two statements, the second an
    UPDATE … FROM one grouped pass over the history (a hash join, not one subquery per
    opportunity)."""
    opps = _quote(Opportunity._meta.db_table)
    changes = _quote(StageChange._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {opps} SET stays_seconds = 0 WHERE stays_seconds <> 0")
        cursor.execute(
            f"UPDATE {opps} SET stays_seconds = t.s FROM (SELECT opportunity_id, "
            f"SUM(stay_seconds) AS s FROM {changes} WHERE stay_seconds IS NOT NULL "
            f"GROUP BY opportunity_id) AS t WHERE {opps}.id = t.opportunity_id"
        )


def _count_rows(opportunities, sign: int = 1) -> list[tuple]:
    """FunnelCount rows (key, then count, cents, stays) of these opportunities, one
    GROUP BY; ``sign=-1`` for their removal."""
    rows = (
        opportunities.order_by()
        .values("pipeline_id", "owner_id", "furthest_stage_id", "status")
        .annotate(n=Count("pk"), c=Sum(Cents("amount")), s=Sum("stays_seconds"))
    )
    return [
        (r["pipeline_id"], r["owner_id"] or 0, r["furthest_stage_id"], r["status"],
         sign * r["n"], sign * int(r["c"] or 0), sign * int(r["s"] or 0))
        for r in rows
    ]  # fmt: skip


def _open_rows(opportunities, sign: int = 1) -> list[tuple]:
    """OpenCount rows (key, then count, cents) of these opportunities' open ones, one
    GROUP BY; ``sign=-1`` for their removal."""
    rows = (
        opportunities.filter(status=Status.OPEN)
        .order_by()
        .annotate(band=band_expression())
        .values("pipeline_id", "owner_id", "stage_id", "band")
        .annotate(n=Count("pk"), c=Sum(Cents("amount")))
    )
    return [
        (r["pipeline_id"], r["owner_id"] or 0, r["stage_id"], r["band"], sign * r["n"],
         sign * int(r["c"] or 0))
        for r in rows
    ]  # fmt: skip


def _stay_rows(changes, sign: int = 1) -> list[tuple]:
    """StayCount rows (stage, hour, count, seconds) of these StageChange rows' completed
    stays, one GROUP BY; ``sign=-1`` for their removal."""
    rows = (
        changes.filter(stay_seconds__isnull=False)
        .order_by()
        .annotate(hour=F("stay_seconds") / HOUR)
        .values("from_stage_id", "hour")
        .annotate(n=Count("pk"), s=Sum("stay_seconds"))
    )
    return [(r["from_stage_id"], int(r["hour"]), sign * r["n"], sign * int(r["s"])) for r in rows]


def _insert(model, fields: list[str], rows: list[tuple]) -> None:
    model.objects.bulk_create(
        [model(**dict(zip(fields, row, strict=True))) for row in rows], batch_size=2000
    )


COUNT_FIELDS = ["pipeline_id", "owner_key", "furthest_stage_id", "status", "count",
                "amount_cents", "stays_seconds"]  # fmt: skip
STAY_FIELDS = ["stage_id", "hour", "count", "seconds"]
OPEN_FIELDS = ["pipeline_id", "owner_key", "stage_id", "band", "count", "amount_cents"]


@transaction.atomic
def rebuild_summaries(opportunity_ids=None) -> None:
    """Recompute every summary from the opportunities and their history, exactly as the
    services would have kept them. Call it after writing opportunities or StageChange
    rows in bulk (``opportunity_ids``: those whose history was written, updated or
    deleted behind the services' back; their stays_seconds is recomputed — rows written
    after the summaries' state are found without being named)."""
    _lock_writers()
    state, _created = SummaryState.objects.get_or_create(pk=STATE_ID)
    newest = StageChange.objects.aggregate(m=Max("pk"))["m"] or 0
    if state.last_change_id <= 0 and opportunity_ids is None:
        _refresh_all_stays_seconds()  # never summarised: every opportunity
    else:
        _refresh_stays_seconds(opportunity_ids, since=state.last_change_id)
    _recount(FunnelCount.objects.all(), OpenCount.objects.all(), Opportunity.objects.all())
    StayCount.objects.all().delete()
    _insert(StayCount, STAY_FIELDS, _stay_rows(StageChange.objects.all()))
    SummaryState.objects.filter(pk=STATE_ID).update(last_change_id=newest)


def _recount(funnel_rows, open_rows, opportunities) -> None:
    """Replace these FunnelCount and OpenCount rows by a recount of ``opportunities``
    (the same slice of the summaries); the caller keeps the writers out (_lock_writers)."""
    funnel_rows.delete()
    open_rows.delete()
    _insert(FunnelCount, COUNT_FIELDS, _count_rows(opportunities))
    _insert(OpenCount, OPEN_FIELDS, _open_rows(opportunities))


@transaction.atomic
def recount_owners(owner_ids) -> None:
    """Recount the FunnelCount and OpenCount rows of these owners from their
    opportunities (after their deals changed hands in bulk: a hand-over)."""
    keys = sorted({o or 0 for o in owner_ids})
    if not keys:
        return
    owned = Q(owner_id__in=[k for k in keys if k])
    if 0 in keys:
        owned |= Q(owner__isnull=True)
    _lock_writers()
    _recount(
        FunnelCount.objects.filter(owner_key__in=keys),
        OpenCount.objects.filter(owner_key__in=keys),
        Opportunity.objects.filter(owned),
    )


@transaction.atomic
def recount_pipeline(pipeline_id: int) -> None:
    """Recount the FunnelCount and OpenCount rows of one pipeline (after its furthest
    stages were recomputed in bulk: a reorder of its stages)."""
    _lock_writers()
    _recount(
        FunnelCount.objects.filter(pipeline_id=pipeline_id),
        OpenCount.objects.filter(pipeline_id=pipeline_id),
        Opportunity.objects.filter(pipeline_id=pipeline_id),
    )


def on_handed_over(record, **context) -> None:
    """``handed_over``: the giver's and the receivers' opportunities changed owner."""
    owners = {record.from_user_id, record.to_user_id}
    owners |= {share.get("to_id") for share in (record.shares or [])}
    recount_owners(o for o in owners if o)


def _subtract(opportunities) -> None:
    """Take these opportunities (a queryset, rows still there) out of the summaries."""
    _upsert(FunnelCount, COUNT_KEYS, COUNT_VALUES, _count_rows(opportunities, -1))
    _upsert(OpenCount, OPEN_KEYS, OPEN_VALUES, _open_rows(opportunities, -1))
    changes = StageChange.objects.filter(opportunity__in=opportunities.values("pk"))
    _upsert(StayCount, STAY_KEYS, STAY_VALUES, _stay_rows(changes, -1))


_handled = threading.local()


def on_opportunity_deleted(sender, instance, origin=None, **kwargs) -> None:
    """pre_delete of an Opportunity: its counts and stays leave the summaries before the
    rows go. A queryset's deletion is handled once, for all its rows. When the summaries
    are behind a bulk load already, they are marked for a full rebuild instead (what
    they hold is not known exactly)."""
    from django.db.models import QuerySet

    batch = isinstance(origin, QuerySet) and origin.model is Opportunity
    if batch:
        seen = getattr(_handled, "origins", None)
        if seen is None:
            seen = _handled.origins = weakref.WeakSet()
        if origin in seen:
            return
        seen.add(origin)
    if not is_fresh():
        SummaryState.objects.filter(pk=STATE_ID).update(last_change_id=-1)
        return
    _subtract(origin if batch else Opportunity.objects.filter(pk=instance.pk))


# --- reading (the analytics query layer) ------------------------------------------------


def counts(pipeline_id: int, owner_ids=None) -> list[dict]:
    """Rows like analytics.queries.furthest_counts (furthest_stage_id, status, owner_id,
    n) with the amount and stays, for a pipeline and optionally a set of owners."""
    qs = FunnelCount.objects.filter(pipeline_id=pipeline_id).exclude(count=0)
    if owner_ids is not None:
        qs = qs.filter(owner_key__in=[o or 0 for o in owner_ids])
    return [
        {"furthest_stage_id": f, "status": s, "owner_id": o or None, "n": n, "cents": c,
         "stays": t}
        for f, s, o, n, c, t in qs.values_list(
            "furthest_stage_id", "status", "owner_key", "count", "amount_cents", "stays_seconds"
        )
    ]  # fmt: skip


def stays(stage_ids) -> dict[int, dict]:
    """The stay histogram of these stages, as analytics.queries.stay_histograms."""
    result: dict[int, dict] = {}
    rows = StayCount.objects.filter(stage_id__in=list(stage_ids)).exclude(count=0)
    for stage_id, hour, n, seconds in rows.values_list("stage_id", "hour", "count", "seconds"):
        stage = result.setdefault(stage_id, {"count": 0, "seconds": 0, "hours": {}})
        stage["count"] += n
        stage["seconds"] += seconds
        stage["hours"][hour] = n
    return result


def open_groups(
    pipeline_id: int, owner_ids=None, *, by_owner: bool = False, bands: bool = True
) -> list[dict]:
    """The open pipeline of a pipeline (optionally of a set of owners) per (current
    stage, amount band[, owner]): rows (stage_id, band[, owner_id], n, cents);
    ``bands=False`` adds the bands up (no ``band`` key)."""
    qs = OpenCount.objects.filter(pipeline_id=pipeline_id).exclude(count=0)
    if owner_ids is not None:
        qs = qs.filter(owner_key__in=[o or 0 for o in owner_ids])
    keys = ["stage_id"] + (["band"] if bands else []) + (["owner_key"] if by_owner else [])
    rows = qs.values(*keys).annotate(n=Sum("count"), c=Sum("amount_cents")).order_by()
    result = []
    for r in rows:
        row = {"stage_id": r["stage_id"], "n": int(r["n"]), "cents": int(r["c"])}
        if bands:
            row["band"] = r["band"]
        if by_owner:
            row["owner_id"] = r["owner_key"] or None
        result.append(row)
    return result
