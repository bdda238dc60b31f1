"""Importing opportunities with their stage history.

Two passes over the opportunity file (streamed both times): the first learns the
pipelines and stages the file uses (so that a missing pipeline can be created with its
stages ordered by probability, then by first appearance, and won/lost recognised by name
or by IsWon/IsClosed) and counts the rows; the second validates and writes. A stage
history file (Salesforce OpportunityHistory, native) grouped by deal in the deal file's
order is read beside the first pass (spool.GroupedHistory); in any other order it is
spooled to an indexed temporary file first (spool.HistorySpool); HubSpot's "Date entered
<stage>" columns are events of their own row. Each opportunity's StageChange rows come
from :func:`history.rebuild`, so the funnel of an imported team is the one the services
would have recorded.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, time
from decimal import Decimal
from operator import itemgetter

from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.core.money import default_currency
from loudou.customers.models import Account
from loudou.pipeline.choices import StageKind, Status
from loudou.pipeline.models import LostReason, Opportunity, Pipeline, Stage, StageChange
from loudou.pipeline.services import (
    best_grades,
    ensure_lost_reasons,
    grade_codes,
    refresh_account_grades,
    set_account_grades,
)
from loudou.pipeline.summaries import rebuild_summaries

from . import ahead, bulk, layouts
from .bulk import micros
from .engine import _transaction_per_batch, open_mapped
from .history import HUNDRED, ZERO, StageInfo, rebuild
from .importers import PENDING, AccountImporter, Importer, _source, _text, normalize_company
from .models import OnDuplicate
from .spool import FLUSH, GroupedHistory, HistorySpool, NotGrouped
from .values import (
    BadValue,
    memoized,
    micros_parser,
    parse_amount,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_percent,
    text,
)

WON_WORDS = re.compile(r"\bwon\b|赢单|成交|已成交|签约成功|^成功$|^赢$", re.IGNORECASE)
LOST_WORDS = re.compile(r"\blost\b|输单|丢单|失败|^无效$|已输", re.IGNORECASE)
STATUS_WORDS = {
    "won": Status.WON, "赢单": Status.WON, "成交": Status.WON, "已成交": Status.WON,
    "lost": Status.LOST, "输单": Status.LOST, "丢单": Status.LOST, "失败": Status.LOST,
    "open": Status.OPEN, "进行中": Status.OPEN, "跟进中": Status.OPEN, "": None,
}  # fmt: skip
ACCOUNT_CACHE = 50_000
# History events per block handed over by the process that parses them (_read_history).
HISTORY_BLOCK = 5_000
# A file naming more owners than this is not prepared ahead (_resolve_owners).
OWNERS_AHEAD = 10_000
# The rows _build makes, in this column order (bulk.insert_tuples); created_by_id and
# version are constants of the INSERT, and so are the columns the file lacks (opp_pick).
OPP_COLUMNS = (
    "id", "name", "account_id", "owner_id", "pipeline_id", "stage_id",
    "furthest_stage_id", "status", "amount", "currency", "probability", "probability_manual",
    "expected_close_date", "source", "next_step", "description", "lost_reason_id",
    "lost_note", "stage_entered_at", "closed_at", "created_at", "updated_at", "stays_seconds",
)  # fmt: skip
OPP_ADAPTED = ("stage_entered_at", "closed_at", "created_at", "updated_at", "expected_close_date")
# A built deal (_build) is OPP_COLUMNS without the id and the account: where the grades'
# fold (_write) reads its stage and status.
_DEAL_STATUS_STAGE = itemgetter(OPP_COLUMNS.index("status") - 2, OPP_COLUMNS.index("stage_id") - 2)
# What write_prepared reads of a parsed row, the rest being in its built deal: all that
# goes back from the preparing process (the whole dicts were a third of a batch's pickle).
WRITE_KEYS = ("account_external_id", "account", "company", "owner_id", "name")
UPDATE_KEYS = ("amount", "expected_close_date", "next_step", "description")  # when updating
CHANGE_COLUMNS = (  # and the note, "" (before(): change_columns)
    "id", "opportunity_id", "kind", "from_stage_id", "to_stage_id", "changed_at",
    "changed_by_id", "amount", "probability", "stay_seconds",
)  # fmt: skip
# The columns the funnel summaries' recount (rebuild_summaries) groups and joins by,
# analysed before it after a large load: a table filled from empty has no statistics of
# them, and the planner, guessing 10,000 groups where there are a few dozen, kept the
# recount's aggregates off parallel plans (100,000 deals: 0.80 → 0.51 s, the ANALYZE
# 0.13 s; the tables are then also planned right for their first readers).
SUMMARY_KEYS = {
    Opportunity: ["pipeline", "owner", "furthest_stage", "status", "stage", "source"],
    StageChange: ["from_stage", "stay_seconds", "opportunity"],
}
DEFAULT_PIPELINE = {"salesforce": "Salesforce", "hubspot": "HubSpot", "pipedrive": "Pipedrive",
                    "zoho": "Zoho CRM", "odoo": "Odoo"}  # fmt: skip


def terminal_kind(name: str) -> str | None:
    """Won or lost when a stage's name says so ("Closed Won", "赢单", "输单")."""
    if WON_WORDS.search(name):
        return StageKind.WON
    if LOST_WORDS.search(name):
        return StageKind.LOST
    return None


def parse_status(value) -> str | None:
    word = text(value).lower()
    if word in STATUS_WORDS:
        return STATUS_WORDS[word]
    if word in ("deleted", "已删除"):
        raise BadValue(_("deleted deal"))
    raise BadValue(_("not a status (open, won or lost)"))


def _day_start(day):
    return timezone.make_aware(datetime.combine(day, time()))


class StageSeen:
    """What the first pass learned of one stage name."""

    __slots__ = ("count", "first", "history_prob", "order", "rows", "total", "won", "lost")

    def __init__(self, first):
        self.first, self.order = first, None
        self.total, self.count = Decimal(0), 0  # the probabilities the files give
        self.history_prob = False
        self.rows = self.won = self.lost = 0

    def add_probability(self, value, times: int = 1) -> None:
        self.total += Decimal(value) * times
        self.count += times

    @property
    def probability(self):
        return self.total / self.count if self.count else None


class PipelineMap:
    """A pipeline and how the file's stage names map to its stages."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.memo: dict[str, StageInfo | None] = {}
        self.stages = list(pipeline.stages.all().order_by("position", "pk"))
        self.by_name = {}
        for s in self.stages:
            for n in (s.name, s.name_en, s.code):
                if n:
                    self.by_name.setdefault(n.casefold(), s)
        self.info = {s.pk: StageInfo(s.pk, s.kind, s.position, s.default_probability)
                     for s in self.stages}  # fmt: skip
        opens = [s for s in self.stages if s.kind == StageKind.OPEN and not s.is_archived]
        self.first_open = self.info[opens[0].pk] if opens else None
        won = pipeline.terminal(StageKind.WON)
        lost = pipeline.terminal(StageKind.LOST)
        self.won = self.info[won.pk] if won else None
        self.lost = self.info[lost.pk] if lost else None

    def stage(self, name: str) -> StageInfo | None:
        hit = self.memo.get(name)
        if hit is None and name not in self.memo:
            hit = self.memo[name] = self._stage(name)
        return hit

    def _stage(self, name: str) -> StageInfo | None:
        found = self.by_name.get(name.casefold())
        if found is not None:
            return self.info[found.pk]
        kind = terminal_kind(name)
        if kind == StageKind.WON:
            return self.won
        if kind == StageKind.LOST:
            return self.lost
        return None


class OpportunityImporter(Importer):
    kind, file = "opportunities", "opportunities"
    background_copy = True
    prepare_ahead = True
    parsers = {
        "external_id": lambda v: text(v)[:100], "name": _text(200), "account": _text(200),
        "account_external_id": lambda v: text(v)[:100], "company": _text(200),
        "amount": memoized(parse_amount), "currency": lambda v: text(v).upper()[:3],
        "pipeline": _text(100), "stage": _text(100), "status": memoized(parse_status),
        "is_won": memoized(parse_bool), "is_closed": memoized(parse_bool),
        "probability": memoized(parse_percent),
        # the deal's moments as microseconds since the epoch (micros_parser: what
        # parse_datetime reads, without a datetime per cell; each import its own, see
        # before())
        "expected_close_date": parse_date, "owner": _text(), "created_at": micros_parser(),
        "closed_at": micros_parser(), "won_at": micros_parser(), "lost_at": micros_parser(),
        "source": _source, "next_step": _text(300), "description": _text(),
        "lost_reason": lambda v: text(v)[:300],
    }  # fmt: skip

    def run(self) -> None:
        job, ctx = self.ctx.job, self.ctx
        if job.accounts_file:
            accounts = AccountImporter(ctx, job.accounts_file.path, main=False)
            if ctx.resume_after:  # already imported by the first run: only map their ids
                accounts.force_mode = OnDuplicate.SKIP
                accounts.silent = True
            accounts.run()
        self.history = None
        self.history_file = None
        if job.history_file:  # its columns are checked first; its rows beside the deals
            path = job.history_file.path
            table, mapping = open_mapped(ctx, path, "history", "history")
            self.ctx.job.options = {**self.ctx.job.options, "history_layout": mapping.layout}
            self.history_file = (path, table)
        try:
            self.touched: set[int] = set()
            # The grades of the accounts this run touches, from its own deals (in one
            # transaction; see loaded()).
            self.grades = None if self.ctx.options.skip_bad_rows else {}
            self.fresh_changes: list[list[int]] = []  # this run's StageChange id ranges
            super().run()
        finally:
            if self.history is not None:
                self.history.close()
        with transaction.atomic():
            refresh_account_grades(self.touched)  # one pass: an account recurs in batches
            if self.written >= bulk.ANALYZE_FROM:
                bulk.analyze(SUMMARY_KEYS)
            # The funnel summaries (pipeline.summaries): the new history is found past
            # their state; the deals an update changed are named. The deals this run
            # inserted carry their stays_seconds already (_build): their history rows
            # do not make them recomputed.
            rebuild_summaries(sorted(self.updated), fresh_changes=self.fresh_changes)

    def indexes_kept(self) -> dict:
        return {Account: ["name_key"], Opportunity: ["account"], StageChange: []}

    def loaded(self) -> None:
        """The grades of the accounts this run created, from the deals it wrote: in its
        one transaction those are all their deals (an update never matches a deal this
        run created), so none is read back; stored before the accounts' indexes are built
        again, and only where there is one (a new account has none). The accounts that
        were there before are graded after, by a query (run)."""
        if self.grades is None:
            return
        created = self.ctx.created.get(Account._meta.label_lower, [])
        fresh = {pk: grade for pk, grade in self.grades.items() if bulk.in_ranges(created, pk)}
        set_account_grades(fresh)
        self.touched = {pk for pk in self.touched if not bulk.in_ranges(created, pk)}

    # --- pass 0: the history file ---------------------------------------------------

    def _history_events(self, table, error):
        """The history file's valid events — (opp, at in microseconds since the epoch,
        stage, amount as text or None, probability or None) — in file order; each bad
        cell given to ``error(row, column, reason, "history")`` (the report's, or one
        that holds them back or ignores them)."""
        mapping = layouts.detect("history", table.keys, self.ctx.options.format, table.headers)
        cols = mapping.columns
        index = {name: i for i, name in cols.items()}
        headers = {name: table.headers[i] for i, name in cols.items()}
        percent = memoized(parse_percent)
        moment = micros_parser()
        days, rests, day_micros = moment.days, moment.rests, bulk.DAY_MICROS
        probabilities = {}  # cell → its valid probability (a few distinct cells)
        i_opp, i_stage, i_at = index["opportunity"], index["stage"], index["changed_at"]
        i_amount, i_prob = index.get("amount"), index.get("probability")
        for number, cells in table.rows:
            opp, stage, at = cells[i_opp], cells[i_stage], cells[i_at]
            opp = opp.strip() if type(opp) is str else text(opp)
            stage = stage.strip() if type(stage) is str else text(stage)
            # moment(at), its usual case inline: a remembered date and time of day
            if (
                type(at) is str and (day := days.get(at[:10])) is not None
                and (rest := rests.get(at[10:])) is not None
            ):  # fmt: skip
                at = day * day_micros + rest
            else:
                try:
                    at = moment(at)
                except BadValue as bad:
                    error(number, headers["changed_at"], bad.reason, "history")
                    continue
            ok = True
            amount = None
            if i_amount is not None:
                try:
                    amount = parse_amount(cells[i_amount])
                except BadValue as bad:
                    error(number, headers["amount"], bad.reason, "history")
                    ok = False
            if not (opp and stage and at is not None):
                for name, value in (("opportunity", opp), ("stage", stage), ("changed_at", at)):
                    if value is None or value == "":
                        error(number, headers[name], _("required"), "history")
                ok = False
            prob = None
            if i_prob is not None:
                cell = cells[i_prob]
                prob = probabilities.get(cell) if type(cell) is str else None
                if prob is None:
                    try:
                        prob = percent(cell)
                    except BadValue as bad:
                        error(number, headers["probability"], bad.reason, "history")
                        ok = False
                    else:
                        if prob is not None and type(cell) is str and len(probabilities) < 4096:
                            probabilities[cell] = prob
            if ok:
                yield opp, at, stage, None if amount is None else str(amount), prob

    def _read_history(self, error):
        """The history file's valid events (:meth:`_history_events`), parsed in a forked
        process where one may help (ahead.possible) while this one groups or spools them
        and reads the deal file; each bad cell given to ``error``, in file order."""
        table = self._reopen_history()
        if ahead.possible():

            def produce():
                block, bad = [], []
                for event in self._history_events(table, lambda *args: bad.append(args)):
                    block.append(event)
                    if len(block) >= HISTORY_BLOCK:
                        yield block, list(bad)
                        block = []
                        bad.clear()
                yield block, bad

            source = ahead.start(produce)
            if source is not None:
                return self._events_from(source, error)
        return self._history_events(table, error)

    @staticmethod
    def _events_from(source, error):
        with source:  # the child stopped when the reading stops (NotGrouped)
            for block, bad in source:
                for args in bad:
                    error(*args)
                yield from block

    def _reopen_history(self):
        path, table = self.history_file
        if table is None:
            table, _mapping = open_mapped(self.ctx, path, "history", "history")
        self.history_file = (path, None)  # each reading opens the file afresh
        return table

    def _grouped_history(self) -> GroupedHistory:
        """The history file read beside the deal file (no spool): its errors are held
        back until the whole first pass shows the file grouped in the deal file's order
        (the spool reports them itself otherwise)."""
        held = []

        def read():
            return self._read_history(lambda *bad: held.append(bad))

        history = GroupedHistory(read)
        history.held = held
        return history

    def _spooled_history(self) -> HistorySpool:
        """The history file spooled to disk (any order)."""
        spool = HistorySpool()
        try:
            events, probabilities = [], []  # written to the spool FLUSH at a time
            events_in = self._read_history(self.ctx.report.error)
            for opp, at, stage, amount, prob in events_in:
                events.append((opp, at, stage, amount))
                if prob is not None:
                    probabilities.append((stage, prob))
                if len(events) >= FLUSH:
                    spool.extend(events, probabilities)
                    events, probabilities = [], []
            spool.extend(events, probabilities)
            spool.finish()
        except BaseException:
            spool.close()
            raise
        return spool

    # --- pass 1: pipelines and stages ---------------------------------------------------

    def before(self, table, mapping) -> None:
        ctx = self.ctx
        ensure_lost_reasons()
        self.reasons = {}
        for pk, name, name_en in LostReason.objects.values_list("pk", "name", "name_en"):
            for n in (name, name_en):
                if n:
                    self.reasons.setdefault(n.casefold(), pk)
        self.other_reason = self.reasons.get("其他") or self.reasons.get("other") or pk
        self.currency = default_currency()
        # This import's own memos: dates depend on the active time zone, and the
        # moments' memo (microseconds) goes with the import.
        self.parsers = {
            **self.parsers, "expected_close_date": memoized(parse_date),
            **{name: micros_parser() for name in ("created_at", "closed_at", "won_at",
                                                  "lost_at")},
        }  # fmt: skip
        self.date_entered = mapping.date_entered
        cols = {name: i for i, name in mapping.columns.items()}
        self.cols = cols
        layout_default = DEFAULT_PIPELINE.get(mapping.layout, _("Imported opportunities"))
        self.default_pipeline = ctx.options.pipeline or layout_default
        seen: dict[str, dict[str, StageSeen]] = defaultdict(dict)
        many_pipelines = "pipeline" in cols and not ctx.options.pipeline
        counter = 0
        rows = 0

        def note(pname, sname, prob=None, won=False, lost=False, row=True):
            nonlocal counter
            stages = seen[pname]
            if sname not in stages:
                counter += 1
                stages[sname] = StageSeen(counter)
            entry = stages[sname]
            if prob is not None:
                entry.add_probability(prob)
            if row:
                entry.rows += 1
                entry.won += won
                entry.lost += lost

        percent, flag = self.parsers["probability"], self.parsers["is_won"]
        status_of = self.parsers["status"]
        # A row's pipeline: the one the import was given, else its pipeline cell, else
        # the default.
        default = self.default_pipeline
        i_pipeline = None if ctx.options.pipeline else cols.get("pipeline")
        i_stage = cols["stage"]
        i_owner = cols.get("owner")
        owners: dict = {}  # the owner cells met, in file order (OWNERS_AHEAD + 1 at most)

        def read_deals(history):
            nonlocal counter, rows
            seen.clear()
            owners.clear()
            counter = rows = 0
            first_pass = table.reopen()  # a workbook's sheet is not loaded again
            i_ext = cols.get("external_id") if history is not None else None
            for _number, cells in first_pass.rows:
                rows += 1
                if i_owner is not None and len(owners) <= OWNERS_AHEAD:
                    owners[cells[i_owner]] = None
                pname = default if i_pipeline is None else text(cells[i_pipeline]) or default
                sname = text(cells[i_stage])
                if i_ext is not None:
                    ext = text(cells[i_ext])
                    if ext:  # where the deal's history counts: its pipeline if it has a stage
                        history.deal(ext, pname if many_pipelines and sname else None)
                if not sname:
                    continue
                try:  # (the second pass's memoized parsers: the cells repeat)
                    prob = percent(cells[cols["probability"]]) if "probability" in cols \
                        else None  # fmt: skip
                    closed = flag(cells[cols["is_closed"]]) if "is_closed" in cols else None
                    won = flag(cells[cols["is_won"]]) if "is_won" in cols else None
                    status = status_of(cells[cols["status"]]) if "status" in cols else None
                except BadValue:
                    prob = closed = won = status = None  # reported in the second pass
                if closed or status in (Status.WON, Status.LOST):
                    prob = None  # a closed deal's 0 or 100 says nothing of its stage's rate
                note(pname, sname, prob, bool(closed and won), bool(closed and not won))
                for stage_name in self.date_entered.values():
                    note(pname, stage_name, row=False)

        if self.history_file is None:
            read_deals(None)
        else:
            # A history file grouped by deal in the deal file's order is read beside the
            # deal file; any other is spooled to disk first.
            self.history = self._grouped_history()
            try:
                self.history.start(self.default_pipeline)
                read_deals(self.history)
                self.history.finish()
            except NotGrouped:
                self.history.close()
                self.history = None
                self.history = self._spooled_history()
                read_deals(self.history)
            else:
                for bad in self.history.held:
                    ctx.report.error(*bad)
        # History stages: order them by where they come in each deal's own sequence.
        if self.history:
            for pname, sname, position, _first in self.history.stage_positions(
                self.default_pipeline
            ):
                note(pname, sname, row=False)
                entry = seen[pname][sname]
                total, count = self.history.probs.get(sname, (0, 0))
                if count and not entry.history_prob:  # once per stage and pipeline
                    entry.total += total
                    entry.count += count
                    entry.history_prob = True
                entry.order = position if entry.order is None else min(entry.order, position)
        if not ctx.resume_after:
            ctx.job.total_rows = rows
        self.pipelines = {name: self._pipeline(name, stages) for name, stages in seen.items()}
        self.owners_known = len(owners) <= OWNERS_AHEAD
        if self.owners_known:
            self._resolve_owners(owners)
        self.account_cache: dict[str, int] = {}
        self.company_keys: dict[str, str] = {}
        self.batch_history: dict[str, list] = {}
        self.micros_param = bulk.micros_param()
        self.dates: dict = {}
        self.now_micros = micros(ctx.now)
        # Numbers as the database takes them (bulk.decimal_param): on SQLite the text its
        # Decimal adapter binds, on PostgreSQL the numeric's binary form; made here once
        # per deal instead of by the driver for each value, the stages' probabilities
        # (they live as long as the import) once.
        self.decimal_param = bulk.decimal_param()
        self.known_decimals = {
            id(value): self.decimal_param(value)
            for value in (HUNDRED, ZERO, *(info.probability for pmap in self.pipelines.values()
                                           for info in pmap.info.values()))
        }  # fmt: skip
        # The deal INSERT's constant columns: the actor, the version, and the columns
        # the file does not have (their empty text; the default currency).
        constants = {"created_by_id": ctx.actor.pk, "version": 1}
        for name in ("currency", "source", "next_step", "description"):
            if name not in self.mapped:
                constants[name] = self.currency if name == "currency" else ""
        keep = [i for i, name in enumerate(OPP_COLUMNS) if name not in constants]
        self.opp_constants = constants
        # The stage changes' constants (their empty note): SQLite writes them into the
        # statement; on PostgreSQL they go in the tuple _write makes anyway (whole_rows),
        # not in a second tuple per row (400,000 of them).
        self.change_columns, self.change_constants = CHANGE_COLUMNS, {"note": ""}
        self.change_tail = ()
        if connection.vendor == "postgresql":
            self.change_columns, self.change_tail = bulk.whole_rows(
                StageChange, CHANGE_COLUMNS, self.change_constants
            )
            self.change_constants = None
        self.opp_columns = tuple(OPP_COLUMNS[i] for i in keep)
        self.opp_pick = itemgetter(*keep)
        self.grade_codes = grade_codes()  # the deals' grades (_write)

    def _resolve_owners(self, cells) -> None:
        """Resolve every owner the file names now, in file order (so placeholder users
        come as the rows would make them): the batches then read the resolver's cache
        only, and can be prepared without the database (ahead.Ahead). Each row still
        gets its own error for an owner that cannot be."""
        parse, resolve = self.parsers["owner"], self.ctx.owners.resolve
        with _transaction_per_batch(self.ctx):  # placeholders and the job's record of them
            for cell in cells:
                try:
                    resolve(parse(cell))
                except BadValue:
                    pass  # kept by the resolver, told with each row
            self.ctx.checkpoint(None)

    def may_prepare_ahead(self) -> bool:
        return self.owners_known

    def in_child(self) -> None:
        if isinstance(self.history, HistorySpool):
            self.history.reopen()

    def _pipeline(self, name: str, stages: dict[str, StageSeen]) -> PipelineMap:
        existing = (
            Pipeline.objects.filter(Q(name__iexact=name) | Q(name_en__iexact=name))
            .filter(is_archived=False)
            .order_by("position", "pk")
            .first()
        )
        if existing is not None:
            return PipelineMap(existing)
        opens, won_names, lost_names = [], [], []
        for sname, entry in stages.items():
            kind = terminal_kind(sname)
            if kind is None and entry.rows and entry.won == entry.rows:
                kind = StageKind.WON
            elif kind is None and entry.rows and entry.lost == entry.rows:
                kind = StageKind.LOST
            if kind == StageKind.WON:
                won_names.append(sname)
            elif kind == StageKind.LOST:
                lost_names.append(sname)
            else:
                opens.append((sname, entry))

        def order(item):
            _name, entry = item
            prob = entry.probability
            rank = entry.order if entry.order is not None else 10**6
            return (prob is None, prob or 0, rank, entry.first)

        opens.sort(key=order)
        if not opens:  # a file of closed deals only: they were closed from a first stage
            opens = [("新建", StageSeen(0))]
        position = (Pipeline.objects.aggregate(m=Max("position"))["m"] or 0) + 1
        pipeline = Pipeline.objects.create(
            name=name[:100], position=position, checklist_mode="advisory"
        )
        created = []
        for i, (sname, entry) in enumerate(opens, start=1):
            prob = entry.probability if entry.count else Decimal(0)
            created.append(
                Stage(
                    pipeline=pipeline,
                    name=sname[:100],
                    position=i * 10,
                    default_probability=Decimal(prob).quantize(Decimal("0.01")),
                )
            )
        last = len(opens) * 10
        created.append(
            Stage(
                pipeline=pipeline,
                name=(won_names or ["成交"])[0][:100],
                name_en="" if won_names else "Won",
                kind=StageKind.WON,
                position=last + 10,
                default_probability=Decimal(100),
                code="won",
            )
        )
        created.append(
            Stage(
                pipeline=pipeline,
                name=(lost_names or ["输单"])[0][:100],
                name_en="" if lost_names else "Lost",
                kind=StageKind.LOST,
                position=last + 20,
                default_probability=Decimal(0),
                code="lost",
            )
        )
        Stage.objects.bulk_create(created)  # fmt: skip
        self.ctx.record_created(Pipeline, [pipeline.pk])
        self.ctx.record_created(Stage, [s.pk for s in pipeline.stages.all()])
        self.ctx.report.add("pipelines_new")
        return PipelineMap(pipeline)

    # --- pass 2: the rows ---------------------------------------------------------------

    def prepare(self, batch) -> tuple[list, dict]:
        """The batch's valid rows, (number, data), and each one's deal and history built
        (``_build``): what needs no database (done ahead in a second process where it
        may, see ahead.Ahead)."""
        ctx = self.ctx
        parsed = []
        for number, row, cells in batch:
            data = self.parse_row(number, row, self.parsers)
            entered = []
            for index, sname in self.date_entered.items():
                try:
                    at = parse_datetime(cells[index])
                except BadValue as error:
                    ctx.report.error(number, self.reader.table.headers[index], error.reason,
                                     self.file)  # fmt: skip
                    self.row_bad = True
                    continue
                if at is not None:
                    entered.append((at, sname))
            self.required(number, data, "name", "stage")
            if not (data.get("account") or data.get("company") or data.get("account_external_id")):
                if all(k in data or k not in self.mapped for k in ("account", "company")):
                    self.bad(number, "account", _("required"))
            self.owner(number, data)
            if self.row_bad:
                continue
            data["_entered"] = entered
            parsed.append((number, data))
        # Each row's deal and history are built before the database is read: with the
        # background writer (PostgreSQL) the previous batch's COPYs run meanwhile. A row's
        # problems are reported only if it is written (a duplicate is counted, not
        # checked), as when it was built after the duplicate lookup.
        if self.history:
            self.batch_history = self.history.take(d.get("external_id") for _n, d in parsed)
        built = {}
        for number, data in parsed:
            problems = []
            built[number] = (self._build(data, problems), problems)
        keys = WRITE_KEYS + UPDATE_KEYS if self.mode == OnDuplicate.UPDATE else WRITE_KEYS
        return [(n, {k: d[k] for k in keys if k in d}) for n, d in parsed], built

    def write_prepared(self, prepared) -> None:
        parsed, built = prepared
        ctx = self.ctx
        self.sync()  # the lookups must see the earlier batches' rows
        self._resolve_accounts(parsed)
        keys = {d["account_id"] for _n, d in parsed if d.get("account_id")}
        existing = {}
        for pk, account_id, name in sorted(
            bulk.lookup(Opportunity, ("id", "account_id", "name"), "account", keys)
        ):
            existing.setdefault((account_id, name.casefold()), pk)
        mode = self.mode
        created = ctx.created.get("pipeline.opportunity", [])
        opps, updates, seen = [], {}, {}
        for number, data in parsed:
            if not data.get("account_id"):
                continue
            key = (data["account_id"], data["name"].casefold())
            match = existing.get(key) or seen.get(key)
            if match and mode != OnDuplicate.CREATE:
                if (
                    mode == OnDuplicate.UPDATE and key in existing and key not in seen
                    and match not in self.updated and not bulk.in_ranges(created, match)
                ):  # fmt: skip
                    updates[match] = {k: data.get(k) for k in UPDATE_KEYS}
                    self.updated.add(match)
                    seen[key] = match
                else:
                    self.count("duplicate")
                continue
            deal, problems = built[number]
            for name, reason in problems:
                self.reader.bad(number, name, reason)
            if deal is not None:
                seen[key] = PENDING
                opps.append((data["account_id"], deal))
        # Updates first: with a background writer, a statement after the COPYs would wait
        # for them.
        self.update_existing(Opportunity, updates)
        self._write(opps)

    def _resolve_accounts(self, parsed) -> None:
        """Find or create (in bulk) each row's account by its normalised name."""
        wanted = {}
        normal = self.company_keys  # name → normalize_company(name), per distinct name
        if len(normal) > ACCOUNT_CACHE:  # bounded: memory stays flat
            normal.clear()
        for number, data in parsed:
            external = data.pop("account_external_id", "")
            name = data.pop("account", "") or data.pop("company", "")
            if external and external in self.ctx.account_external:
                data["account_id"] = self.ctx.account_external[external]
                continue
            if not name:
                reason = _("unknown account id; give the accounts file") if external \
                    else _("required")  # fmt: skip
                self.reader.bad(number, "account", reason)
                continue
            key = normal.get(name)
            if key is None:
                key = normal[name] = normalize_company(name)
            key = key or name
            data["_account_key"] = key
            wanted.setdefault(key, (name, data["owner_id"]))
        if len(self.account_cache) > ACCOUNT_CACHE:  # bounded: memory stays flat
            self.account_cache.clear()
        missing = [k for k in wanted if k not in self.account_cache]
        for pk, key in sorted(bulk.lookup(Account, ("id", "name_key"), "name_key", missing)):
            self.account_cache.setdefault(key, pk)
        new = [k for k in wanted if k not in self.account_cache]
        ids = bulk.allocate_ids(Account, len(new))
        now, actor = self.ctx.now, self.ctx.actor.pk
        rows = []
        for pk, key in zip(ids, new, strict=True):
            name, owner = wanted[key]
            self.account_cache[key] = pk
            rows.append({"id": pk, "name": name, "name_key": normal[name],
                         "owner_id": owner, "created_by_id": actor, "created_at": now,
                         "updated_at": now, "version": 1})  # fmt: skip
        bulk.insert_rows(Account, rows, writer=self.writer, checks=self.checks)
        self.ctx.record_created(Account, ids)
        self.count("accounts_new", len(ids))
        for _number, data in parsed:
            key = data.pop("_account_key", None)
            if key is not None:
                data["account_id"] = self.account_cache[key]

    def _build(self, data, problems: list) -> tuple | None:
        """The opportunity row (without its account) and its history, or None when they
        cannot be: the reasons, (column, reason), go to ``problems``."""
        pname = data.get("pipeline") if not self.ctx.options.pipeline else None
        pmap = self.pipelines.get(pname or self.default_pipeline)
        if pmap is None:
            pmap = self.pipelines[self.default_pipeline]
        stage = pmap.stage(data["stage"])
        if stage is None:
            reason = _("no stage “%(stage)s” in pipeline “%(pipeline)s”") % {
                "stage": data["stage"], "pipeline": pmap.pipeline.name}  # fmt: skip
            problems.append(("stage", reason))
            return None
        if stage.kind != StageKind.OPEN:
            status = stage.kind
            final_stage = None
        else:
            status = data.get("status")
            if status is None and data.get("is_closed"):
                status = Status.WON if data.get("is_won") else Status.LOST
            status = status or Status.OPEN
            final_stage = stage
        events, bad = [], False
        external = data.get("external_id", "")
        history = self.batch_history.pop(external, ()) if external else ()
        stage_of = pmap.stage
        # Moments are whole microseconds since the epoch (bulk.micros) through the rebuild:
        # no datetime object per change, each formatted once for the INSERT.
        for at, sname, amount in history:
            info = stage_of(sname)
            if info is None:
                problems.append(("stage", _("history names unknown stage “%s”") % sname))
                bad = True
                continue
            events.append((at, info, None if amount is None else Decimal(amount)))
        for at, sname in data.pop("_entered"):
            info = stage_of(sname)
            if info is not None:
                events.append((micros(at), info, None))
        if bad:
            return None
        # Moments in microseconds since the epoch (the parsers'; 0 is 1970, not "none").
        closed = data.get("closed_at")
        if closed is None:
            closed = data.get("won_at") if status == Status.WON else data.get("lost_at")
        if closed is None and status != Status.OPEN and data.get("expected_close_date"):
            closed = micros(_day_start(data["expected_close_date"]))
        created = data.get("created_at")
        if created is None:
            created = (
                min(e[0] for e in events) if events
                else closed if closed is not None else self.now_micros
            )  # fmt: skip
        result = rebuild(
            created_at=created, events=events, final_status=status, final_stage=final_stage,
            closed_at=closed, first_open=pmap.first_open, won_stage=pmap.won,
            lost_stage=pmap.lost, raw=True,
        )  # fmt: skip
        amount = data.get("amount") or Decimal("0.00")
        probability_given = data.get("probability")
        manual = False
        if result.status == Status.WON:
            probability = HUNDRED
        elif result.status == Status.LOST:
            probability = ZERO
        elif probability_given is not None and probability_given != result.stage.probability:
            probability, manual = probability_given, True
        else:
            probability = result.stage.probability
        lost_reason = None
        lost_note = ""
        if result.status == Status.LOST:
            given = data.get("lost_reason", "")
            lost_reason = self.reasons.get(given.casefold(), self.other_reason)
            if given and given.casefold() not in self.reasons:
                lost_note = given
        owner = data["owner_id"]
        number, known = self.decimal_param, self.known_decimals
        amount = number(amount)
        probability = known.get(id(probability)) or number(probability)
        stage = result.stage
        # The StageChange rows from the rebuild's plain tuples (Change's field order):
        # each moment once, in the form the database takes (the deal's own times are
        # those of its changes); each number once (decimal_param); the stays summed.
        param = self.micros_param
        params = {}
        rows = []
        stays = 0
        for kind, from_stage, to_stage, at, prob, change_amount, stay in result.changes:
            moment = params.get(at)
            if moment is None:
                moment = params[at] = param(at)
            if stay is not None:
                stays += stay
            rows.append((
                kind, None if from_stage is None else from_stage.pk, to_stage.pk, moment, owner,
                amount if change_amount is None else number(change_amount),
                probability if manual and kind in ("created", "moved") and to_stage == stage
                else known.get(id(prob)) or number(prob),
                stay,
            ))  # fmt: skip
        first, last = rows[0][3], rows[-1][3]
        first_at, last_at = result.changes[0][3], result.changes[-1][3]
        entered, closed_at = result.stage_entered_at, result.closed_at
        opp = (
            data["name"], owner, pmap.pipeline.pk,
            stage.pk, result.furthest.pk, result.status, amount,
            data.get("currency") or self.currency, probability, manual,
            self._date(data.get("expected_close_date")), data.get("source", ""),
            data.get("next_step", ""), data.get("description", ""), lost_reason, lost_note,
            params.get(entered) or param(entered),
            None if closed_at is None else params.get(closed_at) or param(closed_at),
            first, last if last_at >= first_at else first,
            stays,  # what the summaries' refresh would set (Σ of the rows')
        )  # fmt: skip
        return opp, rows

    def _date(self, day):
        """A date as the database takes it (adapted once per distinct date)."""
        if day is None:
            return None
        done = self.dates.get(day)
        if done is None:
            if len(self.dates) > ACCOUNT_CACHE:  # bounded: memory stays flat
                self.dates.clear()
            done = self.dates[day] = connection.ops.adapt_datefield_value(day)
        return done

    def _write(self, opps) -> None:
        ids = bulk.allocate_ids(Opportunity, len(opps))
        change_count = sum(len(b[1]) for _k, b in opps)
        change_ids = bulk.allocate_ids(StageChange, change_count)
        rows, changes, touched = [], [], set()
        next_id = iter(change_ids).__next__
        pick, tail = self.opp_pick, self.change_tail
        for pk, (account, (opp, history)) in zip(ids, opps, strict=True):
            rows.append(pick((pk, opp[0], account, *opp[1:])))
            touched.add(account)
            for change in history:
                changes.append((next_id(), pk, *change, *tail))
        bulk.insert_tuples(
            Opportunity, self.opp_columns, rows, adapted=OPP_ADAPTED, constants=self.opp_constants,
            writer=self.writer, checks=self.checks,
        )  # fmt: skip
        bulk.insert_tuples(
            StageChange, self.change_columns, changes, adapted=("changed_at",),
            constants=self.change_constants, writer=self.writer, checks=self.checks,
        )  # fmt: skip
        self.ctx.record_created(Opportunity, ids)
        self.ctx.record_created(StageChange, change_ids)
        bulk.add_ranges(self.fresh_changes, change_ids)
        self.count("new", len(ids))
        self.count("history_rows", len(changes))
        if self.ctx.options.skip_bad_rows:  # a committed batch is complete on its own
            refresh_account_grades(touched)
        else:
            self.touched |= touched
            codes, pick = self.grade_codes, _DEAL_STATUS_STAGE
            deals = ((account, *pick(opp)) for account, (opp, _history) in opps)
            best_grades(((a, status, codes.get(stage)) for a, status, stage in deals), self.grades)
