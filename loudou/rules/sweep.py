"""The rule sweep: settle what is met, find what newly fails, act on it.

One run, in one transaction:

1. take the sweep lock (PostgreSQL: a transaction-level advisory lock, so a second
   worker waits and then finds nothing left to do; SQLite: the IMMEDIATE transaction
   already serialises writers);
2. bring the follow-up state up to date: the subjects of every activity written since
   the previous run's watermark (bulk imports emit no event), or all of them on the
   first run and with ``rebuild``;
3. for each rule: settle its open breaches (engine.resolve), store the new ones with
   ``ON CONFLICT DO NOTHING`` on their key, then run the rule's actions for the breaches
   this run stored (actions.perform);
4. create the outcome tasks of activities written in bulk in the last day;
5. record the run (:class:`SweepRun`): its moment, mode, watermark and counts.

Incremental runs look only at records whose clock crossed a line since the previous
run; a full run (any rule edited, or the last full run older than :data:`FULL_EVERY`: the
hourly run) also looks at the records saved since the previous full run (a new grade,
owner, stage) and those whose follow-up state an edited activity moved. A rule whose
fingerprint (settings, stage limits, calendar) changed since the previous run reads every
record and open breach.

Changes that leave no trace (rows written by SQL, without ``updated_at``) are caught by a
rolling check: each hourly run also re-reads one slice of every kind of record, and the
open breaches of those records — slice k of :data:`SLICES` by id range (the primary key's
index), the ranges stepped from the lowest and highest ids when the cycle began (the
first and last slices are open-ended, so records added since are in the last one). So a
cycle of :data:`SLICES` hourly runs reads every record and open breach once, a little at a
time, instead of one long run a day; the run records its slice (``counts["slice"]``) and
the next hourly run takes the next one. Every rule reads every record and open breach in
one go in an *exhaustive* run: ``full``, some rules only, the first run, the clock going
backwards, and when the cycle in progress could not finish within :data:`CYCLE_LIMIT` of
the previous complete look at one slice an hour (the worker was down). On PostgreSQL the
rules that read what changed (and a slice) are planned as index probes
(:class:`_PlannerCost`).
"""

from __future__ import annotations

import time as clock
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from loudou.activities.models import Activity

from . import actions, state
from .calendar import load_calendar
from .engine import EVALUATORS, SUBJECTS, Context, resolve
from .models import (
    AccountFollowUp,
    Breach,
    FollowUpRule,
    LeadFollowUp,
    OpportunityFollowUp,
    Requirement,
    Resolution,
    SweepRun,
)

FULL_EVERY = timedelta(hours=1)
# The hourly run re-reads one slice of the records and their open breaches whatever
# changed: a cycle of this many hourly runs reads them all (about a day).
SLICES = 24
# A cycle finishes within this long of the previous complete look (an exhaustive run or
# the end of the previous cycle), else the hourly run reads everything in one go.
CYCLE_LIMIT = timedelta(hours=36)
# Overlap between runs: rows whose transaction committed a little after the previous run
# looked, and clocks that differ a little between workers.
MARGIN = timedelta(minutes=10)
# Outcome tasks for activities written in bulk: only the recent ones still need doing.
OUTCOME_BACKFILL = timedelta(days=1)
LOCK_KEY = 0x6C6F7564  # "loud"
# PostgreSQL's random_page_cost for the statements that read what changed (at most).
TRACED_RANDOM_PAGE_COST = 1.1
# A run that stored this many breaches refreshes the table's planner statistics.
ANALYZE_AFTER = 10_000


class _PlannerCost:
    """PostgreSQL: plan the statements of a rule that reads what changed (and one slice)
    as index probes. They read a few thousand rows, hot in the cache, but with the
    default ``random_page_cost`` (4, spinning disks) the planner prefers to hash a whole
    table, the follow-up state or a rule's open breaches: ten times slower here. A
    transaction-level setting, lowered to :data:`TRACED_RANDOM_PAGE_COST` (never raised)
    and put back for the rules that read everything; one statement per switch."""

    def __init__(self):
        self.usual: str | None = None  # the value to put back while lowered

    def few_rows(self, on: bool) -> None:
        if connection.vendor != "postgresql" or on == (self.usual is not None):
            return
        with connection.cursor() as cursor:
            if on:
                cursor.execute(
                    "SELECT current_setting('random_page_cost'), set_config('random_page_cost',"
                    " LEAST(current_setting('random_page_cost')::float8, %s)::text, true)",
                    [TRACED_RANDOM_PAGE_COST],
                )
                self.usual = cursor.fetchone()[0]
            else:
                cursor.execute("SELECT set_config('random_page_cost', %s, true)", [self.usual])
                self.usual = None


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def _last_full():
    """The last finished full (or rebuild) run over every rule."""
    return (
        SweepRun.objects.filter(finished_at__isnull=False, partial=False)
        .exclude(mode=SweepRun.Mode.INCREMENTAL)
        .order_by("-pk")
        .first()
    )


def _mode(now, *, full, rebuild, partial, previous, evaluated, last_full) -> str:
    if rebuild or previous is None:
        return SweepRun.Mode.REBUILD
    if full or partial or evaluated is None or now < evaluated.now:
        return SweepRun.Mode.FULL
    if last_full is None or now - last_full.now >= FULL_EVERY:
        return SweepRun.Mode.FULL
    if FollowUpRule.objects.filter(updated_at__gt=evaluated.started_at).exists():
        return SweepRun.Mode.FULL
    return SweepRun.Mode.INCREMENTAL


def _analyze(*models) -> None:
    """Fresh planner statistics for tables this run filled (PostgreSQL): the next run
    may start before autovacuum has looked, and a plan made for an empty table (a
    nested loop over the follow-up state) takes minutes instead of a second."""
    if connection.vendor != "postgresql":
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(quote(m._meta.db_table) for m in models))


def _exhaustive(now, mode, *, full, partial, evaluated) -> bool:
    """Whether every rule re-reads all its records and open breaches in this run: the
    first run and a rebuild, a run asked for as full or for some rules, the clock going
    backwards (and, decided by :func:`_next_slice`, a rolling cycle fallen behind).
    Otherwise only what changed is looked at again, and one slice in an hourly run."""
    if mode == SweepRun.Mode.REBUILD or full or partial or evaluated is None:
        return True
    return now < evaluated.now


def _bounds() -> dict:
    """The lowest and highest id of each kind of record (one index read each)."""
    found = {}
    for subject in SUBJECTS.values():
        ids = subject.model.objects.aggregate(low=Min("pk"), high=Max("pk"))
        found[subject.kind] = [ids["low"] or 0, ids["high"] or 0]
    return found


def slice_range(bounds, index: int, of: int) -> tuple[int | None, int | None]:
    """Ids ``low <= id < high`` of slice ``index`` of ``of`` over ``bounds`` (the lowest
    and highest id when the cycle began); the first slice has no lower end and the last
    no upper one, so together they hold every id, those added since included."""
    low, high = bounds
    span = high - low + 1
    start = None if index == 0 else low + span * index // of
    end = None if index == of - 1 else low + span * (index + 1) // of
    return start, end


def _next_slice(now, last_full) -> dict | None:
    """The slice an hourly run re-reads: the next one of the cycle in progress, or the
    first of a new cycle after a run that read everything or finished a cycle (its ids
    stepped from the records' ids now). None — read everything in one go — when the
    cycle cannot finish within :data:`CYCLE_LIMIT` of the previous complete look at one
    slice per :data:`FULL_EVERY`, or when no complete look is known."""
    if last_full is None:
        return None
    state = (last_full.counts or {}).get("slice")
    if state and state["index"] + 1 < state["of"]:
        state = {**state, "index": state["index"] + 1}
    else:
        if state or last_full.exhaustive:
            started = last_full.now
        else:  # the last full run was made before runs took slices
            started = (
                SweepRun.objects.filter(finished_at__isnull=False, exhaustive=True, partial=False)
                .order_by("-pk")
                .values_list("now", flat=True)
                .first()
            )
            if started is None:
                return None
        state = {"index": 0, "of": SLICES, "started": started.isoformat(), "bounds": _bounds()}
    left = state["of"] - 1 - state["index"]
    if now - datetime.fromisoformat(state["started"]) + left * FULL_EVERY > CYCLE_LIMIT:
        return None
    return state


def sweep(now=None, *, rule_ids=None, full=False, rebuild=False, progress=None) -> SweepRun:
    """Run the follow-up rules once at ``now`` (default: the current time); returns the
    recorded run. Safe to run twice and from several workers at once: a breach is
    stored once per key and only the run that stored it acts on it."""
    now = now or timezone.now()
    say = progress or (lambda message: None)
    started = clock.monotonic()
    with transaction.atomic():
        _lock()
        finished = SweepRun.objects.filter(finished_at__isnull=False)
        previous = finished.order_by("-pk").first()
        evaluated = finished.filter(partial=False).order_by("-pk").first()
        last_full = _last_full()
        mode = _mode(
            now, full=full, rebuild=rebuild, partial=bool(rule_ids), previous=previous,
            evaluated=evaluated, last_full=last_full,
        )  # fmt: skip
        watermark = Activity.objects.aggregate(top=Max("pk"))["top"] or 0
        run = SweepRun.objects.create(
            now=now, mode=mode, activity_watermark=watermark, partial=bool(rule_ids)
        )
        counts: dict = {"rules": {}}

        # 2. follow-up state
        if mode == SweepRun.Mode.REBUILD:
            state.rebuild(now=now)
            _analyze(LeadFollowUp, AccountFollowUp, OpportunityFollowUp)
            changed = Activity.objects.all()
        else:
            since_rows = previous.started_at - MARGIN
            state.catch_up(after_id=previous.activity_watermark, since=since_rows, now=now)
            changed = state.changed_activities(
                after_id=previous.activity_watermark, since=since_rows
            )
        say(f"state: {mode}, activities up to #{watermark}")

        # 3. rules
        calendar = load_calendar()
        exhaustive = _exhaustive(now, mode, full=full, partial=bool(rule_ids), evaluated=evaluated)
        part = None  # the hourly run's slice of the rolling check
        if not exhaustive and mode == SweepRun.Mode.FULL:
            part = _next_slice(now, last_full)
            exhaustive = part is None  # the cycle fell behind: everything now
        run.exhaustive = exhaustive
        checked = Context(now=now, calendar=calendar)  # every record, every open breach
        traced = None  # what changed only
        if not exhaustive:
            traced = Context(now=now, calendar=calendar, since=evaluated.now - MARGIN,
                             changed=changed)  # fmt: skip
            if mode == SweepRun.Mode.FULL:
                counts["slice"] = part
                traced.recheck = {
                    kind: slice_range(bounds, part["index"], part["of"])
                    for kind, bounds in part["bounds"].items()
                }
                traced.saved_since = (last_full or evaluated).now - MARGIN
                traced.sweep_nows = tuple(
                    SweepRun.objects.filter(now__gte=traced.saved_since).values_list(
                        "now", flat=True
                    )
                )
        previous_prints = (evaluated.counts or {}).get("fingerprints", {}) if evaluated else {}
        counts["fingerprints"] = {}
        rules = FollowUpRule.objects.all()
        if rule_ids:
            rules = rules.filter(pk__in=rule_ids)
        off = Breach.objects.open().filter(rule__in=rules.filter(is_active=False))
        resolved_total = off.update(resolved_at=now, resolution=Resolution.RULE_INACTIVE)
        opened_total = 0
        planner = _PlannerCost()
        for rule in rules.filter(is_active=True):
            evaluator = EVALUATORS[rule.requirement]
            if not evaluator.sweeps or rule.applies_to not in SUBJECTS:
                continue
            t0 = clock.monotonic()
            fingerprint = evaluator.fingerprint(rule, checked)
            counts["fingerprints"][str(rule.pk)] = fingerprint
            # a rule edited (or its stage limits, or the calendar) since the previous run
            # reads everything again; the others what changed
            ctx = checked
            if traced is not None and previous_prints.get(str(rule.pk)) == fingerprint:
                ctx = traced
            planner.few_rows(ctx is traced)
            resolved = resolve(rule, ctx)
            opened = evaluator.store(rule, ctx, run)
            done = actions.perform(rule, run, now) if opened else {}
            entry = {"opened": opened, "resolved": resolved, "actions": done,
                     "checked": ctx is checked,
                     "seconds": round(clock.monotonic() - t0, 3)}  # fmt: skip
            counts["rules"][str(rule.pk)] = entry
            opened_total += opened
            resolved_total += sum(resolved.values())
            say(f"{rule.name}: {opened} opened, {sum(resolved.values())} resolved")

        planner.few_rows(False)
        if opened_total >= ANALYZE_AFTER:
            _analyze(Breach)

        # 4. outcome tasks of activities written in bulk
        counts["outcome_activities"] = _outcome_backfill(rules, changed, checked)

        run.opened, run.resolved = opened_total, resolved_total
        counts["seconds"] = round(clock.monotonic() - started, 3)
        run.counts = counts
        run.finished_at = timezone.now()
        run.save(update_fields=["opened", "resolved", "counts", "finished_at", "exhaustive"])
    return run


def _outcome_backfill(rules, changed, ctx) -> int:
    """Outcome tasks for recent activities the listener did not see; create_task's key
    makes those it did see a no-op."""
    n = 0
    recent = changed.filter(occurred_at__gte=ctx.now - OUTCOME_BACKFILL)
    for rule in rules.filter(is_active=True, requirement=Requirement.TASK_ON_OUTCOME):
        rows = recent
        if rule.condition("activity_kinds"):
            rows = rows.filter(kind__in=rule.condition("activity_kinds"))
        if rule.condition("outcomes"):
            rows = rows.filter(outcome__in=rule.condition("outcomes"))
        rows = rows.select_related("owner", "lead", "account", "contact", "opportunity")
        for activity in rows.iterator(chunk_size=500):
            if actions.outcome_tasks(rule, activity, calendar=ctx.calendar, now=ctx.now):
                n += 1
    return n
