"""Requirement evaluators: one per kind of requirement, in a registry (``EVALUATORS``).

Each evaluator answers three questions for one rule at one moment, every one of them
with a query the database runs over the whole set (never a loop over subjects):

- ``scope(rule)``: the records the rule applies to now (owned, open, its conditions);
- ``candidates(rule, ctx)``: the records that newly fail it (rows of id, owner, clock
  start, due time) — only these come to Python, to be stored as breaches;
- ``resolutions(rule, ctx)``: for each resolution code, the condition under which an
  open breach of the rule is settled; :func:`resolve` applies them with one UPDATE each.

In an incremental sweep ``ctx.since`` is the previous run's moment, and the time-based
requirements only look at records whose clock crossed the line since then (an index
range); the hourly run also re-reads the records saved since the previous hourly run and
one slice of all the records (``Context.recheck``, through ``Context.saved``); an
exhaustive sweep looks at everything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    DateTimeField,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Concat, Least, Substr
from django.utils import timezone

from loudou.customers.models import Account, Contact
from loudou.leads.choices import OPEN_STATUSES
from loudou.leads.models import Lead
from loudou.pipeline.choices import StageKind, Status
from loudou.pipeline.models import Opportunity, Stage
from loudou.sales.queries import overdue_plans

from .calendar import Calendar, due_after, latest_start, working_due_pieces
from .models import (
    AccountFollowUp,
    AppliesTo,
    Breach,
    FollowUpRule,
    LeadFollowUp,
    OpportunityFollowUp,
    Requirement,
    Resolution,
)

# "First contact within N hours" looks back this far: a lead left alone for longer is a
# matter for "a contact every N days", not a new-lead alarm for every old record.
FIRST_CONTACT_LOOKBACK = timedelta(days=30)
# A greeting breach that was not met closes itself this long after its day.
GREETING_GRACE = timedelta(days=7)
# Working-hours due times are computed by the database for starts spread over at most
# this long (about 8 pieces a working day); older ones in Python.
MAX_PIECES_RANGE = timedelta(days=120)


# The records saved since a moment are read once per run and passed as a list of ids
# when there are at most this many (else as subqueries).
SAVED_LIST_MAX = 2000


@dataclass
class Context:
    now: datetime
    calendar: Calendar
    since: datetime | None = None  # incremental: the previous run's moment
    changed: QuerySet | None = None  # incremental: the activities written since then
    # The hourly run that checks what changed: records saved (or whose follow-up state
    # an edited activity moved) since the previous such run are looked at again.
    saved_since: datetime | None = None
    sweep_nows: tuple = ()  # the sweeps' own state writes (``updated_at`` = their now)
    cache: dict | None = None  # shared between the rules of one run
    # The hourly run also re-reads one slice of the records, whatever changed: per kind
    # of record, ``(low, high)`` — ids ``low <= id < high``, None for an open end
    # (sweep.py, the rolling check that replaces the daily run over everything).
    recheck: dict | None = None

    def slice_q(self, subject: Subject, field: str = "pk") -> Q | None:
        """The records of this run's slice as a condition on ``field`` (the record's id,
        or a Breach column): a range of the primary key, so an index serves it; None
        when the run re-reads no slice."""
        if not self.recheck or subject.kind not in self.recheck:
            return None
        low, high = self.recheck[subject.kind]
        q = Q()
        if low is not None:
            q &= Q(**{f"{field}__gte": low})
        if high is not None:
            q &= Q(**{f"{field}__lt": high})
        return q

    def saved(
        self, subject: Subject, since: datetime, *, state: bool = False, recheck: bool = True
    ) -> Q:
        """A condition on record ids: the records of ``subject`` saved since ``since``
        (for accounts, also those whose opportunities were: the grade follows them);
        with ``state``, also those whose follow-up state was written since then other
        than by a sweep's catch-up (an edited activity). Read once per run and kind and
        shared by the rules, as a list of ids; as subqueries when there are many. In a
        run that re-reads a slice, the slice's records too (unless ``recheck`` is
        false): what a full run would look at again among them, it does."""
        found = self._saved(subject, since, state=state)
        extra = self.slice_q(subject) if recheck else None
        return found | extra if extra is not None else found

    def _saved(self, subject: Subject, since: datetime, *, state: bool = False) -> Q:
        if self.cache is None:
            self.cache = {}
        key = (subject.kind, since, state)
        if key not in self.cache:
            sources = [(subject.model.objects.filter(updated_at__gte=since), "pk")]
            if subject.kind == "account":
                # an account's grade is written without touching its updated_at; the
                # opportunities saved carry the change
                sources.append((Opportunity.objects.filter(updated_at__gte=since), "account_id"))
            if state:
                edited = subject.state.objects.filter(updated_at__gte=since).exclude(
                    updated_at__in=list(self.sweep_nows)
                )
                sources.append((edited, "pk"))
            found: set = set()
            for qs, name in sources:
                ids = qs.values_list(name, flat=True)[: SAVED_LIST_MAX + 1]
                found.update(pk for pk in ids if pk is not None)
            if len(found) <= SAVED_LIST_MAX:
                self.cache[key] = Q(pk__in=sorted(found))
            else:
                q = Q(pk__in=[])
                for qs, name in sources:
                    q |= Q(pk__in=qs.values(name))
                self.cache[key] = q
        return self.cache[key]


@dataclass(frozen=True)
class Subject:
    kind: str
    model: type
    field: str  # the Breach field
    letter: str  # in breach keys
    state: type

    @property
    def column(self) -> str:
        return f"{self.field}_id"


SUBJECTS = {
    AppliesTo.LEAD: Subject("lead", Lead, "lead", "l", LeadFollowUp),
    AppliesTo.ACCOUNT: Subject("account", Account, "account", "a", AccountFollowUp),
    AppliesTo.OPPORTUNITY: Subject("opportunity", Opportunity, "opportunity", "o",
                                   OpportunityFollowUp),
}  # fmt: skip


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S%f")


def breach_key(rule, subject: Subject, pk: int, basis: datetime, owner_id: int) -> str:
    return f"{rule.pk}:{subject.letter}{pk}:{stamp(basis)}:{owner_id}"


# --- scope ---------------------------------------------------------------------------------


def scope(rule: FollowUpRule) -> QuerySet:
    """Owned, open records of the rule's kind that match its conditions."""
    kind = rule.applies_to
    if kind == AppliesTo.LEAD:
        qs = Lead.objects.filter(owner__isnull=False, pool__isnull=True)
        statuses = [s for s in rule.condition("lead_statuses", OPEN_STATUSES) if s in OPEN_STATUSES]
        qs = qs.filter(status__in=statuses or list(OPEN_STATUSES))
        if rule.condition("sources"):
            qs = qs.filter(source__in=rule.condition("sources"))
        return qs
    if kind == AppliesTo.ACCOUNT:
        qs = Account.objects.filter(owner__isnull=False)
        if rule.condition("grades") is not None:
            qs = qs.filter(grade__in=rule.condition("grades"))
        return qs
    if kind == AppliesTo.OPPORTUNITY:
        qs = Opportunity.objects.filter(status=Status.OPEN, owner__isnull=False)
        if rule.condition("pipelines"):
            qs = qs.filter(pipeline_id__in=rule.condition("pipelines"))
        if rule.condition("stages"):
            qs = qs.filter(stage_id__in=rule.condition("stages"))
        return qs
    raise ValueError(f"rule {rule.pk} applies to {kind!r}, which has no records to sweep")


def matches(rule: FollowUpRule, obj) -> bool:
    """Whether ``obj`` (one record) is in the rule's scope: the same conditions as
    :func:`scope`, read from the object without a query."""
    if rule.applies_to == AppliesTo.OPPORTUNITY and isinstance(obj, Opportunity):
        pipelines, stages = rule.condition("pipelines"), rule.condition("stages")
        return (not pipelines or obj.pipeline_id in pipelines) and (
            not stages or obj.stage_id in stages
        )
    return False


def start_expr(subject: Subject):
    """When a record's clock starts: a lead's when its owner got it (else created)."""
    if subject.kind == "lead":
        return Coalesce(F("owned_since"), F("created_at"), output_field=DateTimeField())
    return F("created_at")


def start_range_q(subject: Subject, low, high) -> Q:
    """``low <= start < high`` written so that indexes serve it."""
    if subject.kind == "lead":
        return Q(owned_since__gte=low, owned_since__lt=high) | Q(
            owned_since__isnull=True, created_at__gte=low, created_at__lt=high
        )
    return Q(created_at__gte=low, created_at__lt=high)


def without_open_breach(qs: QuerySet, rule, subject: Subject) -> QuerySet:
    return qs.filter(
        ~Exists(Breach.objects.open().filter(rule=rule, **{subject.field: OuterRef("pk")}))
    )


# --- evaluators ------------------------------------------------------------------------------


class Evaluator:
    requirement = ""
    sweeps = True  # checked by the periodic sweep
    contact_based = True  # an activity after the clock start meets it
    applies_to = (AppliesTo.LEAD, AppliesTo.ACCOUNT, AppliesTo.OPPORTUNITY)
    extra_cols: tuple = ()  # columns the due time needs besides the clock start
    # Every run settles all the rule's open breaches and reads all its records, whatever
    # changed: what it depends on leaves no trace the incremental run could follow.
    checks_everything = False

    def subject(self, rule) -> Subject:
        return SUBJECTS[rule.applies_to]

    def parts(self, rule, ctx: Context) -> list[QuerySet]:  # pragma: no cover - abstract
        """Querysets (annotated with ``_basis``, the clock start) of the records that
        fail the rule: everything in a full run, what crossed the line since
        ``ctx.since`` in an incremental one."""
        raise NotImplementedError

    def still_due(self, rule, ctx: Context) -> QuerySet | None:
        """Records that fail the rule now, whatever their breaches, annotated with
        ``_basis`` (None: do not settle breaches as "no longer applies")."""
        return None

    def due_function(self, rule, ctx: Context):
        """``due(basis, extra)``: when a record with this clock start was due."""
        raise NotImplementedError  # pragma: no cover - abstract

    def due_expression(self, rule, ctx: Context) -> Expression | None:
        """The due time as an SQL expression over ``_basis`` (and the record's columns),
        so that new breaches are stored without passing through Python; None when only
        Python can compute it (working hours)."""
        return None

    def all_parts(self, rule, ctx: Context) -> list[QuerySet]:
        """:meth:`parts`, and in an incremental run the records whose breach was settled
        since the previous run for another reason than being met (a new owner, a scope
        that changed): they may fail the rule again at once."""
        subject = self.subject(rule)
        parts = self.parts(rule, ctx)
        if ctx.since is not None:
            settled = Breach.objects.filter(
                rule=rule, resolved_at__gte=ctx.since,
                resolution__in=[Resolution.OWNER_CHANGED, Resolution.OUT_OF_SCOPE],
            ).values(subject.column)  # fmt: skip
            parts.append(self.still_due(rule, ctx).filter(pk__in=settled))
        if ctx.saved_since is not None:
            # the hourly run: what a full run would find among the records that may have
            # entered the rule's scope (a new grade, a stage, an owner) or whose last
            # contact an edited activity moved back
            saved = ctx.saved(subject, ctx.saved_since, state=self.contact_based)
            for qs in self.parts(rule, replace(ctx, since=None, changed=None)):
                parts.append(qs.filter(saved))
        return [without_open_breach(qs, rule, subject) for qs in parts]

    def fingerprint(self, rule, ctx: Context) -> str:
        """What the rule's findings depend on besides the records: its own settings and
        (:meth:`fingerprint_extra`) stage limits or the calendar. A rule whose
        fingerprint changed since the previous run re-reads all its records."""
        data = [rule.applies_to, rule.requirement, rule.amount, rule.conditions,
                rule.use_working_hours, self.fingerprint_extra(rule, ctx)]  # fmt: skip
        return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()

    def fingerprint_extra(self, rule, ctx: Context):
        return None

    def store(self, rule, ctx: Context, run) -> int:
        """Store the records that newly fail the rule as breaches found by ``run`` and
        return how many this run stored. With an SQL due time: one ``INSERT … SELECT …
        ON CONFLICT DO NOTHING`` per part, the key built by the database; otherwise the
        candidate rows are built in Python and bulk-inserted, conflicts ignored."""
        due = self.due_expression(rule, ctx)
        if due is None and not self.due_per_part:
            self._bulk_insert(self.candidates(rule, ctx), rule, run)
        else:
            subject = self.subject(rule)
            for qs in self.all_parts(rule, ctx):
                part_due = due if due is not None else self.part_due_expression(rule, ctx, qs)
                if part_due is None:
                    rows = self.rows(qs, subject, self.due_function(rule, ctx), rule,
                                     self.extra_cols)  # fmt: skip
                    self._bulk_insert(rows, rule, run)
                else:
                    _insert_select(qs, rule, subject, part_due, run)
        return Breach.objects.filter(sweep_run=run, rule=rule).count()

    @staticmethod
    def _bulk_insert(rows, rule, run) -> None:
        if rows:
            Breach.objects.bulk_create(
                [Breach(rule=rule, sweep_run=run, opened_at=run.now, **row) for row in rows],
                batch_size=1000, ignore_conflicts=True,
            )  # fmt: skip

    due_per_part = False  # part_due_expression depends on the part's rows

    def part_due_expression(self, rule, ctx: Context, qs) -> Expression | None:
        """The due time of the rows of ``qs`` as an SQL expression, when it depends on
        them (``due_per_part``); None: computed in Python."""
        return None

    def candidates(self, rule, ctx: Context) -> list[dict]:
        """The records that newly fail the rule, as breach rows (the Python path)."""
        subject = self.subject(rule)
        parts = self.all_parts(rule, ctx)
        rows = {}
        due = self.due_function(rule, ctx)
        for qs in parts:
            for row in self.rows(qs, subject, due, rule, self.extra_cols):
                rows[row["key"]] = row
        return list(rows.values())

    def resolutions(self, rule, ctx: Context) -> list[tuple[str, Q]]:
        """(code, condition on Breach rows) in the order they are tried."""
        subject = self.subject(rule)
        ref = OuterRef(subject.column)
        found = []
        if self.contact_based:
            met = subject.state.objects.filter(pk=ref, last_contact_at__gt=OuterRef("basis_at"))
            found.append((Resolution.MET, Q(Exists(met))))
        if subject.kind == "lead":
            found.append((Resolution.CLOSED, ~Q(Exists(
                Lead.objects.filter(pk=ref, status__in=OPEN_STATUSES)
            ))))  # fmt: skip
        elif subject.kind == "opportunity":
            found.append((Resolution.CLOSED, ~Q(Exists(
                Opportunity.objects.filter(pk=ref, status=Status.OPEN)
            ))))  # fmt: skip
        owned = subject.model.objects.filter(pk=ref, owner_id=OuterRef("owner_id"))
        found.append((Resolution.OWNER_CHANGED, ~Q(Exists(owned))))
        found += self.more_resolutions(rule, ctx, subject)
        due = self.still_due(rule, ctx)
        if due is not None:
            found.append((Resolution.OUT_OF_SCOPE, ~Q(Exists(due.filter(pk=ref)))))
        return found

    def more_resolutions(self, rule, ctx, subject) -> list[tuple[str, Q]]:
        return []

    def met_moment(self, subject: Subject, now) -> Expression:
        """When a breach settled as met was met (SQL, per Breach row)."""
        return met_at(subject, now)

    @staticmethod
    def rows(qs, subject: Subject, due, rule, extra_cols=()) -> list[dict]:
        """Candidate rows from ``qs`` annotated with ``_basis``; ``due(basis, extra)`` is
        the due time (``extra``: the values of ``extra_cols``)."""
        out = []
        for pk, owner_id, basis, *extra in qs.values_list("pk", "owner_id", "_basis", *extra_cols):
            out.append({
                subject.column: pk, "owner_id": owner_id, "basis_at": basis,
                "due_at": due(basis, extra), "key": breach_key(rule, subject, pk, basis, owner_id),
            })  # fmt: skip
        return out


class FirstContact(Evaluator):
    """Contacted within N hours (working hours when the rule says so) of the record
    arriving: a lead when its owner got it, an account or opportunity when created."""

    requirement = Requirement.FIRST_CONTACT_WITHIN

    def _latest(self, rule, moment, ctx):
        return latest_start(
            moment, rule.amount or 0, working=rule.use_working_hours, calendar=ctx.calendar
        )

    def _not_contacted(self, qs):
        return qs.filter(Q(follow_up__isnull=True) | Q(follow_up__last_contact_at__lt=F("_basis")))

    def parts(self, rule, ctx):
        subject = self.subject(rule)
        latest = self._latest(rule, ctx.now, ctx)
        low = ctx.now - FIRST_CONTACT_LOOKBACK
        if ctx.since is not None:
            low = max(low, self._latest(rule, ctx.since, ctx))
        # The start range as an index range (a hair past ``latest``: inclusive).
        qs = scope(rule).filter(start_range_q(subject, low, latest + timedelta(microseconds=1)))
        return [self._not_contacted(qs.annotate(_basis=start_expr(subject)))]

    def due_function(self, rule, ctx):
        def due(basis, _extra):
            return due_after(
                basis, rule.amount or 0, working=rule.use_working_hours, calendar=ctx.calendar
            )

        return due

    due_per_part = True

    def fingerprint_extra(self, rule, ctx):
        if not rule.use_working_hours:
            return None
        cal = ctx.calendar
        return [sorted((k, [list(map(str, r)) for r in v]) for k, v in cal.week.items()),
                sorted(map(str, cal.holidays)),
                sorted((str(k), v) for k, v in cal.workdays.items()), str(cal.zone())]  # fmt: skip

    def part_due_expression(self, rule, ctx, qs):
        """``due_after`` in SQL: the start plus N hours, or with working hours a CASE over
        the pieces of calendar.working_due_pieces between the part's earliest and latest
        start (a balanced tree of ``<`` tests); None (Python) for a range too long."""
        hours = rule.amount or 0
        if not rule.use_working_hours or not ctx.calendar.has_working_time or hours <= 0:
            return _plus(F("_basis"), timedelta(hours=hours))
        bounds = qs.order_by().aggregate(low=Min("_basis"), high=Max("_basis"))
        if bounds["low"] is None:
            return Value(None, output_field=DateTimeField())
        if bounds["high"] - bounds["low"] > MAX_PIECES_RANGE:
            return None
        pieces = working_due_pieces(bounds["low"], bounds["high"], hours, ctx.calendar)
        return _pieces_case(pieces) if pieces else None

    def still_due(self, rule, ctx):
        subject = self.subject(rule)
        latest = self._latest(rule, ctx.now, ctx)
        return self._not_contacted(
            scope(rule).annotate(_basis=start_expr(subject)).filter(_basis__lte=latest)
        )


class ContactEvery(Evaluator):
    """A contact at least every N days: the clock starts at the last contact (or, never
    contacted, when the record arrived)."""

    requirement = Requirement.CONTACT_EVERY

    def days(self, rule) -> int:
        return rule.amount or 0

    def scope(self, rule):
        return scope(rule)

    def basis(self, subject):
        return Coalesce(
            F("follow_up__last_contact_at"), start_expr(subject), output_field=DateTimeField()
        )

    def overdue_q(self, rule, ctx, low=None) -> Q:
        cutoff = ctx.now - timedelta(days=self.days(rule))
        q = Q(_basis__lt=cutoff)
        if low is not None:
            q &= Q(_basis__gte=low - timedelta(days=self.days(rule)))
        return q

    def parts(self, rule, ctx):
        subject = self.subject(rule)
        base = self.scope(rule)
        if ctx.since is None:
            return [base.annotate(_basis=self.basis(subject)).filter(self.overdue_q(rule, ctx))]
        # Two index ranges instead of one scan: contacted records by their last contact,
        # never-contacted ones by their start.
        days = timedelta(days=self.days(rule))
        low, high = ctx.since - days, ctx.now - days
        return [
            base.filter(
                follow_up__last_contact_at__gte=low, follow_up__last_contact_at__lt=high
            ).annotate(_basis=F("follow_up__last_contact_at")),
            base.filter(follow_up__isnull=True)
            .filter(start_range_q(subject, low, high))
            .annotate(_basis=start_expr(subject)),
        ]

    def due_function(self, rule, ctx):
        days = timedelta(days=self.days(rule))
        return lambda basis, _extra: basis + days

    def due_expression(self, rule, ctx):
        return _plus(F("_basis"), timedelta(days=self.days(rule)))

    def still_due(self, rule, ctx):
        subject = self.subject(rule)
        return (
            self.scope(rule).annotate(_basis=self.basis(subject)).filter(self.overdue_q(rule, ctx))
        )


class Revisit(ContactEvery):
    """Accounts with a revisit class (20/40/60/80 days, DOMAIN §4) are contacted within
    their interval, unless their revisit status is "pause"."""

    requirement = Requirement.REVISIT
    applies_to = (AppliesTo.ACCOUNT,)
    CLASSES = (20, 40, 60, 80)
    extra_cols = ("revisit_class",)

    def scope(self, rule):
        from loudou.customers.choices import RevisitStatus

        return (
            scope(rule)
            .exclude(revisit_status=RevisitStatus.PAUSE)
            .filter(revisit_class__in=[str(c) for c in self.CLASSES])
        )

    def overdue_q(self, rule, ctx, low=None) -> Q:
        q = Q(pk__in=[])
        for days in self.CLASSES:
            part = Q(revisit_class=str(days), _basis__lt=ctx.now - timedelta(days=days))
            if low is not None:
                part &= Q(_basis__gte=low - timedelta(days=days))
            q |= part
        return q

    def parts(self, rule, ctx):
        qs = self.scope(rule).annotate(_basis=self.basis(self.subject(rule)))
        return [qs.filter(self.overdue_q(rule, ctx, ctx.since))]

    def due_function(self, rule, ctx):
        return lambda basis, extra: basis + timedelta(days=int(extra[0]))

    def due_expression(self, rule, ctx):
        return Case(
            *[When(revisit_class=str(d), then=_plus(F("_basis"), timedelta(days=d)))
              for d in self.CLASSES],
            output_field=DateTimeField(),
        )  # fmt: skip


class Stale(Evaluator):
    """Open opportunities stay in a stage at most the stage's "stale after" days
    (DOMAIN §3); moving on, winning or losing settles it."""

    requirement = Requirement.STALE_IN_STAGE
    contact_based = False
    applies_to = (AppliesTo.OPPORTUNITY,)
    extra_cols = ("stage_id",)

    def limits(self, rule) -> dict[int, int]:
        stages = Stage.objects.filter(stale_after_days__isnull=False, kind=StageKind.OPEN)
        if rule.condition("pipelines"):
            stages = stages.filter(pipeline_id__in=rule.condition("pipelines"))
        if rule.condition("stages"):
            stages = stages.filter(pk__in=rule.condition("stages"))
        return dict(stages.values_list("pk", "stale_after_days"))

    def fingerprint_extra(self, rule, ctx):
        return sorted(self.limits(rule).items())

    def overdue_q(self, limits, ctx, low=None) -> Q:
        q = Q(pk__in=[])
        for stage_id, days in limits.items():
            part = Q(stage_id=stage_id, stage_entered_at__lt=ctx.now - timedelta(days=days))
            if low is not None:
                part &= Q(stage_entered_at__gte=low - timedelta(days=days))
            q |= part
        return q

    def parts(self, rule, ctx):
        qs = scope(rule).filter(self.overdue_q(self.limits(rule), ctx, ctx.since))
        return [qs.annotate(_basis=F("stage_entered_at"))]

    def due_function(self, rule, ctx):
        limits = self.limits(rule)
        return lambda basis, extra: basis + timedelta(days=limits[extra[0]])

    def due_expression(self, rule, ctx):
        limits = self.limits(rule)
        if not limits:
            return Value(None, output_field=DateTimeField())
        return Case(
            *[When(stage_id=stage_id, then=_plus(F("_basis"), timedelta(days=days)))
              for stage_id, days in limits.items()],
            output_field=DateTimeField(),
        )  # fmt: skip

    def more_resolutions(self, rule, ctx, subject):
        same_stay = Opportunity.objects.filter(
            pk=OuterRef("opportunity_id"), stage_entered_at=OuterRef("basis_at")
        )
        return [(Resolution.MOVED, ~Q(Exists(same_stay)))]

    def still_due(self, rule, ctx):
        qs = scope(rule).filter(self.overdue_q(self.limits(rule), ctx))
        return qs.annotate(_basis=F("stage_entered_at"))


class Greeting(Evaluator):
    """Birthdays of an account's contacts and the account's company anniversary: a
    reminder N days ahead, met by a contact with the account from the day before; it
    is late if nobody got in touch by the end of the day (DOMAIN §4, 成交 customers)."""

    requirement = Requirement.GREETING
    applies_to = (AppliesTo.ACCOUNT,)
    OCCASIONS = ("birthday", "anniversary")

    def occasions(self, rule):
        wanted = rule.condition("occasions", list(self.OCCASIONS))
        return [o for o in self.OCCASIONS if o in wanted]

    @staticmethod
    def _days(ctx, ahead: int) -> list[date]:
        today = timezone.localdate(ctx.now)
        return [today + timedelta(days=i) for i in range(ahead + 1)]

    @staticmethod
    def _month_day_q(field: str, days: list[date]) -> tuple[Q, dict]:
        """Dates whose month and day fall on ``days`` (29 February on the 28th in other
        years), as one ``IN`` over the date's "MM-DD" text (ISO dates on both databases:
        one string function per row rather than a month and a day extraction per day);
        also the map (month, day) → occasion."""
        on = {}
        for day in days:
            on[(day.month, day.day)] = day
            if day.month == 2 and day.day == 28 and not _leap(day.year):
                on[(2, 29)] = day
        month_day = Substr(Cast(field, CharField()), 6, 5)
        wanted = [f"{m:02d}-{d:02d}" for m, d in on]
        return Q(**{f"{field}__isnull": False}) & Q(_month_day_in(month_day, wanted)), on

    def candidates(self, rule, ctx):
        tz = ctx.calendar.zone()
        days = self._days(ctx, rule.amount or 0)
        accounts = scope(rule)
        contacts = Contact.objects.all()
        if ctx.since is not None and timezone.localdate(ctx.since) == days[0]:
            # the previous run looked at the same days: only what changed since then
            # (a contact added or edited, an account that changed hands or grade)
            changed = accounts.filter(ctx.saved(SUBJECTS[AppliesTo.ACCOUNT], ctx.since))
            contacts = contacts.filter(
                Q(updated_at__gte=ctx.since) | Q(account__in=changed.values("pk"))
            )
            accounts = changed
        rows = []

        def window(occasion):
            basis = datetime.combine(occasion - timedelta(days=1), time(0), tzinfo=tz)
            due = datetime.combine(occasion + timedelta(days=1), time(0), tzinfo=tz)
            return basis, due

        if "birthday" in self.occasions(rule):
            q, on = self._month_day_q("birthday", days)
            for pk, account_id, owner_id, born in contacts.filter(
                q, account__in=scope(rule).values("pk")
            ).values_list("pk", "account_id", "account__owner_id", "birthday"):
                occasion = on[(born.month, born.day)]
                basis, due = window(occasion)
                rows.append({
                    "account_id": account_id, "contact_id": pk, "owner_id": owner_id,
                    "basis_at": basis, "due_at": due,
                    "key": f"{rule.pk}:c{pk}:{occasion.isoformat()}:{owner_id}",
                })  # fmt: skip
        if "anniversary" in self.occasions(rule):
            q, on = self._month_day_q("founded_on", days)
            for pk, owner_id, founded in accounts.filter(q).values_list(
                "pk", "owner_id", "founded_on"
            ):
                occasion = on[(founded.month, founded.day)]
                if founded.year >= occasion.year:
                    continue
                basis, due = window(occasion)
                rows.append({
                    "account_id": pk, "owner_id": owner_id, "basis_at": basis, "due_at": due,
                    "key": f"{rule.pk}:a{pk}:{occasion.isoformat()}:{owner_id}",
                })  # fmt: skip
        if rows:
            known = set(
                Breach.objects.filter(key__in=[r["key"] for r in rows]).values_list(
                    "key", flat=True
                )
            )
            rows = [r for r in rows if r["key"] not in known]
        return rows

    def more_resolutions(self, rule, ctx, subject):
        return [(Resolution.EXPIRED, Q(due_at__lt=ctx.now - GREETING_GRACE))]


def _pieces_case(pieces):
    """``CASE`` over contiguous pieces of ``_basis``: nested halves, so that a row meets
    a dozen tests rather than hundreds."""
    if len(pieces) == 1:
        piece = pieces[0]
        if piece.shift is not None:
            return _plus(F("_basis"), piece.shift)
        return Value(piece.fixed, output_field=DateTimeField())
    middle = len(pieces) // 2
    return Case(
        When(_basis__lt=pieces[middle].start, then=_pieces_case(pieces[:middle])),
        default=_pieces_case(pieces[middle:]),
        output_field=DateTimeField(),
    )


def _month_day_in(expression, values) -> Q:
    """``expression IN values`` as a filter condition."""
    from django.db.models.lookups import In

    return Q(In(expression, values))


def _plus(expression, delta: timedelta):
    return ExpressionWrapper(expression + Value(delta), output_field=DateTimeField())


def _insert_select(qs, rule, subject: Subject, due, run) -> None:
    """``INSERT INTO breach … SELECT`` the rows of ``qs`` (annotated with ``_basis``),
    the key (rule:record:clock start:owner) built by the database; keys already stored
    are skipped (``ON CONFLICT DO NOTHING``)."""
    key = Concat(
        Value(f"{rule.pk}:{subject.letter}"), Cast("pk", CharField()), Value(":"),
        Cast("_basis", CharField()), Value(":"), Cast("owner_id", CharField()),
        output_field=CharField(),
    )  # fmt: skip
    select = (
        qs.order_by()
        .annotate(
            _rule=Value(rule.pk, output_field=BigIntegerField()),
            _run=Value(run.pk, output_field=BigIntegerField()),
            _due=due,
            _opened=Value(run.now, output_field=DateTimeField()),
            _resolution=Value("", output_field=CharField()),
            _key=key,
        )
        .values_list("_rule", "_run", "owner_id", "pk", "_due", "_basis", "_opened",
                     "_resolution", "_key")
    )  # fmt: skip
    try:
        sql, params = select.query.sql_with_params()
    except EmptyResultSet:  # a condition that matches nothing (no stage has a limit)
        return
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(c) for c in ("rule_id", "sweep_run_id", "owner_id", subject.column, "due_at",
                           "basis_at", "opened_at", "resolution", "key")
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(Breach._meta.db_table)} ({columns}) {sql} ON CONFLICT DO NOTHING",
            params,
        )


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


class PaymentOverdue(Evaluator):
    """An account's customer pays its instalments on time: no payment-plan line of its
    signed contracts past its due date (plus N days' grace) and not fully covered by the
    payments (issue 8, "overdue receivables fed to the follow-up rules").

    Which lines are overdue is loudou.sales' answer (queries.overdue_plans over the
    ``covered`` figures the sales services keep: receivable = amount − payments, partial
    payments count, refunds negative, docs/sales.md), never worked out again here. The
    clock starts on the earliest overdue line's due date (midnight in the company's time
    zone); the breach is due when that line became overdue: the start of the day after
    its due date, N days later with a grace. It is met once nothing is overdue any more
    (a payment recorded, the plan or the contract changed).

    Payments and plan changes leave no trace the incremental run could follow (no event,
    no ``updated_at`` on the account), so every run reads all the overdue lines (a range
    of the partial index of uncovered lines, plan_uncovered_idx) and settles all the
    rule's open breaches: the next sweep at the latest sees a payment.
    """

    requirement = Requirement.PAYMENT_OVERDUE
    contact_based = False
    applies_to = (AppliesTo.ACCOUNT,)
    checks_everything = True

    @staticmethod
    def grace(rule) -> int:
        return rule.amount or 0

    def overdue_lines(self, rule, ctx) -> QuerySet:
        """Plan lines overdue by more than the grace at ``ctx.now``: due before the local
        day ``today − grace``."""
        today = ctx.now.astimezone(ctx.calendar.zone()).date()
        cutoff = today - timedelta(days=self.grace(rule))
        return overdue_plans(today=cutoff).select_related(None).order_by()

    def still_due(self, rule, ctx):
        lines = self.overdue_lines(rule, ctx)
        return scope(rule).filter(pk__in=lines.values("contract__account_id"))

    def candidates(self, rule, ctx):
        """The accounts in scope with an overdue line and no open breach of the rule, as
        breach rows: one query whatever the number of accounts. An account that had a
        breach of this rule with the same owner before (settled, then overdue again: a
        refund, a new plan line) gets a key of its own for this new breach."""
        subject = self.subject(rule)
        tz = ctx.calendar.zone()
        lines = self.overdue_lines(rule, ctx)
        first = lines.filter(contract__account_id=OuterRef("pk")).order_by("due_date")
        earlier = Breach.objects.filter(
            rule=rule, account_id=OuterRef("pk"), owner_id=OuterRef("owner_id"),
            resolved_at__isnull=False,
        )  # fmt: skip
        qs = without_open_breach(self.still_due(rule, ctx), rule, subject).annotate(
            _first=Subquery(first.values("due_date")[:1]), _earlier=Exists(earlier)
        )
        after = timedelta(days=1 + self.grace(rule))
        rows = []
        for pk, owner_id, first_due, again in qs.order_by("pk").values_list(
            "pk", "owner_id", "_first", "_earlier"
        ):
            basis = datetime.combine(first_due, time(0), tzinfo=tz)
            due = datetime.combine(first_due + after, time(0), tzinfo=tz)
            key = breach_key(rule, subject, pk, basis, owner_id)
            if again:
                key = f"{key}:{stamp(ctx.now)}"
            rows.append({"account_id": pk, "owner_id": owner_id, "basis_at": basis,
                         "due_at": due, "key": key})  # fmt: skip
        return rows

    def resolutions(self, rule, ctx):
        ref = OuterRef("account_id")
        overdue = self.overdue_lines(rule, ctx).filter(contract__account_id=ref)
        owned = Account.objects.filter(pk=ref, owner_id=OuterRef("owner_id"))
        return [
            (Resolution.MET, ~Q(Exists(overdue))),
            (Resolution.OWNER_CHANGED, ~Q(Exists(owned))),
            (Resolution.OUT_OF_SCOPE, ~Q(Exists(scope(rule).filter(pk=ref)))),
        ]

    def met_moment(self, subject, now):
        """Met when the sweep saw it paid (a payment has a day, not a moment)."""
        return Value(now, output_field=DateTimeField())


class ContactsBeforeLost(Evaluator):
    """Checked when someone closes an opportunity as lost (services.check_before_lose),
    not by the sweep."""

    requirement = Requirement.CONTACTS_BEFORE_LOST
    sweeps = False
    contact_based = False
    applies_to = (AppliesTo.OPPORTUNITY,)


class TaskOnOutcome(Evaluator):
    """Tasks created the moment an activity with the outcome is logged
    (services.on_activity_logged); the sweep only catches up activities written in bulk."""

    requirement = Requirement.TASK_ON_OUTCOME
    sweeps = False
    contact_based = False
    applies_to = (AppliesTo.ANY, AppliesTo.LEAD, AppliesTo.ACCOUNT, AppliesTo.OPPORTUNITY)


EVALUATORS: dict[str, Evaluator] = {
    e.requirement: e
    for e in (
        FirstContact(), ContactEvery(), Revisit(), Stale(), Greeting(), PaymentOverdue(),
        ContactsBeforeLost(), TaskOnOutcome(),
    )
}  # fmt: skip

# Requirements met by a contact with the record (the activity listener settles them).
CONTACT_BASED = tuple(r for r, e in EVALUATORS.items() if e.sweeps and e.contact_based)


def met_at(subject: Subject, now):
    """When a met breach was met: the record's last contact (so that a breach met
    before it was due is not late), at the latest ``now``."""
    last = subject.state.objects.filter(pk=OuterRef(subject.column)).values("last_contact_at")
    return Least(Value(now, output_field=DateTimeField()), Subquery(last[:1]))


def resolve(rule, ctx: Context) -> dict[str, int]:
    """Settle the rule's open breaches that are met or no longer apply; one UPDATE per
    resolution code. An incremental run looks only at what can have changed since the
    previous run: "met" on the records of the activities written since, the other
    reasons on records saved since (a close, a move, a new owner); the hourly run also
    at the open breaches of its slice of records (``ctx.recheck``), whatever changed. A
    run without ``since`` (exhaustive, or a rule whose fingerprint changed) looks at every
    open breach, and so does every run of a rule that ``checks_everything``."""
    evaluator = EVALUATORS[rule.requirement]
    subject = evaluator.subject(rule)
    rows = Breach.objects.open().filter(rule=rule)
    since = None if evaluator.checks_everything else ctx.since
    # the open breaches of this run's slice of records, whatever changed: an index range
    # on the breach's record column, in UPDATEs of their own (an OR with the subquery of
    # what changed would read all the rule's open breaches)
    recheck = ctx.slice_q(subject, subject.column) if since is not None else None
    counts = {}
    for code, condition in evaluator.resolutions(rule, ctx):
        narrowed = [rows]
        if since is not None and code == Resolution.MET:
            touched = ctx.changed.filter(**{f"{subject.column}__isnull": False})
            narrowed = [rows.filter(**{f"{subject.column}__in": touched.values(subject.column)})]
        elif since is not None and code != Resolution.EXPIRED:
            # from the records' side: the few saved since, not every open breach's record
            # (read once per run for all rules)
            saved = subject.model.objects.filter(ctx.saved(subject, since, recheck=False))
            narrowed = [rows.filter(**{f"{subject.column}__in": saved.values("pk")})]
        if recheck is not None and code != Resolution.EXPIRED:
            narrowed.append(rows.filter(recheck))
        when = evaluator.met_moment(subject, ctx.now) if code == Resolution.MET else ctx.now
        n = sum(qs.filter(condition).update(resolved_at=when, resolution=code) for qs in narrowed)
        if n:
            counts[code] = n
    return counts
