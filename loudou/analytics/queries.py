"""The query layer of the funnel reports: every number is aggregated by the database
(GROUP BY), never by a Python loop over opportunity rows. What comes back is small —
one row per stage, status, rep or bucket — and feeds the pure functions of funnel.py.

Money is summed as whole cents (core.db.Cents) so that SQLite and PostgreSQL agree to
the cent.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import (
    Count,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Window,
)  # fmt: skip
from django.db.models.functions import RowNumber

from loudou.core.db import Cents
from loudou.org.models import Team
from loudou.pipeline import summaries
from loudou.pipeline.choices import ChangeKind, Status
from loudou.pipeline.models import Opportunity, Pipeline, StageChange

from .periods import Period

HOUR = 3600


def viewer_ids(user) -> tuple[set[int], list[int]]:
    """A signed-in viewer who does not see everything, as ids: the owners whose deals
    they see (themself and, for a manager, everyone in their team's subtree) and the
    deals shared with them by name — visible_to's two parts, read first: as a subquery,
    SQLite would test every deal."""
    from loudou.org.models import User

    owners = {user.pk}
    if user.managed_team_path:
        owners |= set(
            User.objects.filter(team__path__startswith=user.managed_team_path).values_list(
                "pk", flat=True
            )
        )
    through = Opportunity.shared_with.through
    shared = list(through.objects.filter(user=user).values_list("opportunity_id", flat=True))
    return owners, shared


@dataclass
class Scope:
    """Which opportunities a report covers: the user's visible ones in one pipeline,
    narrowed by creation date, team, owner and product line."""

    user: object
    pipeline: Pipeline
    created_from: date | None = None
    created_to: date | None = None  # inclusive
    team: Team | None = None
    owner_id: int | None = None
    product_line_id: int | None = None
    # what the scope read inside remembering() (None: outside, nothing kept)
    _memo: dict | None = field(default=None, init=False, repr=False, compare=False)

    @contextmanager
    def remembering(self):
        """Within the block the scope keeps what it reads about itself (owner_set, the
        pipeline's stages; see remember): the parts of one report ask once instead of
        each again. Outside it nothing is kept, so a scope reused after a change reads
        afresh."""
        if self._memo is not None:  # an outer block keeps them already
            yield self
            return
        self._memo = {}
        try:
            yield self
        finally:
            self._memo = None

    def remember(self, key, compute):
        """compute(), once per ``key`` inside remembering()."""
        memo = self._memo
        if memo is None:
            return compute()
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    def open_stages(self) -> list:
        """The pipeline's open stages in order (remembered)."""
        return self.remember("open_stages", lambda: list(self.pipeline.open_stages()))

    def stage_ids(self) -> list[int]:
        """The ids of every stage of the pipeline, archived too (remembered)."""
        return self.remember(
            "stage_ids", lambda: list(self.pipeline.stages.values_list("pk", flat=True))
        )

    def opportunities(self):
        """The user's visible opportunities in the scope: the same rows as
        Opportunity.objects.visible_to(user) of the pipeline narrowed by the scope's
        filters (creation dates, team, owner, product line), written as "owned by these
        people, or one of these few shared deals" (owner_set), which the databases answer
        from the owner index instead of testing every deal of the pipeline."""
        return self._owned_by(*self.owner_set())

    def team_opportunities(self):
        """What a report compares with: for a rep, their whole team's opportunities (used
        only as pooled numbers, never listed); for a manager or an admin, everything they
        see. The owner filter does not narrow it: a rep is compared with the team (see
        owner_set)."""
        return self._owned_by(*self.owner_set(team=True))

    def _owned_by(self, owners, extra):
        qs = Opportunity.objects.filter(pipeline=self.pipeline)
        if owners is not None:
            condition = Q(owner_id__in=owners)
            if extra is not None:
                shared = list(extra.values_list("pk", flat=True))
                if shared:
                    condition |= Q(pk__in=shared)
            qs = qs.filter(condition)
        if self.created_from:
            qs = qs.filter(created_at__date__gte=self.created_from)
        if self.created_to:
            qs = qs.filter(created_at__date__lte=self.created_to)
        if self.product_line_id is not None:
            qs = qs.filter(product_line_id=self.product_line_id)
        return qs.order_by()

    def is_whole_pipeline(self) -> bool:
        """Every opportunity of the pipeline: a viewer who sees everything and no filter.
        Then history rows can be selected by their stage alone (stages belong to one
        pipeline), without joining the opportunities."""
        return getattr(self.user, "sees_everything", False) and not (
            self.created_from or self.created_to or self.team is not None
            or self.owner_id is not None or self.product_line_id is not None
        )  # fmt: skip

    def summarisable(self) -> bool:
        """Whether the maintained summaries (pipeline.summaries) can answer for this
        scope: they are kept per owner, so any owner set works; a creation-date cohort or
        a product line needs the opportunities themselves."""
        return not (self.created_from or self.created_to or self.product_line_id is not None)

    def owner_set(self, *, team: bool = False):
        """The scope as the summaries see it: ``(owners, extra)`` where ``owners`` is
        None (every owner of the pipeline) or a list of owner ids, and ``extra`` the
        opportunities the viewer sees besides those owners' (shared with them), or None.
        ``team=True`` describes team_opportunities(). Exactly the opportunities of
        opportunities() / team_opportunities(). Remembered inside remembering()."""
        return self.remember(("owner_set", team), lambda: self._owner_set(team=team))

    def _owner_set(self, *, team: bool):
        from loudou.org.models import User

        user = self.user
        sees_all = getattr(user, "sees_everything", False)
        managed = getattr(user, "managed_team_path", "")
        extra = None
        if user is None or not user.is_authenticated or not user.is_active:
            return [], None  # visible_to: nothing
        if sees_all:
            owners = None
        elif team and not managed and getattr(user, "team_id", None):
            owners = set(User.objects.filter(team_id=user.team_id).values_list("pk", flat=True))
        else:
            owners, shared = viewer_ids(user)
            if shared:  # none shared by name: no extra part at all
                extra = Opportunity.objects.filter(pk__in=shared).exclude(owner_id__in=owners)
        if self.team is not None:
            in_team = set(
                User.objects.filter(team__path__startswith=self.team.path).values_list(
                    "pk", flat=True
                )
            )
            owners = in_team if owners is None else owners & in_team
            if extra is not None:
                extra = extra.filter(owner__team__path__startswith=self.team.path)
        if not team and self.owner_id is not None:
            owners = {self.owner_id} if owners is None else owners & {self.owner_id}
            if extra is not None:
                extra = extra.filter(owner_id=self.owner_id)
        if extra is not None:
            extra = extra.filter(pipeline=self.pipeline).order_by()
        return (None if owners is None else sorted(owners)), extra

    def leads(self):
        """The user's visible leads narrowed like the opportunities: creation date,
        the owner's team, the owner and (as product interest) the product line. A lead
        has no pipeline yet, so the pipeline does not narrow it."""
        from loudou.leads.models import Lead

        qs = Lead.objects.visible_to(self.user)
        if self.created_from:
            qs = qs.filter(created_at__date__gte=self.created_from)
        if self.created_to:
            qs = qs.filter(created_at__date__lte=self.created_to)
        if self.team is not None:
            qs = qs.filter(owner__team__path__startswith=self.team.path)
        if self.owner_id is not None:
            qs = qs.filter(owner_id=self.owner_id)
        if self.product_line_id is not None:
            qs = qs.filter(product_interest_id=self.product_line_id)
        return qs.order_by()


def scope_owners(scope: Scope):
    """The people whose orders and payments count in the scope's completed revenue: the
    owner filter, else the users the viewer may see (narrowed to the team filter); None
    means everyone (an admin or the command line without a filter)."""
    from loudou.org.models import User

    if scope.owner_id is not None:
        return [scope.owner_id]
    user = scope.user
    sees_all = getattr(user, "sees_everything", False)
    if sees_all and scope.team is None:
        return None
    users = User.objects.all() if sees_all else User.objects.visible_to(user)
    if not sees_all and not getattr(user, "managed_team_path", ""):
        users = users.filter(pk=user.pk)  # a rep's scope is their own deals
    if scope.team is not None:
        users = users.filter(team__path__startswith=scope.team.path)
    return users


def target_owner(scope: Scope) -> dict:
    """Whose target a scope is measured against: the owner filter's rep, else the team
    filter's team, else the viewer's own (a rep: themself; a manager: the team they
    manage); an admin without filters: the company ({})."""
    from loudou.org.models import User

    if scope.owner_id is not None:
        return {"user": User.objects.get(pk=scope.owner_id)}
    if scope.team is not None:
        return {"team": scope.team}
    user = scope.user
    if getattr(user, "sees_everything", False):
        return {}
    if getattr(user, "managed_team_path", ""):
        return {"team": user.team}
    return {"user": user}


def cents_to_decimal(cents) -> Decimal:
    return (Decimal(cents or 0) / 100).quantize(Decimal("0.01"))


def furthest_counts(qs, by_owner: bool = False) -> list[dict]:
    """Opportunities per (furthest stage, status[, owner]): the input of the funnel."""
    keys = ["furthest_stage_id", "status"] + (["owner_id"] if by_owner else [])
    return list(qs.values(*keys).annotate(n=Count("pk")).order_by())


def scope_counts(scope: Scope, *, team: bool = False, by_owner: bool = False) -> list[dict]:
    """furthest_counts of scope.opportunities() (or team_opportunities() with ``team``),
    read from the maintained FunnelCount rows when the scope allows (Scope.summarisable):
    then the cost follows the number of owners and stages, not of opportunities. Rows
    also carry ``cents`` (summed amount) and ``stays`` (summed recorded stays)."""
    if not scope.summarisable():
        qs = scope.team_opportunities() if team else scope.opportunities()
        keys = ["furthest_stage_id", "status"] + (["owner_id"] if by_owner else [])
        return list(
            qs.values(*keys)
            .annotate(n=Count("pk"), cents=Sum(Cents("amount")), stays=Sum("stays_seconds"))
            .order_by()
        )
    owners, extra = scope.owner_set(team=team)
    rows = summaries.counts(scope.pipeline.pk, owners, by_owner=by_owner)
    if extra is None:  # one row per key already (FunnelCount's unique key, or summed)
        return rows
    rows += [
        {**r, "cents": r["cents"] or 0, "stays": r["stays"] or 0}
        for r in extra.values("furthest_stage_id", "status", "owner_id").annotate(
            n=Count("pk"), cents=Sum(Cents("amount")), stays=Sum("stays_seconds")
        )
    ]
    merged: dict[tuple, dict] = {}
    for r in rows:
        key = (r["furthest_stage_id"], r["status"]) + ((r["owner_id"],) if by_owner else ())
        entry = merged.setdefault(key, {"furthest_stage_id": key[0], "status": key[1], "n": 0,
                                        "cents": 0, "stays": 0})  # fmt: skip
        if by_owner:
            entry["owner_id"] = key[2]
        entry["n"] += r["n"]
        entry["cents"] += int(r["cents"] or 0)
        entry["stays"] += int(r["stays"] or 0)
    return list(merged.values())


def won_totals(rows: list[dict]) -> dict:
    """Won deals of scope_counts rows: count, amount and summed cycle (their recorded
    stays, creation to win)."""
    won = [r for r in rows if r["status"] == Status.WON]
    return {
        "count": sum(r["n"] for r in won),
        "amount": cents_to_decimal(sum(int(r["cents"] or 0) for r in won)),
        "cycle_seconds": sum(int(r["stays"] or 0) for r in won),
    }


def open_by_stage(qs) -> dict[int, dict]:
    """Open opportunities per CURRENT stage: count and amount (for the weighted pipeline
    and the board-like view of the funnel)."""
    rows = (
        qs.filter(status=Status.OPEN)
        .values("stage_id")
        .annotate(n=Count("pk"), cents=Sum(Cents("amount")))
        .order_by()
    )
    return {r["stage_id"]: {"count": r["n"], "amount": cents_to_decimal(r["cents"])} for r in rows}


def won_between(qs, start: datetime, end: datetime) -> dict:
    """Deals won in [start, end): count and amount (completed funnel revenue)."""
    row = qs.filter(status=Status.WON, closed_at__gte=start, closed_at__lt=end).aggregate(
        n=Count("pk"), cents=Sum(Cents("amount"))
    )
    return {"count": row["n"], "amount": cents_to_decimal(row["cents"])}


def won_amounts_until(qs, start: datetime, ends: list[datetime]) -> list[Decimal]:
    """For each end: the amount of won_between(qs, start, end), in one pass over the deals
    won since ``start`` (the forecast's completed revenue now and a week ago)."""
    sums = {f"c{i}": Sum(Cents("amount"), filter=Q(closed_at__lt=end))
            for i, end in enumerate(ends)}  # fmt: skip
    row = qs.filter(status=Status.WON, closed_at__gte=start, closed_at__lt=max(ends)).aggregate(
        **sums
    )
    return [cents_to_decimal(row[f"c{i}"]) for i in range(len(ends))]


def stay_histograms(qs, before: datetime | None = None, *, stages=None) -> dict[int, dict]:
    """Per stage left: number of completed stays, their total seconds, and a histogram of
    whole hours (for the median). Reopenings do not count as stays.

    ``stages`` (the ids of a pipeline's stages) replaces the opportunity filter when the
    scope is the whole pipeline (Scope.is_whole_pipeline): the same numbers, read from
    the maintained StayCount rows (pipeline.summaries) when there is no ``before``, else
    from the (from_stage, stay_seconds) index alone."""
    if stages is not None and before is None:
        return summaries.stays(stages)
    changes = StageChange.objects.filter(stay_seconds__isnull=False).order_by()
    if stages is not None:
        changes = changes.filter(from_stage_id__in=list(stages))
    else:
        changes = changes.filter(opportunity__in=qs.values("pk"))
    if before is not None:
        changes = changes.filter(changed_at__lt=before)
    hours = changes.annotate(hour=F("stay_seconds") / HOUR).values("from_stage_id", "hour")
    result: dict[int, dict] = {}
    for row in hours.annotate(n=Count("pk"), seconds=Sum("stay_seconds")):
        stage = result.setdefault(row["from_stage_id"], {"count": 0, "seconds": 0, "hours": {}})
        stage["count"] += row["n"]
        stage["seconds"] += int(row["seconds"])
        stage["hours"][int(row["hour"])] = row["n"]
    return result


def scope_stays(scope: Scope) -> dict[int, dict]:
    """stay_histograms of scope.opportunities(): for the whole pipeline from StayCount,
    for a team's or rep's scope from the per-owner OwnerStayCount (plus the few deals
    shared with the viewer, read from their history), else from the history."""
    if scope.is_whole_pipeline():
        return summaries.stays(scope.stage_ids())
    owners, extra = scope.owner_set()
    if not scope.summarisable() or owners is None:
        return stay_histograms(scope.opportunities())
    result = summaries.owner_stays(owners, scope.stage_ids())
    if extra is not None:
        for stage_id, theirs in stay_histograms(extra).items():
            stage = result.setdefault(stage_id, {"count": 0, "seconds": 0, "hours": {}})
            stage["count"] += theirs["count"]
            stage["seconds"] += theirs["seconds"]
            for hour, n in theirs["hours"].items():
                stage["hours"][hour] = stage["hours"].get(hour, 0) + n
    return result


def scope_stay_rows(scope: Scope) -> list[tuple] | None:
    """scope_stays(scope) as plain rows (stage, hour, count) in (stage, hour) order
    (summaries.stay_rows), when the summaries alone answer (the whole pipeline, or a set
    of owners with no deal shared by name); None otherwise (then use scope_stays)."""
    if scope.is_whole_pipeline():
        return summaries.stay_rows(scope.stage_ids())
    if not scope.summarisable():
        return None
    owners, extra = scope.owner_set()
    if owners is None or extra is not None:
        return None
    return summaries.stay_rows(scope.stage_ids(), owners)


def state_at(qs, moment: datetime, *, stages=None, current=None, whole: bool = False) -> dict:
    """The open pipeline as it stood at ``moment``: count and amount per stage.

    Worked backwards from today, so the cost follows the number of changes since the
    moment (a week's worth for "last week's forecast"), not the size of the history:
    opportunities untouched since then are as they are now; for the others, their first
    change after the moment says where they stood (its from-stage, its amount), and one
    created after the moment did not exist yet.

    ``stages`` (the pipeline's stage ids) selects the changes after the moment by their
    stage instead of by the scope's opportunities, so the database reads only those
    changes, from the changed_at index. That may take in changes of opportunities outside
    the scope, but every use below intersects with ``qs``, so the answer is the same.

    ``current``: the open pipeline of ``qs`` now per stage (count, amount), when the
    caller has it already (open_by_stage_from_groups), to save reading it again.

    ``whole`` (with ``stages``): ``qs`` is every opportunity of the pipeline
    (Scope.is_whole_pipeline), so the changes need no test against it.

    Each touched deal's first change after the moment comes from one ranked pass
    (ROW_NUMBER per deal) over the changes since then, read from change_recent_idx alone
    (the per-deal lookups and the row reads cost ~1 s at 1,000,000 deals for last week);
    on SQLite without ``stages`` (a past quarter's start, the backtest) from one indexed
    lookup per touched deal, cheaper there than ranking a year of changes.
    """
    later = StageChange.objects.filter(changed_at__gt=moment)
    if stages is not None:
        later = later.filter(to_stage_id__in=list(stages))
    else:
        later = later.filter(opportunity__in=qs.values("pk"))
    touched = later.values("opportunity_id")  # IN (…) needs no DISTINCT, which would
    # make SQLite walk the opportunity index instead of the changed_at range
    result: dict[int, dict] = {}

    def add(stage_id, count, cents, sign=1):
        entry = result.setdefault(stage_id, {"count": 0, "amount": Decimal(0)})
        entry["count"] += sign * count
        entry["amount"] += sign * cents_to_decimal(cents)

    open_now = qs.filter(status=Status.OPEN)
    if current is None:
        current = open_by_stage(qs)
    for stage_id, v in current.items():
        entry = result.setdefault(stage_id, {"count": 0, "amount": Decimal(0)})
        entry["count"] += v["count"]
        entry["amount"] += v["amount"]
    if not later.exists():  # nothing changed since the moment (as of now): as it is
        return {"open": {k: v for k, v in result.items() if v["count"]}}
    if whole and stages is not None:
        # "+ 0": the pipeline's open deals come from an index (opp_open_ids_idx) and are
        # looked up in the touched ids, rather than each touched id in the table
        moved = open_now.annotate(key=F("pk") + 0).filter(key__in=touched)
    else:  # a team's or a rep's: each touched id looked up (few of them are theirs)
        moved = open_now.filter(pk__in=touched)
    moved = moved.values("stage_id")
    for row in moved.annotate(n=Count("pk"), cents=Sum(Cents("amount"))):
        add(row["stage_id"], row["n"], row["cents"], sign=-1)
    if stages is None and connection.vendor == "sqlite":
        # a past moment's pipeline (the backtest: a year of changes since then): one
        # indexed lookup per touched deal beats ranking the year's changes on SQLite
        first_after = Subquery(
            StageChange.objects.filter(opportunity=OuterRef("pk"), changed_at__gt=moment)
            .order_by("changed_at", "pk")
            .values("pk")[:1]
        )
        firsts = qs.filter(pk__in=touched).annotate(first=first_after).values("first")
        then = (
            StageChange.objects.filter(pk__in=firsts)
            .exclude(kind=ChangeKind.CREATED)
            .filter(from_stage__kind="open")
            .values("from_stage_id")
            .annotate(n=Count("pk"), cents=Sum(Cents("amount")))
            .order_by()
        )
        rows = [(r["from_stage_id"], r["n"], r["cents"]) for r in then]
    else:
        rows = _first_changes(later, qs, whole=whole and stages is not None)
    for from_stage_id, n, cents in rows:
        add(from_stage_id, n, cents)
    return {"open": {k: v for k, v in result.items() if v["count"]}}


def open_at(scope: Scope, moment: datetime, *, stages, current: dict) -> dict | None:
    """state_at(scope.opportunities(), moment, stages=stages, current=current) — the same
    numbers — from the maintained hourly deltas of the open pipeline (pipeline.summaries,
    OpenDelta): the open pipeline now minus the deltas of the hours after the moment's
    hour, corrected by the few deals changed between the moment and the end of its hour,
    and by the deals shared with the viewer (their own history). No ranking of the
    changes since the moment. None when the summaries cannot answer (a date or product
    line filter, or a moment before the deltas' horizon): then use state_at."""
    hour = summaries.hour_of(moment)
    if not scope.summarisable() or hour + 1 < scope.remember("horizon", summaries.delta_horizon):
        return None
    boundary = summaries.hour_start(hour + 1)
    owners, extra = scope.owner_set()
    totals: dict[int, list[int]] = {}

    def add(stage_id, n, cents, sign=1):
        entry = totals.setdefault(stage_id, [0, 0])
        entry[0] += sign * n
        entry[1] += sign * int(cents or 0)

    for stage_id, v in current.items():
        add(stage_id, v["count"], v["amount"] * 100)
    for row in summaries.open_changes(scope.pipeline.pk, owners, hour):
        add(row["stage_id"], row["n"], row["cents"], -1)
    stages = list(stages)
    # the deals changed in the rest of the moment's hour (a few; none for "now"), read
    # first: when there are none, their two corrections need no statement
    changed = sorted(set(
        StageChange.objects.filter(
            changed_at__gt=moment, changed_at__lt=boundary, to_stage_id__in=stages
        ).values_list("opportunity_id", flat=True)
    ))  # fmt: skip
    if changed and owners is not None:  # of them, the owners' (often none for a team)
        changed = list(
            Opportunity.objects.filter(pk__in=changed, owner_id__in=owners)
            .values_list("pk", flat=True)
            .order_by()
        )
    if changed:
        partial = Opportunity.objects.filter(pipeline=scope.pipeline, pk__in=changed).order_by()
        # each of them changed after the moment: none is "untouched since" it
        for (stage_id, n, cents), sign in [
            *((r, 1) for r in _stood_at(partial, moment, stages, touched_only=True)),
            *((r, -1) for r in _stood_at(partial, boundary, stages, inclusive=True)),
        ]:
            add(stage_id, n, cents, sign)
    if extra is not None:
        for stage_id, n, cents in _stood_at(extra, moment, stages):
            add(stage_id, n, cents)
        for r in (
            extra.filter(status=Status.OPEN)
            .values("stage_id")
            .annotate(n=Count("pk"), cents=Sum(Cents("amount")))
        ):
            add(r["stage_id"], r["n"], r["cents"], -1)
    return {"open": {k: {"count": n, "amount": cents_to_decimal(c)}
                     for k, (n, c) in totals.items() if n}}  # fmt: skip


def _stood_at(deals, moment: datetime, stages, *, inclusive: bool = False,
              touched_only: bool = False) -> list[tuple]:  # fmt: skip
    """Where the opportunities of ``deals`` (a few) stood at ``moment`` as state_at reads
    the history, per stage (stage, count, cents): each one's first change after the
    moment (``inclusive``: at or after) among the pipeline's ``stages`` — where it stood
    before that change (an open stage, not its creation) — or, untouched since, its open
    stage now (``touched_only``: the caller knows every one of them changed since: that
    part is not read). One indexed lookup per deal."""
    after = "changed_at__gte" if inclusive else "changed_at__gt"
    first = Subquery(
        StageChange.objects.filter(opportunity=OuterRef("pk"), to_stage_id__in=stages,
                                   **{after: moment})
        .order_by("changed_at", "pk")
        .values("pk")[:1]
    )  # fmt: skip
    marked = deals.order_by().annotate(first=first)
    touched = (
        StageChange.objects.filter(pk__in=marked.filter(first__isnull=False).values("first"))
        .exclude(kind=ChangeKind.CREATED)
        .filter(from_stage__kind="open")
        .values("from_stage_id")
        .annotate(n=Count("pk"), cents=Sum(Cents("amount")))
        .order_by()
    )
    untouched = (
        marked.filter(first__isnull=True, status=Status.OPEN)
        .values("stage_id")
        .annotate(n=Count("pk"), cents=Sum(Cents("amount")))
        .order_by()
    )
    if touched_only:
        return [(r["from_stage_id"], r["n"], r["cents"]) for r in touched]
    return [(r["from_stage_id"], r["n"], r["cents"]) for r in touched] + [
        (r["stage_id"], r["n"], r["cents"]) for r in untouched
    ]


def _first_changes(later, qs, *, whole: bool) -> list[tuple]:
    """Per from-stage (open stages only): how many of the deals of ``qs`` with changes in
    ``later`` had a first such change that was not their creation, and its summed amount
    (cents): where those deals stood before. One statement: the changes ranked per deal
    by (changed_at, id), the first kept."""
    from loudou.pipeline.models import Stage

    if not whole:  # ranked per deal, so narrowing to the scope's deals first is the same
        later = later.filter(opportunity__in=qs.values("pk"))
    # A deal created after the moment (its creation is its first change) did not exist
    # then: leaving out all its changes first spares ranking them (about half the week's)
    born = later.filter(kind=ChangeKind.CREATED).values("opportunity_id")
    later = later.exclude(kind=ChangeKind.CREATED).exclude(opportunity_id__in=born)
    ranked = later.order_by().annotate(
        # "+ 0": partitioned by an expression, SQLite sorts the week's changes read from
        # change_recent_idx instead of walking the whole history in opportunity order
        rank=Window(RowNumber(), partition_by=[F("opportunity_id") + 0],
                    order_by=[F("changed_at").asc(), F("pk").asc()])
    ).values("opportunity_id", "kind", "from_stage_id", "amount", "rank")  # fmt: skip
    ranked_sql, params = ranked.query.sql_with_params()
    open_sql, open_params = (
        Stage.objects.filter(kind="open").order_by().values("pk").query.sql_with_params()
    )
    # whole cents, as core.db.Cents
    sqlite_cents = "CAST(ROUND(t.amount * 100) AS BIGINT)"
    cents = "t.amount * 100" if connection.vendor == "postgresql" else sqlite_cents
    sql = (
        f"SELECT t.from_stage_id, COUNT(*), SUM({cents}) FROM ({ranked_sql}) t "
        f"WHERE t.rank = 1 AND t.kind <> %s AND t.from_stage_id IN ({open_sql})"
    )
    params = [*params, ChangeKind.CREATED, *open_params]
    sql += " GROUP BY t.from_stage_id"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def won_amount_between_changes(qs, start: datetime, end: datetime) -> Decimal:
    """Amount won in [start, end) according to the history (the amount at the moment of
    winning), for backtests of past periods."""
    row = StageChange.objects.filter(
        opportunity__in=qs.values("pk"), kind=ChangeKind.WON, changed_at__gte=start,
        changed_at__lt=end,
    ).aggregate(cents=Sum(Cents("amount")))  # fmt: skip
    return cents_to_decimal(row["cents"])


def _closed_before(moment: datetime, prefix: str = "") -> Q:
    """Opportunities created before ``moment`` that had not closed by then (closed later,
    or still open)."""
    return Q(**{f"{prefix}created_at__lt": moment}) & (
        Q(**{f"{prefix}closed_at__isnull": True}) | Q(**{f"{prefix}closed_at__gte": moment})
    )


def furthest_counts_before(qs, moments: list[datetime]) -> list[list[dict]]:
    """For each moment, furthest_counts of the opportunities of ``qs`` created and closed
    before it (the backtest's learning set): one pass with a conditional count per
    moment instead of one query each."""
    if not moments:
        return []
    counts = {f"n{i}": Count("pk", filter=Q(created_at__lt=m, closed_at__lt=m))
              for i, m in enumerate(moments)}  # fmt: skip
    rows = list(qs.values("furthest_stage_id", "status").annotate(**counts).order_by())
    return [
        [{"furthest_stage_id": r["furthest_stage_id"], "status": r["status"], "n": r[f"n{i}"]}
         for r in rows if r[f"n{i}"]]
        for i in range(len(moments))
    ]  # fmt: skip


def stay_histograms_before(qs, moments: list[datetime]) -> list[dict[int, dict]]:
    """For each moment, stay_histograms(qs.filter(created_at__lt=moment), before=moment),
    in one pass over the history with conditional aggregates."""
    if not moments:
        return []
    aggregates = {}
    for i, m in enumerate(moments):
        when = Q(changed_at__lt=m, opportunity__created_at__lt=m)
        aggregates[f"n{i}"] = Count("pk", filter=when)
        aggregates[f"s{i}"] = Sum("stay_seconds", filter=when)
    rows = (
        StageChange.objects.filter(stay_seconds__isnull=False, opportunity__in=qs.values("pk"),
                                   changed_at__lt=max(moments))
        .order_by()
        .annotate(hour=F("stay_seconds") / HOUR)
        .values("from_stage_id", "hour")
        .annotate(**aggregates)
    )  # fmt: skip
    results: list[dict[int, dict]] = [{} for _m in moments]
    for row in rows:
        for i, result in enumerate(results):
            if not row[f"n{i}"]:
                continue
            stage = result.setdefault(row["from_stage_id"], {"count": 0, "seconds": 0, "hours": {}})
            stage["count"] += row[f"n{i}"]
            stage["seconds"] += int(row[f"s{i}"])
            stage["hours"][int(row["hour"])] = row[f"n{i}"]
    return results


def won_amounts_between_changes(qs, spans: list[tuple[datetime, datetime]]) -> list[Decimal]:
    """For each [start, end): the amount won in it according to the history by the
    opportunities of ``qs`` created before ``start`` and not closed before it (as
    won_amount_between_changes), in one pass."""
    if not spans:
        return []
    sums = {
        f"c{i}": Sum(Cents("amount"), filter=Q(changed_at__gte=start, changed_at__lt=end)
                     & _closed_before(start, "opportunity__"))
        for i, (start, end) in enumerate(spans)
    }  # fmt: skip
    row = StageChange.objects.filter(
        opportunity__in=qs.values("pk"), kind=ChangeKind.WON,
        changed_at__gte=min(s for s, _e in spans), changed_at__lt=max(e for _s, e in spans),
    ).aggregate(**sums)  # fmt: skip
    return [cents_to_decimal(row[f"c{i}"]) for i in range(len(spans))]


def breakdown(qs, dimension: str, period: Period) -> list[dict]:
    """Won amount and count in ``period`` per value of ``dimension`` (region, industry,
    product line, source, team, rep)."""
    field = {
        "region": "account__region__name",
        "industry": "account__industry",
        "product_line": "product_line__name",
        "source": "source",
        "team": "owner__team__name",
        "rep": "owner__username",
    }[dimension]
    start, end = period.bounds()
    rows = (
        qs.filter(status=Status.WON, closed_at__gte=start, closed_at__lt=end)
        .values(key=F(field))
        .annotate(n=Count("pk"), cents=Sum(Cents("amount")))
        .order_by("key")
    )
    return [{"key": r["key"] or "", "count": r["n"], "amount": cents_to_decimal(r["cents"])}
            for r in rows]  # fmt: skip


def month_span(period: Period) -> tuple[int, int] | None:
    """The months [first, end) (year × 100 + month) that make up ``period`` when it is
    whole months in the time zone of the maintained WonCount (a month, quarter or year
    in the company's time zone); None otherwise (a week)."""
    if period.start.day != 1 or period.end.day != 1:
        return None
    from django.utils import timezone

    if timezone.get_current_timezone_name() != summaries.won_time_zone():
        return None
    return (period.start.year * 100 + period.start.month,
            period.end.year * 100 + period.end.month)  # fmt: skip


def scope_breakdown(scope: Scope, dimension: str, period: Period) -> list[dict]:
    """breakdown(scope.opportunities(), dimension, period), read from the maintained
    WonCount rows when the scope allows (Scope.summarisable) and the period is whole
    months (month_span): the cost follows the owners, months and values, not the won
    deals (no account looked up per deal). Team and rep add up each owner's rows and
    name them by the owner's team or username now; region and product line keys are
    ids, named now. The few deals shared with the viewer are read as before."""
    span = month_span(period)
    if span is None or not scope.summarisable():
        return breakdown(scope.opportunities(), dimension, period)
    from loudou.org.models import Region, User
    from loudou.pipeline.models import ProductLine

    owners, extra = scope.owner_set()
    pipeline = scope.pipeline.pk
    # the names of the people, regions and product lines (tables the size of the
    # organisation, read whole: an IN list of every owner costs more), once per report
    if dimension in ("team", "rep"):
        rows = summaries.won_breakdown(pipeline, owners, "source", *span, by_owner=True)
        field = "team__name" if dimension == "team" else "username"
        names = scope.remember(("names", dimension), lambda: dict(
            User.objects.values_list("pk", field).order_by()))  # fmt: skip
        rows = [(names.get(owner), n, c) for owner, n, c in rows]
    else:
        rows = summaries.won_breakdown(pipeline, owners, dimension, *span)
        named = {"region": Region, "product_line": ProductLine}.get(dimension)
        if named is not None:
            names = scope.remember(("names", dimension), lambda: {
                str(pk): name for pk, name in named.objects.values_list("pk", "name").order_by()
            })  # fmt: skip
            rows = [(names.get(key) if key else None, n, c) for key, n, c in rows]
    merged: dict[str, list[int]] = {}
    for key, n, c in rows:
        entry = merged.setdefault(key or "", [0, 0])
        entry[0] += n
        entry[1] += c
    if extra is not None:
        for r in breakdown(extra, dimension, period):
            entry = merged.setdefault(r["key"], [0, 0])
            entry[0] += r["count"]
            entry[1] += int(r["amount"] * 100)
    return [{"key": key, "count": n, "amount": cents_to_decimal(c)}
            for key, (n, c) in sorted(merged.items()) if n]  # fmt: skip


def open_amount_groups(qs) -> list[dict]:
    """Open opportunities per (current stage, amount band): count and exact amount. The
    Monte Carlo forecast treats the deals of one group alike; the bands are narrow enough
    (×2–×2.5) that the group's mean stands for each of them."""
    rows = (
        qs.filter(status=Status.OPEN)
        .annotate(band=summaries.band_expression())
        .values("stage_id", "band")
        .annotate(n=Count("pk"), cents=Sum(Cents("amount")))
        .order_by("stage_id", "band")
    )
    return [{"stage_id": r["stage_id"], "count": r["n"], "amount": cents_to_decimal(r["cents"])}
            for r in rows]  # fmt: skip


def scope_open(scope: Scope, *, by_owner: bool = False, bands: bool = True) -> list[dict]:
    """The open deals of scope.opportunities() per (current stage, amount band[, owner]):
    rows (stage_id, band[, owner_id], n, cents) in that order (``bands=False``: per
    stage[, owner] only). Read from the maintained OpenCount rows when the scope allows
    (Scope.summarisable), plus the few deals shared with the viewer; else grouped from
    the opportunities."""
    keys = ["stage_id"] + (["band"] if bands else []) + (["owner_id"] if by_owner else [])
    if not scope.summarisable():
        qs = scope.opportunities().filter(status=Status.OPEN)
        rows = list(qs.annotate(band=summaries.band_expression()).values(*keys)
                    .annotate(n=Count("pk"), cents=Sum(Cents("amount"))).order_by())  # fmt: skip
    else:
        owners, extra = scope.owner_set()
        rows = summaries.open_groups(scope.pipeline.pk, owners, by_owner=by_owner, bands=bands)
        if extra is not None:
            rows += list(extra.filter(status=Status.OPEN).annotate(band=summaries.band_expression())
                         .values(*keys).annotate(n=Count("pk"), cents=Sum(Cents("amount")))
                         .order_by())  # fmt: skip
    merged: dict[tuple, dict] = {}
    for r in rows:
        key = tuple(r[k] for k in keys)
        entry = merged.setdefault(key, {**dict(zip(keys, key, strict=True)), "n": 0, "cents": 0})
        entry["n"] += r["n"]
        entry["cents"] += int(r["cents"] or 0)
    return [merged[k] for k in sorted(merged, key=lambda k: tuple((v is None, v or 0) for v in k))]


def scope_open_groups(scope: Scope) -> list[dict]:
    """open_amount_groups(scope.opportunities()), from scope_open (the summaries)."""
    return [{"stage_id": r["stage_id"], "count": r["n"], "amount": cents_to_decimal(r["cents"])}
            for r in scope_open(scope) if r["n"]]  # fmt: skip


def open_by_stage_from_groups(groups: list[dict]) -> dict[int, dict]:
    """open_by_stage, added up from open_amount_groups (one read of the open deals)."""
    result: dict[int, dict] = {}
    for g in groups:
        entry = result.setdefault(g["stage_id"], {"count": 0, "amount": Decimal(0)})
        entry["count"] += g["count"]
        entry["amount"] += g["amount"]
    return result


def leads_by_source(leads, pipeline: Pipeline) -> dict[str, dict]:
    """Leads per source: how many, converted, disqualified, and how many became an
    opportunity of ``pipeline`` that was then won (with its amount)."""
    from loudou.leads.choices import LeadStatus

    here = Q(converted_opportunity__pipeline=pipeline)
    won = here & Q(converted_opportunity__status=Status.WON)
    rows = (
        leads.values("source")
        .annotate(
            n=Count("pk"),
            converted=Count("pk", filter=Q(status=LeadStatus.CONVERTED)),
            disqualified=Count("pk", filter=Q(status=LeadStatus.DISQUALIFIED)),
            into_pipeline=Count("pk", filter=here),
            won=Count("pk", filter=won),
            won_cents=Sum(Cents("converted_opportunity__amount"), filter=won),
        )
        .order_by()
    )
    return {
        r["source"] or "": {
            "leads": r["n"], "converted": r["converted"], "disqualified": r["disqualified"],
            "into_pipeline": r["into_pipeline"], "won": r["won"],
            "won_amount": cents_to_decimal(r["won_cents"]),
        }
        for r in rows
    }  # fmt: skip


def lead_set(scope: Scope):
    """The scope's visible leads as the lead counts see them: ``(owners, pools,
    extra)``: ``owners`` None (every lead) or the owner ids whose leads count, ``pools``
    the public pools whose pooled leads count, ``extra`` the leads shared with the viewer
    besides those (a queryset) or None. Exactly the leads of scope.leads() when the scope
    is summarisable."""
    from loudou.leads.models import Lead, PublicPool
    from loudou.org.models import User

    user = scope.user
    if user is None or not user.is_authenticated or not user.is_active:
        return [], [], None
    extra = None
    if getattr(user, "sees_everything", False):
        owners, pools = None, []
    else:
        owners, _shared = viewer_ids(user)
        pools = list(PublicPool.objects.visible_to(user).values_list("pk", flat=True))
        through = Lead.shared_with.through
        shared = list(through.objects.filter(user=user).values_list("lead_id", flat=True))
        extra = (
            Lead.objects.filter(pk__in=shared).exclude(owner_id__in=owners).exclude(pool_id__in=pools)
            if shared else None
        )  # fmt: skip
    if scope.team is not None:  # a team's leads: owned by its people, none pooled
        in_team = set(
            User.objects.filter(team__path__startswith=scope.team.path).values_list("pk", flat=True)
        )
        owners, pools = (in_team if owners is None else set(owners) & in_team), []
        if extra is not None:
            extra = extra.filter(owner__team__path__startswith=scope.team.path)
    if scope.owner_id is not None:
        owners = {scope.owner_id} if owners is None else set(owners) & {scope.owner_id}
        pools = []
        if extra is not None:
            extra = extra.filter(owner_id=scope.owner_id)
    return (None if owners is None else sorted(owners)), pools, extra


def scope_leads(scope: Scope) -> dict[str, dict]:
    """leads_by_source(scope.leads(), scope.pipeline), read from the maintained lead
    counts (leads.summaries) when the scope allows (Scope.summarisable) plus the few
    leads shared with the viewer: then the cost follows the number of owners, pools and
    sources, not of leads."""
    from loudou.leads import summaries as lead_summaries
    from loudou.leads.choices import LeadStatus

    if not scope.summarisable():
        return leads_by_source(scope.leads(), scope.pipeline)
    owners, pools, extra = lead_set(scope)
    result: dict[str, dict] = {}

    def entry(source):
        names = ("leads", "converted", "disqualified", "into_pipeline", "won", "won_cents")
        return result.setdefault(source or "", dict.fromkeys(names, 0))

    for r in lead_summaries.lead_counts(owners, pools):
        e = entry(r["source"])
        e["leads"] += r["n"]
        if r["status"] == LeadStatus.CONVERTED:
            e["converted"] += r["n"]
        elif r["status"] == LeadStatus.DISQUALIFIED:
            e["disqualified"] += r["n"]
    for r in lead_summaries.deal_counts(scope.pipeline.pk, owners, pools):
        e = entry(r["source"])
        e["into_pipeline"] += r["n"]
        if r["status"] == Status.WON:
            e["won"] += r["n"]
            e["won_cents"] += r["cents"]
    if extra is not None:
        for source, row in leads_by_source(extra, scope.pipeline).items():
            e = entry(source)
            for name in ("leads", "converted", "disqualified", "into_pipeline", "won"):
                e[name] += row[name]
            e["won_cents"] += int(row["won_amount"] * 100)
    return {
        key: {"leads": v["leads"], "converted": v["converted"],
              "disqualified": v["disqualified"], "into_pipeline": v["into_pipeline"],
              "won": v["won"], "won_amount": cents_to_decimal(v["won_cents"])}
        for key, v in result.items() if v["leads"]
    }  # fmt: skip


def scope_sources(scope: Scope) -> dict[str, dict]:
    """opportunities_by_source(scope.opportunities()), read from the maintained
    SourceCount rows when the scope allows (Scope.summarisable) plus the few deals shared
    with the viewer: then the cost follows the number of owners and sources, not of
    opportunities."""
    if not scope.summarisable():
        return opportunities_by_source(scope.opportunities())
    owners, extra = scope.owner_set()
    rows = summaries.source_counts(scope.pipeline.pk, owners)
    if extra is not None:
        rows += [
            {"source": r["source"] or "", "status": r["status"], "n": r["n"],
             "cents": int(r["cents"] or 0)}
            for r in extra.values("source", "status").annotate(
                n=Count("pk"), cents=Sum(Cents("amount"))
            ).order_by()
        ]  # fmt: skip
    result: dict[str, dict] = {}
    for r in rows:
        entry = result.setdefault(r["source"] or "", {"opportunities": 0, "won": 0, "lost": 0,
                                                      "open": 0, "won_cents": 0})  # fmt: skip
        entry["opportunities"] += r["n"]
        if r["status"] == Status.WON:
            entry["won"] += r["n"]
            entry["won_cents"] += r["cents"]
        elif r["status"] == Status.LOST:
            entry["lost"] += r["n"]
        else:
            entry["open"] += r["n"]
    return {
        key: {"opportunities": v["opportunities"], "won": v["won"], "lost": v["lost"],
              "open": v["open"], "won_amount": cents_to_decimal(v["won_cents"])}
        for key, v in result.items() if v["opportunities"]
    }  # fmt: skip


def opportunities_by_source(qs) -> dict[str, dict]:
    """Opportunities per source: how many, won, lost, open and the won amount."""
    rows = (
        qs.values("source")
        .annotate(
            n=Count("pk"),
            won=Count("pk", filter=Q(status=Status.WON)),
            lost=Count("pk", filter=Q(status=Status.LOST)),
            won_cents=Sum(Cents("amount"), filter=Q(status=Status.WON)),
        )
        .order_by()
    )
    return {
        r["source"] or "": {
            "opportunities": r["n"], "won": r["won"], "lost": r["lost"],
            "open": r["n"] - r["won"] - r["lost"], "won_amount": cents_to_decimal(r["won_cents"]),
        }
        for r in rows
    }  # fmt: skip
