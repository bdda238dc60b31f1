"""Maintained lead counts, so that lead conversion by source needs no pass over a
million leads (DOMAIN §8, issue 4). In the style of pipeline/summaries.py:

- ``LeadCount``: per (owner, pool, source, status) how many leads.
- ``LeadDealCount``: per (the lead's owner, pool and source; its deal's pipeline and
  status) how many converted leads point at a deal, and the deals' summed amount.

How they stay equal to a recount of the leads:

- The single-lead services (create, edit, claim, release, assign, disqualify, convert,
  merge) take a :func:`snapshot` of the locked lead before and after and :func:`apply`
  the difference in the same transaction (additive upserts, in key order).
- Bulk moves (bulk assignment, the recycle sweep, a hand-over) take the moved leads'
  rows out before their UPDATE and put them back afterwards (:func:`moving`), one
  GROUP BY each way, however many leads move; the leads are locked before they are
  read (:func:`lock`), so a concurrent change of one of them or of its deal is not lost.
- Deleting leads (one, a merge's loser, a queryset: an import's undo) takes them out in
  a ``pre_delete`` receiver (once per queryset).
- A deal's change (won, lost, reopened, amount, pipeline) reaches LeadDealCount through
  the ``deal_summarised`` event the pipeline summaries emit; a deleted deal leaves it in
  a ``pre_delete`` receiver (its leads keep no link: SET_NULL).
- An import adds its new leads' keys after each batch (:func:`add_keys`) and moves its
  updated ones like a bulk move; anything else that writes leads behind the services'
  back calls :func:`rebuild`. ``loudou report rebuild`` (pipeline.rebuild_summaries,
  ``summaries_rebuilt`` event) rebuilds these too.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import Count, Q, Sum

from loudou.core import hooks
from loudou.core.db import Cents
from loudou.pipeline.summaries import _upsert, cents

from .models import Lead, LeadCount, LeadDealCount

LEAD_KEYS = ["owner_key", "pool_key", "source", "status"]
LEAD_VALUES = ["count"]
DEAL_KEYS = ["owner_key", "pool_key", "source", "pipeline", "deal_status"]
DEAL_VALUES = ["count", "amount_cents"]
CHUNK = 5_000


def _key(owner_id, pool_id, source) -> tuple:
    return (owner_id or 0, pool_id or 0, source or "")


def snapshot(lead: Lead) -> tuple:
    """What a lead contributes: its LeadCount key and, when it points at a deal, its
    LeadDealCount key and the deal's cents (one look-up of the deal)."""
    base = _key(lead.owner_id, lead.pool_id, lead.source)
    deal = None
    if lead.converted_opportunity_id:
        from loudou.pipeline.models import Opportunity

        row = (
            Opportunity.objects.filter(pk=lead.converted_opportunity_id)
            .values_list("pipeline_id", "status", "amount")
            .first()
        )
        if row is not None:
            deal = ((*base, row[0], row[1]), cents(row[2]))
    return (*base, lead.status), deal


def apply(before: tuple | None, after: tuple | None) -> None:
    """Move one lead's contribution from ``before`` to ``after`` (snapshots; None: did
    not exist). Inside the service's transaction, after the lead row is locked."""
    if before == after:
        return
    leads: Counter = Counter()
    deals: dict[tuple, list[int]] = {}
    for snap, sign in ((before, -1), (after, 1)):
        if snap is None:
            continue
        key, deal = snap
        leads[key] += sign
        if deal is not None:
            entry = deals.setdefault(deal[0], [0, 0])
            entry[0] += sign
            entry[1] += sign * deal[1]
    _upsert(LeadCount, LEAD_KEYS, LEAD_VALUES, [(*k, n) for k, n in leads.items() if n])
    _upsert(LeadDealCount, DEAL_KEYS, DEAL_VALUES,
            [(*k, *v) for k, v in deals.items() if any(v)])  # fmt: skip


# --- sets of leads -------------------------------------------------------------------------


def _lead_rows(leads, sign: int = 1) -> list[tuple]:
    """LeadCount rows (key, count) of a queryset of leads: one GROUP BY."""
    rows = (
        leads.order_by().values("owner_id", "pool_id", "source", "status").annotate(n=Count("pk"))
    )
    merged: Counter = Counter()  # a NULL source folds into ""
    for r in rows:
        merged[(*_key(r["owner_id"], r["pool_id"], r["source"]), r["status"])] += sign * r["n"]
    return [(*k, n) for k, n in merged.items() if n]


def _deal_rows(leads, sign: int = 1) -> list[tuple]:
    """LeadDealCount rows (key, count, cents) of a queryset of leads' deals: one GROUP BY
    over those that point at a deal."""
    rows = (
        leads.filter(converted_opportunity__isnull=False)
        .order_by()
        .values(
            "owner_id",
            "pool_id",
            "source",
            "converted_opportunity__pipeline_id",
            "converted_opportunity__status",
        )  # fmt: skip
        .annotate(n=Count("pk"), c=Sum(Cents("converted_opportunity__amount")))
    )
    merged: dict[tuple, list[int]] = {}
    for r in rows:
        deal = (r["converted_opportunity__pipeline_id"], r["converted_opportunity__status"])
        key = (*_key(r["owner_id"], r["pool_id"], r["source"]), *deal)
        entry = merged.setdefault(key, [0, 0])
        entry[0] += sign * r["n"]
        entry[1] += sign * int(r["c"] or 0)
    return [(*k, *v) for k, v in merged.items() if any(v)]


def lock(leads) -> None:
    """Lock ``leads`` (a queryset) before their rows are read for a bulk move. On
    PostgreSQL another transaction may change one of them meanwhile — a single-lead
    service, or a deal service moving a converted lead's LeadDealCount row
    (:func:`on_deal_summarised` locks the same leads) — and the move would take out the
    rows as they were and miss the other's change; locked first, the two go one after
    the other and each reads what the other committed. SQLite's IMMEDIATE transactions
    already run one writer at a time."""
    if connection.vendor == "postgresql":
        list(leads.order_by("pk").select_for_update().values_list("pk", flat=True))


def add(leads, sign: int = 1) -> None:
    """Add (``sign=-1``: take out) a queryset of leads, as they are now."""
    _upsert(LeadCount, LEAD_KEYS, LEAD_VALUES, _lead_rows(leads, sign))
    _upsert(LeadDealCount, DEAL_KEYS, DEAL_VALUES, _deal_rows(leads, sign))


def subtract(leads) -> None:
    add(leads, -1)


@contextmanager
def moving(leads):
    """Around a bulk UPDATE of ``leads`` (a queryset that selects the same rows after the
    UPDATE as before: by ids or a batch table, not by the columns it changes): their rows
    go out before and come back, as updated, after."""
    lock(leads)
    subtract(leads)
    yield
    add(leads)


def moving_ids(ids):
    """:func:`moving` for a list of lead ids (in chunks, however many)."""
    ids = list(ids)

    @contextmanager
    def around():
        chunks = [Lead.objects.filter(pk__in=ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK)]
        for chunk in chunks:
            lock(chunk)
            subtract(chunk)
        yield
        for chunk in chunks:
            add(chunk)

    return around()


def move_to_batch(table: str, *, deals: bool = True) -> None:
    """Before an UPDATE that gives each lead of the batch table ``table`` (id, owner_id,
    pool_id) that owner and pool: its rows move from the old keys to the new, one
    INSERT … SELECT … ON CONFLICT per table, whatever the number of leads (``deals=False``:
    none of them points at a deal, LeadDealCount is left alone)."""
    from loudou.pipeline.models import Opportunity

    q = connection.ops.quote_name
    leads = q(Lead._meta.db_table)
    if connection.vendor == "postgresql":  # see lock()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT l.id FROM {leads} l JOIN {table} b ON b.id = l.id "
                           "ORDER BY l.id FOR UPDATE OF l")  # fmt: skip
    both = (
        "SELECT COALESCE(l.owner_id, 0) AS o, COALESCE(l.pool_id, 0) AS p, "
        "COALESCE(l.source, '') AS s, {extra} -1 AS n, {money_old} AS c FROM {leads} l "
        "JOIN {table} b ON b.id = l.id {join} UNION ALL "
        "SELECT COALESCE(b.owner_id, 0), COALESCE(b.pool_id, 0), COALESCE(l.source, ''), "
        "{extra} 1, {money_new} FROM {leads} l JOIN {table} b ON b.id = l.id {join}"
    )
    targets = [(LeadCount, "l.status AS st,", "", "0", "0", ["st"], "count")]
    if deals:
        cents = ("(d.amount * 100)::bigint" if connection.vendor == "postgresql"
                 else "CAST(ROUND(d.amount * 100) AS BIGINT)")  # fmt: skip
        join = f"JOIN {q(Opportunity._meta.db_table)} d ON d.id = l.converted_opportunity_id"
        targets.append((LeadDealCount, "d.pipeline_id AS pl, d.status AS ds,", join,
                        f"-{cents}", cents, ["pl", "ds"], "count, amount_cents"))  # fmt: skip
    with connection.cursor() as cursor:
        for model, extra, join, old, new, keys, values in targets:
            inner = both.format(extra=extra, money_old=old, money_new=new, leads=leads,
                                table=table, join=join)  # fmt: skip
            columns = [model._meta.get_field(f).column for f in
                       (LEAD_KEYS if model is LeadCount else DEAL_KEYS)]  # fmt: skip
            sums = "SUM(n)" + (", SUM(c)" if model is LeadDealCount else "")
            update = ", ".join(f"{v} = {q(model._meta.db_table)}.{v} + excluded.{v}"
                               for v in values.split(", "))  # fmt: skip
            cursor.execute(
                f"INSERT INTO {q(model._meta.db_table)} ({', '.join(columns)}, {values}) "
                f"SELECT o, p, s, {', '.join(keys)}, {sums} FROM ({inner}) t WHERE true "
                f"GROUP BY o, p, s, {', '.join(keys)} "
                f"ON CONFLICT ({', '.join(columns)}) DO UPDATE SET {update}"
            )


def add_keys(keys) -> None:
    """Add new leads given by their keys (owner id, pool id, source, status), e.g. an
    import's batch whose rows another connection may still be writing."""
    add_counts(Counter(keys))


def add_counts(counts) -> None:
    """:func:`add_keys` for keys already counted (key → number of new leads): an import
    counts its batches in memory and adds them in one statement."""
    totals = Counter()
    for (o, p, s, st), n in counts.items():
        totals[_key(o, p, s) + (st,)] += n
    _upsert(LeadCount, LEAD_KEYS, LEAD_VALUES, [(*k, n) for k, n in totals.items() if n])


# --- rebuild -------------------------------------------------------------------------------


def _lock_writers() -> None:
    """Keep the lead writers out while the counts are rebuilt (every service locks or
    updates a lead row first); SQLite's IMMEDIATE transaction serialises them already."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {connection.ops.quote_name(Lead._meta.db_table)} "
                           "IN EXCLUSIVE MODE")  # fmt: skip


@transaction.atomic
def rebuild() -> None:
    """Recount both tables from the leads and their deals: two INSERT … SELECT … GROUP BY,
    in the database."""
    from loudou.pipeline.models import Opportunity

    _lock_writers()
    LeadCount.objects.all().delete()
    LeadDealCount.objects.all().delete()
    q = connection.ops.quote_name
    leads, opps = q(Lead._meta.db_table), q(Opportunity._meta.db_table)
    cents = ("(o.amount * 100)::bigint" if connection.vendor == "postgresql"
             else "CAST(ROUND(o.amount * 100) AS BIGINT)")  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {q(LeadCount._meta.db_table)} (owner_key, pool_key, source, status, "
            "count) SELECT COALESCE(owner_id, 0), COALESCE(pool_id, 0), COALESCE(source, ''), "
            f"status, COUNT(*) FROM {leads} GROUP BY 1, 2, 3, 4"
        )
        cursor.execute(
            f"INSERT INTO {q(LeadDealCount._meta.db_table)} (owner_key, pool_key, source, "
            "pipeline_id, deal_status, count, amount_cents) SELECT COALESCE(l.owner_id, 0), "
            "COALESCE(l.pool_id, 0), COALESCE(l.source, ''), o.pipeline_id, o.status, "
            f"COUNT(*), SUM({cents}) FROM {leads} l JOIN {opps} o "
            "ON o.id = l.converted_opportunity_id GROUP BY 1, 2, 3, 4, 5"
        )


def on_summaries_rebuilt(_obj=None, **context) -> None:
    """``summaries_rebuilt``: the pipeline summaries were recomputed (``loudou report
    rebuild``, a bulk load or an import of deals that may have changed their status or
    amount behind the services' back): recount the lead counts too."""
    rebuild()


# --- deals (events of the pipeline) ----------------------------------------------------------


def _deal_part(snap):
    """(pipeline, status, cents) of a pipeline summaries' snapshot, None for none."""
    if snap is None:
        return None
    key, amount = snap[0], snap[1]
    return key[0], key[3], amount


def on_deal_summarised(_obj=None, *, before=None, after=None, **context) -> None:
    """``deal_summarised`` (pipeline.summaries.apply): a deal's pipeline, status or amount
    changed: the leads that converted into it move between LeadDealCount rows (their
    rows locked, in the deal service's transaction)."""
    old, new = _deal_part(before), _deal_part(after)
    if old == new:
        return
    pk = (after or before)[4]
    if pk is None:
        return
    rows = (
        Lead.objects.select_for_update()
        .filter(converted_opportunity_id=pk)
        .order_by("pk")
        .values_list("owner_id", "pool_id", "source")
    )
    deltas: dict[tuple, list[int]] = {}
    for owner_id, pool_id, source in rows:
        base = _key(owner_id, pool_id, source)
        for part, sign in ((old, -1), (new, 1)):
            if part is None:
                continue
            entry = deltas.setdefault((*base, part[0], part[1]), [0, 0])
            entry[0] += sign
            entry[1] += sign * part[2]
    _upsert(LeadDealCount, DEAL_KEYS, DEAL_VALUES,
            [(*k, *v) for k, v in deltas.items() if any(v)])  # fmt: skip


_deletions = hooks.QuerysetDeletions()


def on_lead_deleted(sender, instance, origin=None, **kwargs) -> None:
    """pre_delete of a Lead: it leaves the counts before its row goes (a queryset's
    deletion once, for all its rows)."""
    from django.db.models import QuerySet

    if isinstance(origin, QuerySet) and origin.model is Lead:
        if _deletions.first(origin, Lead):
            subtract(origin)
        return
    apply(snapshot(instance), None)


def on_deal_deleted(sender, instance, origin=None, **kwargs) -> None:
    """pre_delete of an Opportunity: the leads converted into it lose the link
    (SET_NULL), so their LeadDealCount rows go."""
    from django.db.models import QuerySet

    from loudou.pipeline.models import Opportunity

    if isinstance(origin, QuerySet) and origin.model is Opportunity:
        if not _deletions.first(origin, Opportunity):
            return
        deals = origin.order_by().values("pk")
    else:
        deals = [instance.pk]
    leads = Lead.objects.filter(converted_opportunity__in=deals)
    _upsert(LeadDealCount, DEAL_KEYS, DEAL_VALUES, _deal_rows(leads, -1))


# --- reading (the analytics query layer) ---------------------------------------------------


def _visible(qs, owner_ids, pool_ids):
    """Rows of ``owner_ids`` (None: everyone) or of ``pool_ids``."""
    if owner_ids is None:
        return qs
    condition = Q(owner_key__in=[o for o in owner_ids if o])
    if pool_ids:
        condition |= Q(owner_key=0, pool_key__in=list(pool_ids))
    return qs.filter(condition)


def lead_counts(owner_ids=None, pool_ids=()) -> list[dict]:
    """Leads per (source, status) of these owners (None: every lead) and these pools'
    pooled leads: rows (source, status, n), added up by the database."""
    qs = _visible(LeadCount.objects.exclude(count=0), owner_ids, pool_ids)
    rows = qs.values("source", "status").annotate(n=Sum("count")).order_by()
    return [{"source": r["source"], "status": r["status"], "n": int(r["n"])} for r in rows]


def deal_counts(pipeline_id: int, owner_ids=None, pool_ids=()) -> list[dict]:
    """Converted leads of these owners and pools per (source, deal status) whose deal is
    in the pipeline: rows (source, status, n, cents)."""
    qs = _visible(LeadDealCount.objects.filter(pipeline_id=pipeline_id).exclude(count=0),
                  owner_ids, pool_ids)  # fmt: skip
    rows = qs.values("source", "deal_status").annotate(n=Sum("count"), c=Sum("amount_cents"))
    return [{"source": r["source"], "status": r["deal_status"], "n": int(r["n"]),
             "cents": int(r["c"])} for r in rows.order_by()]  # fmt: skip


@contextmanager
def moving_to(leads, owner_id, pool_id):
    """Around a bulk UPDATE that gives every lead of ``leads`` (a queryset, read before
    the UPDATE) the owner ``owner_id`` and pool ``pool_id``: one GROUP BY, its rows taken
    out under the old keys and added under the new."""
    lock(leads)
    lead_rows = _lead_rows(leads)
    deal_rows = _deal_rows(leads)
    yield
    owner, pool = owner_id or 0, pool_id or 0
    _upsert(LeadCount, LEAD_KEYS, LEAD_VALUES, _rekey(lead_rows, owner, pool, 1))
    _upsert(LeadDealCount, DEAL_KEYS, DEAL_VALUES, _rekey(deal_rows, owner, pool, len(DEAL_VALUES)))


def _rekey(rows, owner, pool, values: int) -> list[tuple]:
    """Rows minus themselves plus the same under (owner, pool), merged per key."""
    merged: dict[tuple, list[int]] = {}
    for row in rows:
        key, vals = row[:-values], row[-values:]
        for k, sign in ((key, -1), ((owner, pool, *key[2:]), 1)):
            entry = merged.setdefault(k, [0] * values)
            for i, v in enumerate(vals):
                entry[i] += sign * v
    return [(*k, *v) for k, v in merged.items() if any(v)]
