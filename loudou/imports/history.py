"""Rebuilding an imported opportunity's stage history: pure functions, no ORM.

Given the stage events a file gives (OpportunityHistory rows, HubSpot "Date entered"
columns, a native history file) and the opportunity's final state, produce exactly the
StageChange rows and denormalised fields the pipeline services would have written had the
deal been worked in Loudou: a ``created`` row, one ``moved`` row per change of open
stage (with the stay in the stage left), ``won``/``lost`` rows, ``reopened`` when a
closed deal comes back, the furthest stage (highest position ever entered; moving back
does not lower it), ``stage_entered_at`` and ``closed_at``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from operator import itemgetter

OPEN, WON, LOST = "open", "won", "lost"


@dataclass(frozen=True)
class StageInfo:
    """What the rebuild needs to know of a stage."""

    pk: int
    kind: str  # open / won / lost
    position: int
    probability: Decimal


@dataclass(slots=True)
class Change:
    kind: str
    from_stage: StageInfo | None
    to_stage: StageInfo
    at: datetime
    probability: Decimal
    amount: Decimal | None = None
    stay_seconds: int | None = None


@dataclass
class Rebuilt:
    changes: list[Change] = field(default_factory=list)
    stage: StageInfo | None = None
    furthest: StageInfo | None = None
    status: str = OPEN
    stage_entered_at: datetime | None = None
    closed_at: datetime | None = None

    @property
    def stays_seconds(self) -> int:
        """Σ stay_seconds of the changes (those without a stay count 0): what
        Opportunity.stays_seconds holds for this history (pipeline.summaries)."""
        return sum(
            s for c in self.changes
            if (s := c[6] if type(c) is tuple else c.stay_seconds) is not None
        )  # fmt: skip


def _stay_seconds(at: datetime, entered: datetime) -> int:
    return max(int((at - entered).total_seconds()), 0)


def _stay_micros(at: int, entered: int) -> int:
    return max((at - entered) // 1_000_000, 0)


_HUNDRED, _ZERO = Decimal(100), Decimal(0)
# The won and lost changes' probabilities (the very objects: callers may key on them).
HUNDRED, ZERO = _HUNDRED, _ZERO


_first = itemgetter(0)


def _same(a: StageInfo, b: StageInfo) -> bool:
    return a is b or a == b


def rebuild(
    *,
    created_at: datetime,
    events: list[tuple[datetime, StageInfo, Decimal | None]],
    final_status: str,
    final_stage: StageInfo | None,
    closed_at: datetime | None,
    first_open: StageInfo,
    won_stage: StageInfo,
    lost_stage: StageInfo,
    raw: bool = False,
) -> Rebuilt:
    """The history of one opportunity.

    ``events``: (when, stage, amount then or None), in any order. ``final_stage``: the open
    stage it is in now (open), or was closed from (lost; Pipedrive style won), or None when
    the file does not say. ``closed_at``: when a won/lost deal closed (None: the last
    event's time). The moments are datetimes, or all of them integer microseconds since
    the epoch (what the import passes: no datetime object per change; the same answers).
    ``raw``: the changes as plain tuples in :class:`Change`'s field order (kind,
    from_stage, to_stage, at, probability, amount, stay_seconds) — the import's path, no
    object per change; else as Change objects.
    """
    stay_of = _stay_micros if type(created_at) is int else _stay_seconds
    if len(events) > 1:
        events = sorted(events, key=_first)
    start = None
    for event in events:
        if event[1].kind == OPEN:
            start = event[1]
            break
    if start is None:
        start = final_stage if final_stage is not None else first_open
    start_at = events[0][0] if events and events[0][0] < created_at else created_at
    out = Rebuilt()
    changes = out.changes
    append = changes.append
    # The first event is the creation when it enters the start stage.
    skip = bool(events) and _same(events[0][1], start)
    append(("created", None, start, start_at, start.probability,
            events[0][2] if skip else None, None))  # fmt: skip
    cur, entered, status, furthest = start, start_at, OPEN, start
    closed = None
    # The steps of the services, written out inline (one call per deal, not per change).
    for i in range(1 if skip else 0, len(events)):
        at, stage, amount = events[i]
        if at < entered:
            at = entered
        kind = stage.kind
        if kind == OPEN:
            if status != OPEN:  # reopened into this stage
                append(("reopened", won_stage if status == WON else lost_stage, stage,
                        at, stage.probability, amount, None))  # fmt: skip
                cur, entered = stage, at
                if stage.position > furthest.position:
                    furthest = stage
                status, closed = OPEN, None
            elif not _same(stage, cur):  # moved
                append(("moved", cur, stage, at, stage.probability, amount,
                        stay_of(at, entered)))  # fmt: skip
                cur, entered = stage, at
                if stage.position > furthest.position:
                    furthest = stage
            continue
        if status != OPEN:
            if status == kind:
                continue
            # closed the other way: reopened into the stage it was closed from first
            append(("reopened", won_stage if status == WON else lost_stage, cur, at,
                    cur.probability, amount, None))  # fmt: skip
            entered = at
            status, closed = OPEN, None
        won = kind == WON
        append((kind, cur, won_stage if won else lost_stage, at,
                _HUNDRED if won else _ZERO, amount, stay_of(at, entered)))  # fmt: skip
        status, closed = kind, at
        if won:
            entered = at

    # Reconcile with the state the opportunity file gives (written out inline: no
    # helper closures made per deal).
    last = changes[-1][3]
    if final_status == OPEN:
        if status != OPEN:  # reopened into its stage
            to = final_stage if final_stage is not None else cur
            append(("reopened", won_stage if status == WON else lost_stage, to, last,
                    to.probability, None, None))  # fmt: skip
            cur, entered = to, last
            if to.position > furthest.position:
                furthest = to
            status, closed = OPEN, None
        elif final_stage is not None and final_stage != cur:  # moved to its stage
            at = max(last, entered)
            append(("moved", cur, final_stage, at, final_stage.probability, None,
                    stay_of(at, entered)))  # fmt: skip
            cur, entered = final_stage, at
            if final_stage.position > furthest.position:
                furthest = final_stage
    else:
        when = max(closed_at if closed_at is not None else last, entered)
        if status != OPEN and status != final_status:  # reopened, to be closed the other way
            append(("reopened", won_stage if status == WON else lost_stage, cur, when,
                    cur.probability, None, None))  # fmt: skip
            entered = when
            if cur.position > furthest.position:
                furthest = cur
            status, closed = OPEN, None
        if status == OPEN:
            if final_stage is not None and final_stage != cur:  # moved to its stage
                at = max(last, entered)
                append(("moved", cur, final_stage, at, final_stage.probability, None,
                        stay_of(at, entered)))  # fmt: skip
                cur, entered = final_stage, at
                if final_stage.position > furthest.position:
                    furthest = final_stage
            at = max(when, entered)  # closed
            won = final_status == WON
            append((final_status, cur, won_stage if won else lost_stage, at,
                    _HUNDRED if won else _ZERO, None, stay_of(at, entered)))  # fmt: skip
            status, closed = final_status, at
            if won:
                entered = at
    out.stage = won_stage if status == WON else cur
    out.furthest, out.status = furthest, status
    out.stage_entered_at, out.closed_at = entered, closed
    if not raw:
        out.changes = [Change(*change) for change in changes]
    return out
