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

OPEN, WON, LOST = "open", "won", "lost"


@dataclass(frozen=True)
class StageInfo:
    """What the rebuild needs to know of a stage."""

    pk: int
    kind: str  # open / won / lost
    position: int
    probability: Decimal


@dataclass
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


def _stay(at: datetime, entered: datetime) -> int:
    return max(int((at - entered).total_seconds()), 0)


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
) -> Rebuilt:
    """The history of one opportunity.

    ``events``: (when, stage, amount then or None), in any order. ``final_stage``: the open
    stage it is in now (open), or was closed from (lost; Pipedrive style won), or None when
    the file does not say. ``closed_at``: when a won/lost deal closed (None: the last
    event's time).
    """
    events = sorted(events, key=lambda e: e[0])
    opens = [e for e in events if e[1].kind == OPEN]
    start = opens[0][1] if opens else (final_stage or first_open)
    start_at = min([created_at] + [e[0] for e in events[:1]])
    out = Rebuilt()
    out.changes.append(
        Change(
            "created",
            None,
            start,
            start_at,
            start.probability,
            events[0][2] if events and events[0][1] == start else None,
        )
    )
    cur, entered, status, furthest = start, start_at, OPEN, start
    closed = None
    if events and events[0][1] == start:
        events = events[1:]

    def move_to(stage, at, amount, kind="moved"):
        nonlocal cur, entered, furthest
        stay = _stay(at, entered) if kind == "moved" else None
        out.changes.append(Change(kind, cur if kind == "moved" else _terminal(), stage, at,
                                  stage.probability, amount, stay))  # fmt: skip
        cur, entered = stage, at
        if stage.position > furthest.position:
            furthest = stage

    def _terminal():
        return won_stage if status == WON else lost_stage

    def close(kind, at, amount):
        nonlocal status, closed, entered
        stage = won_stage if kind == WON else lost_stage
        out.changes.append(Change(kind, cur, stage, at, Decimal(100 if kind == WON else 0),
                                  amount, _stay(at, entered)))  # fmt: skip
        status, closed = kind, at
        if kind == WON:
            entered = at

    def reopen(to, at, amount):
        nonlocal status, closed
        move_to(to, at, amount, kind="reopened")
        status, closed = OPEN, None

    for at, stage, amount in events:
        at = max(at, entered)
        if stage.kind == OPEN:
            if status != OPEN:
                reopen(stage, at, amount)
            elif stage != cur:
                move_to(stage, at, amount)
        elif status == OPEN:
            close(stage.kind, at, amount)
        elif status != stage.kind:
            reopen(cur, at, amount)
            close(stage.kind, at, amount)
    # Reconcile with the state the opportunity file gives.
    last = out.changes[-1].at
    if final_status == OPEN:
        if status != OPEN:
            reopen(final_stage or cur, last, None)
        elif final_stage is not None and final_stage != cur:
            move_to(final_stage, max(last, entered), None)
    else:
        when = max(closed_at or last, entered)
        if status != OPEN and status != final_status:
            reopen(cur, when, None)
        if status == OPEN:
            if final_stage is not None and final_stage != cur:
                move_to(final_stage, max(last, entered), None)
            close(final_status, max(when, entered), None)
    out.stage = won_stage if status == WON else cur
    out.furthest, out.status = furthest, status
    out.stage_entered_at, out.closed_at = entered, closed
    return out
