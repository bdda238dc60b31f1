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
- ``SourceCount``: per (pipeline, owner, source, status) the number of opportunities
  and their summed amount (cents): the opportunities' side of lead conversion by source.
- ``WonCount``: per (pipeline, owner, month of the win in the company's time zone,
  dimension, value) the number of won opportunities and their summed amount (cents),
  the dimensions being the account's region and industry, the product line and the
  source: the breakdowns of whole months, quarters and years. An account's region or
  industry is part of its won deals' rows, so the account services move them when it
  changes (:func:`account_changed`).
- ``SummaryState``: the id of the last StageChange known to be in the summaries (and
  the time zone of WonCount's months: another one makes the next report rebuild).

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

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, ExtractMonth, ExtractYear
from django.utils import timezone

from loudou.core import hooks
from loudou.core.db import Cents

from .choices import ChangeKind, StageKind, Status
from .models import (
    FunnelCount,
    OpenCount,
    OpenDelta,
    Opportunity,
    OwnerStayCount,
    SourceCount,
    StageChange,
    StayCount,
    SummaryState,
    WonCount,
)

HOUR = 3600
STATE_ID = 1
# the summaries' unique keys and the values added up under them (see _upsert)
COUNT_KEYS = ["pipeline", "owner_key", "furthest_stage", "status"]
COUNT_VALUES = ["count", "amount_cents", "stays_seconds"]
STAY_KEYS = ["stage", "hour"]
STAY_VALUES = ["count", "seconds"]
OWNER_STAY_KEYS = ["owner_key", "stage", "hour"]
OPEN_KEYS = ["pipeline", "owner_key", "stage", "band"]
OPEN_VALUES = ["count", "amount_cents"]
SOURCE_KEYS = ["pipeline", "owner_key", "source", "status"]
SOURCE_VALUES = ["count", "amount_cents"]
WON_KEYS = ["pipeline", "dimension", "month", "owner_key", "key"]
WON_VALUES = ["count", "amount_cents"]
# WonCount's dimensions and the opportunity field each one's key comes from
WON_DIMENSIONS = {"region": "account__region_id", "industry": "account__industry",
                  "product_line": "product_line_id", "source": "source"}  # fmt: skip
DELTA_KEYS = ["pipeline", "owner_key", "hour", "stage"]
DELTA_VALUES = ["count", "amount_cents"]
# How far back a rebuild fills OpenDelta (the services keep every hour after that): the
# open pipeline of any moment since then is "now minus the later hours".
DELTA_DAYS = 42
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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


def hour_of(moment: datetime) -> int:
    """Whole hours from 1970-01-01 00:00 UTC to ``moment`` (floored; exact, no float),
    as the database computes them (_hour_sql)."""
    return (moment - EPOCH) // timedelta(hours=1)


def hour_start(hour: int) -> datetime:
    return EPOCH + timedelta(hours=hour)


def won_time_zone() -> str:
    """The time zone of WonCount's months: the company's (settings.TIME_ZONE)."""
    return settings.TIME_ZONE


def month_of(moment: datetime) -> int:
    """year × 100 + month of ``moment`` in the company's time zone (as month_expression)."""
    local = moment.astimezone(ZoneInfo(won_time_zone()))
    return local.year * 100 + local.month


def month_expression(field: str = "closed_at"):
    """month_of a datetime column, computed by the database."""
    tz = ZoneInfo(won_time_zone())
    return ExtractYear(field, tzinfo=tz) * 100 + ExtractMonth(field, tzinfo=tz)


def _won_key(opp: Opportunity) -> tuple | None:
    """A won deal's WonCount place: (pipeline, owner, month, {dimension: key}); None
    unless won. Reads its account's region and industry — on PostgreSQL inside a
    transaction with the account row locked against a concurrent edit (FOR NO KEY UPDATE,
    which account_changed's edit waits for, and waits on), so that the deal is counted
    under the region the edit moves."""
    if opp.status != Status.WON or opp.closed_at is None:
        return None
    from loudou.customers.models import Account

    account = Account.objects.filter(pk=opp.account_id)
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        account = account.select_for_update(no_key=True)
    region, industry = account.values_list("region_id", "industry").first() or (None, "")
    keys = {"region": str(region or ""), "industry": industry or "",
            "product_line": str(opp.product_line_id or ""), "source": opp.source or ""}  # fmt: skip
    return opp.pipeline_id, opp.owner_id or 0, month_of(opp.closed_at), keys


def snapshot(opp: Opportunity) -> tuple:
    """What an opportunity contributes to the summaries: its FunnelCount key, amount
    (cents) and stays, its OpenCount key (None unless open), its id, its SourceCount
    key and its WonCount place (None unless won; see _won_key)."""
    key = (opp.pipeline_id, opp.owner_id or 0, opp.furthest_stage_id, opp.status)
    open_key = None
    if opp.status == Status.OPEN:
        open_key = (opp.pipeline_id, opp.owner_id or 0, opp.stage_id, band_of(opp.amount))
    source_key = (opp.pipeline_id, opp.owner_id or 0, opp.source or "", opp.status)
    return (key, cents(opp.amount), int(opp.stays_seconds or 0), open_key, opp.pk, source_key,
            _won_key(opp))  # fmt: skip


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
    source_deltas: dict[tuple, list[int]] = {}
    won_deltas: dict[tuple, list[int]] = {}
    for snap, sign in ((before, -1), (after, 1)):
        if snap is None:
            continue
        key, amount, stays, open_key, _pk, source_key, won = snap
        if won is not None:
            pipeline, owner, month, keys = won
            for dimension, value in keys.items():
                entry = won_deltas.setdefault((pipeline, dimension, month, owner, value), [0, 0])
                entry[0] += sign
                entry[1] += sign * amount
        entry = source_deltas.setdefault(source_key, [0, 0])
        entry[0] += sign
        entry[1] += sign * amount
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
    rows = [(*key, *d) for key, d in source_deltas.items() if any(d)]
    _upsert(SourceCount, SOURCE_KEYS, SOURCE_VALUES, rows)
    rows = [(*key, *d) for key, d in won_deltas.items() if any(d)]
    _upsert(WonCount, WON_KEYS, WON_VALUES, rows)
    if stay is not None and stay[1] is not None:
        stage_id, seconds = stay
        _upsert(StayCount, STAY_KEYS, STAY_VALUES, [(stage_id, seconds // HOUR, 1, seconds)])
    _apply_owner_stays(before, after, stay)
    _apply_deltas(before, after, change_id)
    if change_id is not None:
        _advance(change_id)
    hooks.emit("deal_summarised", None, before=before, after=after)  # leads.summaries


def _apply_owner_stays(before, after, stay) -> None:
    """OwnerStayCount: add the completed ``stay`` under the deal's owner; a deal that
    changed owner (an edit) takes its recorded stays from the old owner to the new."""
    if after is None:
        return  # a deletion goes through _subtract
    owner = after[0][1]
    rows: dict[tuple, list[int]] = {}

    def add(key, n, seconds):
        entry = rows.setdefault(key, [0, 0])
        entry[0] += n
        entry[1] += seconds

    if stay is not None and stay[1] is not None:
        add((owner, stay[0], stay[1] // HOUR), 1, stay[1])
    if before is not None and before[0][1] != owner and after[4] is not None:
        old = before[0][1]
        if stay is not None and stay[1] is not None:  # the old owner never held this one
            add((old, stay[0], stay[1] // HOUR), 1, stay[1])
            add((owner, stay[0], stay[1] // HOUR), -1, -stay[1])
        recorded = (
            StageChange.objects.filter(opportunity_id=after[4], stay_seconds__isnull=False)
            .annotate(hour=F("stay_seconds") / HOUR)
            .values("from_stage_id", "hour")
            .annotate(n=Count("pk"), s=Sum("stay_seconds"))
            .order_by()
        )
        for r in recorded:
            stage, hour, n, seconds = r["from_stage_id"], int(r["hour"]), r["n"], int(r["s"])
            add((old, stage, hour), -n, -seconds)
            add((owner, stage, hour), n, seconds)
    _upsert(OwnerStayCount, OWNER_STAY_KEYS, STAY_VALUES,
            [(*key, *v) for key, v in rows.items() if any(v)])  # fmt: skip


# --- the open pipeline's hourly deltas (OpenDelta) --------------------------------------
#
# A deal's history c_1 … c_k in (changed_at, id) order. Where it stood before change c:
# before(c) = (c.from_stage, c.amount) when c is not its creation and c.from_stage is an
# open stage, else nowhere. Where it stands after c_i: v_i = before(c_{i+1}), and after
# the last change v_k = now (its current stage and amount while open). The row of c_i's
# hour gets v_i − before(c_i). For any moment M, "now minus the rows of the changes after
# M" leaves, per deal, before(its first change after M) — or now, untouched since M —
# exactly what analytics.queries.state_at reads from the history.


def delta_horizon() -> int:
    """The first hour OpenDelta holds (SummaryState.delta_from_hour)."""
    row = SummaryState.objects.filter(pk=STATE_ID).values_list("delta_from_hour", flat=True)
    return row.first() or 0


def _now_of(snap) -> tuple | None:
    """(stage, cents) of a snapshot while open, else None."""
    if snap is None or snap[3] is None:
        return None
    return snap[3][2], snap[1]


def _deal_deltas(changes: list[tuple], snap, horizon: int) -> dict[tuple, list[int]]:
    """One deal's OpenDelta rows from its history ``changes`` (hour, kind, from stage,
    whether that is an open stage, cents; in order) and its snapshot (None: gone)."""
    if snap is None:
        return {}
    pipeline, owner = snap[0][0], snap[0][1]
    result: dict[tuple, list[int]] = {}

    def add(hour, where, sign):
        if where is None or hour < horizon:
            return
        entry = result.setdefault((pipeline, owner, hour, where[0]), [0, 0])
        entry[0] += sign
        entry[1] += sign * where[1]

    befores = [
        (from_stage, amount) if kind != ChangeKind.CREATED and from_open else None
        for _hour, kind, from_stage, from_open, amount in changes
    ]
    for i, (hour, *_rest) in enumerate(changes):
        after = befores[i + 1] if i + 1 < len(changes) else _now_of(snap)
        add(hour, after, 1)
        add(hour, befores[i], -1)
    return result


def _apply_deltas(before, after, change_id) -> None:
    """Carry one deal's change (a new history row ``change_id`` and/or a new snapshot)
    into OpenDelta: its rows recomputed from its history since the horizon, before and
    after, and the difference added."""
    if (
        change_id is None
        and before is not None
        and after is not None
        and _now_of(before) == _now_of(after)
        and before[0][:2] == after[0][:2]
    ):
        return  # neither where it stands nor whose it is changed: the same rows
    pk = (after or before)[4]
    if pk is None:
        return
    horizon = delta_horizon()
    rows = (
        StageChange.objects.filter(opportunity_id=pk, changed_at__gte=hour_start(horizon))
        .order_by("changed_at", "pk")
        .values_list("pk", "changed_at", "kind", "from_stage_id", "from_stage__kind", "amount")
    )
    changes = [(i, (hour_of(at), kind, stage, stage_kind == StageKind.OPEN, cents(amount)))
               for i, at, kind, stage, stage_kind, amount in rows]  # fmt: skip
    old = _deal_deltas([c for i, c in changes if i != change_id], before, horizon)
    new = _deal_deltas([c for _i, c in changes], after, horizon)
    for key, (n, c) in old.items():
        entry = new.setdefault(key, [0, 0])
        entry[0] -= n
        entry[1] -= c
    _upsert(OpenDelta, DELTA_KEYS, DELTA_VALUES,
            [(*key, *d) for key, d in new.items() if any(d)])  # fmt: skip


def _hour_sql(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"FLOOR(EXTRACT(EPOCH FROM {column}) / 3600)::bigint"
    # the stored text without its fraction of a second (strftime would round it)
    return f"(CAST(strftime('%%s', substr({column}, 1, 19)) AS INTEGER) / 3600)"


def _cents_sql(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"({column} * 100)::bigint"
    return f"CAST(ROUND({column} * 100) AS BIGINT)"


def _delta_rows(horizon: int, opportunities=None, sign: int = 1) -> list[tuple]:
    """OpenDelta rows (key, then count, cents) of the history since ``horizon`` of these
    opportunities (a queryset; None: all), as _deal_deltas computes them per deal: one
    window (LEAD) pass over those changes, grouped; ``sign=-1`` for their removal."""
    sql, params = _delta_sql(horizon, opportunities)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(p, o, h, st, sign * int(n), sign * int(c))
                for p, o, h, st, n, c in cursor.fetchall() if n or c]  # fmt: skip


def fill_deltas(horizon: int) -> None:
    """Write every OpenDelta row from ``horizon`` on into the (empty) table, in the
    database (INSERT … SELECT), and record the horizon."""
    sql, params = _delta_sql(horizon)
    columns = ", ".join(_quote(OpenDelta._meta.get_field(f).column) for f in DELTA_FIELDS)
    table = _quote(OpenDelta._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT * FROM ({sql}) d WHERE d.n <> 0 OR d.c <> 0",
            params,
        )
    SummaryState.objects.filter(pk=STATE_ID).update(delta_from_hour=horizon)


def _delta_sql(horizon: int, opportunities=None) -> tuple[str, list]:
    changes = _quote(StageChange._meta.db_table)
    opps = _quote(Opportunity._meta.db_table)
    stages = _quote(StageChange._meta.get_field("from_stage").related_model._meta.db_table)
    before_stage = "CASE WHEN c.kind <> %s AND s.kind = %s THEN c.from_stage_id END"
    params: list = [ChangeKind.CREATED, StageKind.OPEN, ChangeKind.CREATED, StageKind.OPEN]
    where = "c.changed_at >= %s"
    params.append(hour_start(horizon))
    if opportunities is not None:
        sub, sub_params = opportunities.order_by().values("pk").query.sql_with_params()
        where += f" AND c.opportunity_id IN ({sub})"
        params += list(sub_params)
    window = "OVER (PARTITION BY c.opportunity_id ORDER BY c.changed_at, c.id)"
    inner = (
        f"SELECT c.opportunity_id AS opp, {_hour_sql('c.changed_at')} AS h, "
        f"{before_stage} AS bs, {_cents_sql('c.amount')} AS bc, "
        f"LEAD({before_stage}) {window} AS ns, "
        f"LEAD({_cents_sql('c.amount')}) {window} AS nc, LEAD(c.id) {window} AS nid "
        f"FROM {changes} c LEFT JOIN {stages} s ON s.id = c.from_stage_id WHERE {where}"
    )
    # each change gives up to two rows: minus where it stood before, plus where it stood
    # after (the next change's before, or its open stage now after the last change)
    stage = (
        "CASE p.k WHEN 1 THEN t.bs WHEN 2 THEN t.ns "
        "ELSE (CASE WHEN o.status = %s THEN o.stage_id END) END"
    )
    amount = f"CASE p.k WHEN 1 THEN -t.bc WHEN 2 THEN t.nc ELSE {_cents_sql('o.amount')} END"
    sql = (
        f"SELECT o.pipeline_id, COALESCE(o.owner_id, 0) AS ow, t.h, {stage} AS st, "
        f"SUM(CASE p.k WHEN 1 THEN -1 ELSE 1 END) AS n, SUM({amount}) AS c "
        f"FROM ({inner}) t JOIN {opps} o ON o.id = t.opp "
        f"JOIN (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) p "
        f"ON (p.k = 1 OR (p.k = 2 AND t.nid IS NOT NULL) OR (p.k = 3 AND t.nid IS NULL)) "
        f"WHERE {stage} IS NOT NULL GROUP BY 1, 2, 3, 4"
    )
    return sql, [Status.OPEN, *params, Status.OPEN]


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
    """True when no history row was written past the summaries (two index lookups) and
    WonCount's months are in the company's time zone."""
    state = (
        SummaryState.objects.filter(pk=STATE_ID)
        .values_list("last_change_id", "won_time_zone")
        .first()
    )
    if state is not None and state[1] != won_time_zone():
        return False
    newest = StageChange.objects.aggregate(m=Max("pk"))["m"]
    known = state and state[0]
    return newest is None or (state is not None and newest <= known)


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


def _refresh_stays_seconds(opportunity_ids=None, *, since: int | None = None,
                           fresh_changes=()) -> None:  # fmt: skip
    """Set Opportunity.stays_seconds = Σ stay_seconds of its history, for the given
    opportunities and those with history rows after ``since`` (but for the rows in the
    ``fresh_changes`` id ranges, see :func:`rebuild_summaries`), one set-based UPDATE
    per 5,000."""
    ids: set[int] = set(opportunity_ids or ())
    if since is not None:
        for past in _past_changes(since, fresh_changes):
            ids |= set(
                StageChange.objects.filter(past)
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


GAPS_PER_QUERY = 200


def _past_changes(since: int, fresh_changes=()) -> list[Q]:
    """Filters (a few, each of at most GAPS_PER_QUERY id intervals) that together pick the
    StageChange rows with an id above ``since`` and outside the ``fresh_changes``
    [first, last] ranges: each interval an index range scan, the fresh rows never read."""
    gaps, low = [], since + 1
    for first, last in sorted(fresh_changes):
        if last < low:
            continue
        if first > low:
            gaps.append(Q(pk__gte=low, pk__lt=first))
        low = last + 1
    gaps.append(Q(pk__gte=low))
    filters = []
    for start in range(0, len(gaps), GAPS_PER_QUERY):
        q = gaps[start]
        for gap in gaps[start + 1 : start + GAPS_PER_QUERY]:
            q |= gap
        filters.append(q)
    return filters


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


def _source_rows(opportunities, sign: int = 1) -> list[tuple]:
    """SourceCount rows (key, then count, cents) of these opportunities, one GROUP BY;
    ``sign=-1`` for their removal."""
    rows = (
        opportunities.order_by()
        .values("pipeline_id", "owner_id", "source", "status")
        .annotate(n=Count("pk"), c=Sum(Cents("amount")))
    )
    merged: dict[tuple, list[int]] = {}  # a NULL owner and a NULL source fold into 0 / ""
    for r in rows:
        key = (r["pipeline_id"], r["owner_id"] or 0, r["source"] or "", r["status"])
        entry = merged.setdefault(key, [0, 0])
        entry[0] += sign * r["n"]
        entry[1] += sign * int(r["c"] or 0)
    return [(*key, n, c) for key, (n, c) in merged.items()]


def _won_rows(opportunities, sign: int = 1) -> list[tuple]:
    """WonCount rows (pipeline, dimension, month, owner, key, count, cents) of these
    opportunities' won ones, from one GROUP BY by every dimension at once, each dimension's
    rows summed from its groups; ``sign=-1`` for their removal. (One pass, each deal's
    month computed once: one GROUP BY per dimension made 4 s of an import of 100,000
    deals.)

    On SQLite the month in the company's time zone is a Python function per row (1 s of
    that import): there it is a CASE over the months' first moments (_sqlite_months)."""
    won = opportunities.filter(status=Status.WON, closed_at__isnull=False).order_by()
    month = _sqlite_months(won) if connection.vendor == "sqlite" else None
    rows = (
        won.annotate(month=month_expression() if month is None else month)
        .values_list("pipeline_id", "owner_id", "month", *WON_DIMENSIONS.values())
        .annotate(n=Count("pk"), c=Sum(Cents("amount")))
    )
    # per dimension, in WON_DIMENSIONS' order; a NULL owner, region or product line: 0 / ""
    merged: dict[str, dict[tuple, list[int]]] = {dimension: {} for dimension in WON_DIMENSIONS}
    dimensions = [merged[dimension] for dimension in WON_DIMENSIONS]
    for pipeline, owner, month, *values, n, c in rows:
        head = (pipeline, int(month), owner or 0)
        n, c = sign * n, sign * int(c or 0)
        for into, value in zip(dimensions, values, strict=True):
            key = (*head, "" if value is None else str(value))
            entry = into.get(key)
            if entry is None:
                into[key] = [n, c]
            else:
                entry[0] += n
                entry[1] += c
    return [(pipeline, dimension, month, owner, value, n, c)
            for dimension, entries in merged.items()
            for (pipeline, month, owner, value), (n, c) in entries.items()]  # fmt: skip


def _sqlite_months(won) -> Case | None:
    """month_expression for the closed_at of the deals ``won`` as a CASE of the UTC
    moments at which each local month of their range begins (SQLite compares the stored
    text; no Python per row). None when there is nothing to compute, or when a month's
    start is not a clean edge in the company's zone (a clock set back across midnight at
    a month's start: some moments after it are in the month before) — the caller then
    uses month_expression."""
    bounds = won.aggregate(low=Min("closed_at"), high=Max("closed_at"))
    if bounds["low"] is None:
        return None
    tz = ZoneInfo(won_time_zone())
    low, high = bounds["low"].astimezone(tz), bounds["high"].astimezone(tz)
    year, month = low.year, low.month
    whens = []
    while (year, month) < (high.year, high.month):
        following = (year + 1, 1) if month == 12 else (year, month + 1)
        edge = datetime(*following, 1, tzinfo=tz).astimezone(UTC)
        later = [edge + timedelta(minutes=30 * k) for k in range(7)]  # a fold lasts ≤ 3 h
        if month_of(edge - timedelta(microseconds=1)) != year * 100 + month or any(
            month_of(moment) != following[0] * 100 + following[1] for moment in later
        ):
            return None
        whens.append(When(closed_at__lt=edge, then=Value(year * 100 + month)))
        year, month = following
    return Case(*whens, default=Value(year * 100 + month), output_field=IntegerField())


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


def _owner_stay_rows(changes, sign: int = 1) -> list[tuple]:
    """OwnerStayCount rows (owner, stage, hour, count, seconds) of these StageChange
    rows' completed stays, under their deal's current owner; one GROUP BY."""
    rows = (
        changes.filter(stay_seconds__isnull=False)
        .order_by()
        .annotate(hour=F("stay_seconds") / HOUR)
        .values("opportunity__owner_id", "from_stage_id", "hour")
        .annotate(n=Count("pk"), s=Sum("stay_seconds"))
    )
    return [(r["opportunity__owner_id"] or 0, r["from_stage_id"], int(r["hour"]), sign * r["n"],
             sign * int(r["s"])) for r in rows]  # fmt: skip


def _insert(model, fields: list[str], rows: list[tuple]) -> None:
    model.objects.bulk_create(
        [model(**dict(zip(fields, row, strict=True))) for row in rows], batch_size=2000
    )


COUNT_FIELDS = ["pipeline_id", "owner_key", "furthest_stage_id", "status", "count",
                "amount_cents", "stays_seconds"]  # fmt: skip
STAY_FIELDS = ["stage_id", "hour", "count", "seconds"]
OWNER_STAY_FIELDS = ["owner_key", "stage_id", "hour", "count", "seconds"]
OPEN_FIELDS = ["pipeline_id", "owner_key", "stage_id", "band", "count", "amount_cents"]
SOURCE_FIELDS = ["pipeline_id", "owner_key", "source", "status", "count", "amount_cents"]
DELTA_FIELDS = ["pipeline_id", "owner_key", "hour", "stage_id", "count", "amount_cents"]
WON_FIELDS = ["pipeline_id", "dimension", "month", "owner_key", "key", "count", "amount_cents"]


@transaction.atomic
def rebuild_summaries(opportunity_ids=None, *, fresh_changes=()) -> None:
    """Recompute every summary from the opportunities and their history, exactly as the
    services would have kept them. Call it after writing opportunities or StageChange
    rows in bulk (``opportunity_ids``: those whose history was written, updated or
    deleted behind the services' back; their stays_seconds is recomputed — rows written
    after the summaries' state are found without being named). ``fresh_changes``:
    sorted [first, last] id ranges of StageChange rows written together with their
    opportunity's stays_seconds (an import's new deals, inserted with the sum of their
    history's stays): past the state, they alone do not make their deal's stays_seconds
    recomputed (a deal named in ``opportunity_ids``, or with other rows past the state,
    still is)."""
    _lock_writers()
    state, _created = SummaryState.objects.get_or_create(pk=STATE_ID)
    newest = StageChange.objects.aggregate(m=Max("pk"))["m"] or 0
    if state.last_change_id <= 0 and opportunity_ids is None:
        _refresh_all_stays_seconds()  # never summarised: every opportunity
    else:
        _refresh_stays_seconds(
            opportunity_ids, since=state.last_change_id, fresh_changes=fresh_changes
        )
    _recount(FunnelCount.objects.all(), OpenCount.objects.all(), SourceCount.objects.all(),
             WonCount.objects.all(), Opportunity.objects.all())  # fmt: skip
    StayCount.objects.all().delete()
    _insert(StayCount, STAY_FIELDS, _stay_rows(StageChange.objects.all()))
    OwnerStayCount.objects.all().delete()
    _insert(OwnerStayCount, OWNER_STAY_FIELDS, _owner_stay_rows(StageChange.objects.all()))
    OpenDelta.objects.all().delete()
    fill_deltas(hour_of(timezone.now()) - DELTA_DAYS * 24)
    SummaryState.objects.filter(pk=STATE_ID).update(
        last_change_id=newest, won_time_zone=won_time_zone()
    )
    hooks.emit("summaries_rebuilt", None)  # leads.summaries recounts the lead counts


def _recount(funnel_rows, open_rows, source_rows, won_rows, opportunities) -> None:
    """Replace these FunnelCount, OpenCount, SourceCount and WonCount rows by a recount
    of ``opportunities`` (the same slice of the summaries); the caller keeps the writers
    out (_lock_writers)."""
    funnel_rows.delete()
    open_rows.delete()
    source_rows.delete()
    won_rows.delete()
    _insert(FunnelCount, COUNT_FIELDS, _count_rows(opportunities))
    _insert(OpenCount, OPEN_FIELDS, _open_rows(opportunities))
    _insert(SourceCount, SOURCE_FIELDS, _source_rows(opportunities))
    _insert(WonCount, WON_FIELDS, _won_rows(opportunities))


@transaction.atomic
def recount_owners(owner_ids) -> None:
    """Recount the FunnelCount, OpenCount, SourceCount and WonCount rows of these owners
    from their opportunities (after their deals changed hands in bulk: a hand-over)."""
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
        SourceCount.objects.filter(owner_key__in=keys),
        WonCount.objects.filter(owner_key__in=keys),
        Opportunity.objects.filter(owned),
    )
    OpenDelta.objects.filter(owner_key__in=keys).delete()
    theirs = Opportunity.objects.filter(owned)
    _insert(OpenDelta, DELTA_FIELDS, _delta_rows(delta_horizon(), theirs))
    OwnerStayCount.objects.filter(owner_key__in=keys).delete()
    changes = StageChange.objects.filter(opportunity__in=theirs.values("pk"))
    _insert(OwnerStayCount, OWNER_STAY_FIELDS, _owner_stay_rows(changes))


@transaction.atomic
def recount_pipeline(pipeline_id: int) -> None:
    """Recount the FunnelCount and OpenCount rows of one pipeline (after its furthest
    stages were recomputed in bulk: a reorder of its stages)."""
    _lock_writers()
    _recount(
        FunnelCount.objects.filter(pipeline_id=pipeline_id),
        OpenCount.objects.filter(pipeline_id=pipeline_id),
        SourceCount.objects.filter(pipeline_id=pipeline_id),
        WonCount.objects.filter(pipeline_id=pipeline_id),
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
    _upsert(SourceCount, SOURCE_KEYS, SOURCE_VALUES, _source_rows(opportunities, -1))
    _upsert(WonCount, WON_KEYS, WON_VALUES, _won_rows(opportunities, -1))
    changes = StageChange.objects.filter(opportunity__in=opportunities.values("pk"))
    _upsert(StayCount, STAY_KEYS, STAY_VALUES, _stay_rows(changes, -1))
    _upsert(OwnerStayCount, OWNER_STAY_KEYS, STAY_VALUES, _owner_stay_rows(changes, -1))
    _upsert(OpenDelta, DELTA_KEYS, DELTA_VALUES, _delta_rows(delta_horizon(), opportunities, -1))


_deletions = hooks.QuerysetDeletions()


def on_opportunity_deleted(sender, instance, origin=None, **kwargs) -> None:
    """pre_delete of an Opportunity: its counts and stays leave the summaries before the
    rows go. A queryset's deletion is handled once, for all its rows. When the summaries
    are behind a bulk load already, they are marked for a full rebuild instead (what
    they hold is not known exactly)."""
    from django.db.models import QuerySet

    batch = isinstance(origin, QuerySet) and origin.model is Opportunity
    if not _deletions.first(origin, Opportunity):
        return
    if not is_fresh():
        SummaryState.objects.filter(pk=STATE_ID).update(last_change_id=-1)
        return
    _subtract(origin if batch else Opportunity.objects.filter(pk=instance.pk))


# --- reading (the analytics query layer) ------------------------------------------------


def counts(pipeline_id: int, owner_ids=None, *, by_owner: bool = True) -> list[dict]:
    """Rows like analytics.queries.furthest_counts (furthest_stage_id, status, owner_id,
    n) with the amount and stays, for a pipeline and optionally a set of owners;
    ``by_owner=False`` adds the owners up in the database (no ``owner_id``)."""
    qs = FunnelCount.objects.filter(pipeline_id=pipeline_id).exclude(count=0)
    if owner_ids is not None:
        qs = qs.filter(owner_key__in=[o or 0 for o in owner_ids])
    if not by_owner:
        summed = qs.values("furthest_stage_id", "status").annotate(
            n=Sum("count"), c=Sum("amount_cents"), t=Sum("stays_seconds")
        )
        return [
            {"furthest_stage_id": r["furthest_stage_id"], "status": r["status"],
             "n": int(r["n"]), "cents": int(r["c"]), "stays": int(r["t"])}
            for r in summed.order_by()
        ]  # fmt: skip
    return [
        {"furthest_stage_id": f, "status": s, "owner_id": o or None, "n": n, "cents": c,
         "stays": t}
        for f, s, o, n, c, t in qs.values_list(
            "furthest_stage_id", "status", "owner_key", "count", "amount_cents", "stays_seconds"
        )
    ]  # fmt: skip


def _histogram(rows) -> dict[int, dict]:
    """{stage: {"count", "seconds", "hours": {hour: count}}} from rows (stage, hour, n,
    seconds) in (stage, hour) order."""
    result: dict[int, dict] = {}
    for stage_id, hour, n, seconds in rows:
        if not n:
            continue
        stage = result.get(stage_id)
        if stage is None:
            stage = result[stage_id] = {"count": 0, "seconds": 0, "hours": {}}
        stage["count"] += int(n)
        stage["seconds"] += int(seconds)
        stage["hours"][int(hour)] = int(n)
    return result


def _stay_read(stage_ids, owner_ids=None) -> list[tuple]:
    """Rows (stage, hour, count, seconds) of these stages' stays in (stage, hour) order,
    counts not 0: of every deal (StayCount), or of the deals of these owners (their
    current owner; OwnerStayCount, summed by the database). One plain read (thousands of
    rows: no model instances)."""
    ids = [int(i) for i in stage_ids]
    if not ids or (owner_ids is not None and not owner_ids):
        return []
    marks = ", ".join(["%s"] * len(ids))
    if owner_ids is None:
        table = _quote(StayCount._meta.db_table)
        sql = (f"SELECT stage_id, hour, count, seconds FROM {table} "
               f"WHERE stage_id IN ({marks}) AND count <> 0 ORDER BY stage_id, hour")  # fmt: skip
        params = ids
    else:
        owners = sorted({int(o or 0) for o in owner_ids})
        table = _quote(OwnerStayCount._meta.db_table)
        sql = (f"SELECT stage_id, hour, SUM(count), SUM(seconds) FROM {table} "
               f"WHERE owner_key IN ({', '.join(['%s'] * len(owners))}) "
               f"AND stage_id IN ({marks}) GROUP BY stage_id, hour "
               "HAVING SUM(count) <> 0 ORDER BY stage_id, hour")  # fmt: skip
        params = [*owners, *ids]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def stays(stage_ids) -> dict[int, dict]:
    """The stay histogram of these stages, as analytics.queries.stay_histograms."""
    return _histogram(_stay_read(stage_ids))


def stay_rows(stage_ids, owner_ids=None) -> list[tuple]:
    """The stay histogram of these stages as plain rows (stage, hour, count) in (stage,
    hour) order, counts not 0, of every deal or of these owners' deals: what stays() /
    owner_stays() hold, without building their dictionaries (the Monte Carlo needs only
    the counts)."""
    return [row[:3] for row in _stay_read(stage_ids, owner_ids)]


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


def open_changes(pipeline_id: int, owner_ids, after_hour: int) -> list[dict]:
    """Σ of the OpenDelta rows of a pipeline (optionally of a set of owners) in the hours
    after ``after_hour``, per stage: rows (stage_id, n, cents)."""
    qs = OpenDelta.objects.filter(pipeline_id=pipeline_id, hour__gt=after_hour)
    if owner_ids is not None:
        qs = qs.filter(owner_key__in=[o or 0 for o in owner_ids])
    # "+ 0": grouped by an expression, SQLite reads the hours' range from
    # open_delta_hour_idx instead of walking the whole table in stage order
    rows = (
        qs.values(st=F("stage_id") + 0).annotate(n=Sum("count"), c=Sum("amount_cents")).order_by()
    )
    return [{"stage_id": r["st"], "n": int(r["n"]), "cents": int(r["c"])} for r in rows]


def owner_stays(owner_ids, stage_ids) -> dict[int, dict]:
    """The stay histogram of these stages for the deals of these owners (their current
    owner), as analytics.queries.stay_histograms gives it for those deals."""
    return _histogram(_stay_read(stage_ids, list(owner_ids)))


def account_changed(account_id: int, before: tuple, after: tuple) -> None:
    """An account's (region id, industry) went from ``before`` to ``after`` (the account
    services, with its row locked): its won deals' WonCount rows move from the old
    region's and industry's keys to the new ones' (accounts_changed)."""
    accounts_changed({account_id: (before, after)})


def _text_key(value) -> str:
    return "" if value is None else str(value)


@transaction.atomic
def accounts_changed(changes: dict[int, tuple[tuple, tuple]]) -> None:
    """Accounts' (region id, industry) went from ``before`` to ``after`` (``changes``:
    {account id: (before, after)}): their won deals' WonCount rows move from the old
    region's and industry's keys to the new ones'. One GROUP BY of their won deals."""
    moves = {}
    for account_id, (before, after) in changes.items():
        moved = [(dimension, _text_key(old), _text_key(new))
                 for dimension, old, new in zip(("region", "industry"), before, after,
                                                strict=True)
                 if _text_key(old) != _text_key(new)]  # fmt: skip
        if moved:
            moves[account_id] = moved
    if not moves:
        return
    rows = (
        Opportunity.objects.filter(account_id__in=sorted(moves), status=Status.WON,
                                   closed_at__isnull=False)
        .order_by()
        .annotate(month=month_expression())
        .values_list("account_id", "pipeline_id", "owner_id", "month")
        .annotate(n=Count("pk"), c=Sum(Cents("amount")))
    )  # fmt: skip
    deltas: dict[tuple, list[int]] = {}
    for account_id, pipeline, owner, month, n, c in rows:
        for dimension, old, new in moves[account_id]:
            for value, sign in ((old, -1), (new, 1)):
                entry = deltas.setdefault((pipeline, dimension, int(month), owner or 0, value),
                                          [0, 0])  # fmt: skip
                entry[0] += sign * n
                entry[1] += sign * int(c or 0)
    _upsert(WonCount, WON_KEYS, WON_VALUES, [(*k, *d) for k, d in deltas.items() if any(d)])


@contextmanager
def accounts_moving(account_ids):
    """Around a write past the account services that may change these accounts' region
    or industry, or move deals between them (an import's update, its undo, a merge of
    two accounts): their won deals' WonCount rows are read before and after (one GROUP
    BY per dimension each time) and the difference applied."""
    ids = sorted({int(pk) for pk in account_ids})
    if not ids:
        yield
        return

    def rows() -> dict:
        won = Opportunity.objects.filter(account_id__in=ids)
        return {tuple(r[:5]): r[5:] for r in _won_rows(won)}

    before = rows()
    yield
    deltas = {key: [n, c] for key, (n, c) in rows().items()}
    for key, (n, c) in before.items():
        entry = deltas.setdefault(key, [0, 0])
        entry[0] -= n
        entry[1] -= c
    _upsert(WonCount, WON_KEYS, WON_VALUES, [(*k, *d) for k, d in deltas.items() if any(d)])


def won_breakdown(pipeline_id: int, owner_ids, dimension: str, first_month: int,
                  end_month: int, *, by_owner: bool = False) -> list[tuple]:  # fmt: skip
    """Won deals of a pipeline (optionally of a set of owners) in the months
    [first_month, end_month) per value of a WonCount dimension: rows (key, n, cents), or
    with ``by_owner`` (owner_key, n, cents) — each owner's won deals (summed over the
    dimension's values, which every won deal has exactly one of)."""
    qs = WonCount.objects.filter(pipeline_id=pipeline_id, dimension=dimension,
                                 month__gte=first_month, month__lt=end_month)  # fmt: skip
    if owner_ids is not None:
        qs = qs.filter(owner_key__in=[o or 0 for o in owner_ids])
    group = "owner_key" if by_owner else "key"
    rows = qs.values_list(group).annotate(n=Sum("count"), c=Sum("amount_cents")).order_by()
    return [(key, int(n), int(c)) for key, n, c in rows if n]


def source_counts(pipeline_id: int, owner_ids=None) -> list[dict]:
    """Opportunities of a pipeline (optionally of a set of owners) per (source, status):
    rows (source, status, n, cents), the owners added up by the database."""
    qs = SourceCount.objects.filter(pipeline_id=pipeline_id).exclude(count=0)
    if owner_ids is not None:
        qs = qs.filter(owner_key__in=[o or 0 for o in owner_ids])
    rows = qs.values("source", "status").annotate(n=Sum("count"), c=Sum("amount_cents"))
    return [{"source": r["source"], "status": r["status"], "n": int(r["n"]), "cents": int(r["c"])}
            for r in rows.order_by()]  # fmt: skip
