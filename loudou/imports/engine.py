"""Running an import: rows → validated records → bulk INSERTs, with a report.

Modes (DOMAIN §5, issue 7):

- dry run: the whole import runs inside a transaction that is rolled back, so the counts
  (new / updated / duplicate / invalid) are exactly what a real run would give;
- all-or-nothing (default): one transaction; any invalid row refuses the whole job and
  nothing is written;
- skip-bad-rows: bad rows are reported and left out; the rest is committed in batches,
  each together with the job row (counts, created ids, the last committed source row),
  so a killed process leaves whole batches and a job that resumes after its last one.

Every record the job creates is listed in ``job.created_objects`` as id ranges per model
and every record it changes in ``job.updated_objects`` with the values before, so that
:func:`undo` removes exactly what the job created and restores what it updated.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction
from django.db.models import ProtectedError, Q
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.customers.choices import Source
from loudou.org.models import Role, User, assignable_owners
from loudou.pipeline.services import refresh_account_grades

from . import bulk, layouts
from .models import ImportJob, JobStatus, OnDuplicate
from .reader import Table, UnreadableFile, open_table
from .values import BadValue

logger = logging.getLogger(__name__)

BATCH = 2_000
MAX_STORED_ERRORS = 1_000


# --- who may import -------------------------------------------------------------------


def may_import(user) -> bool:
    """Managers and admins import; reps do not (they could flood the shared pools)."""
    return bool(
        user and user.is_authenticated and user.is_active
        and (user.sees_everything or user.role == Role.MANAGER)
    )  # fmt: skip


def check_may_import(user) -> None:
    if not may_import(user):
        raise NotPermitted(_("Only managers and administrators may import data."))


# --- options and report ---------------------------------------------------------------


@dataclass
class Options:
    """What the user chose for one import."""

    format: str = "auto"
    on_duplicate: str = OnDuplicate.SKIP
    skip_bad_rows: bool = False
    pipeline: str = ""
    pool: int | None = None  # leads straight into this public pool
    owner_map: dict[str, str] = field(default_factory=dict)
    mapping: dict[str, str] | None = None  # column index (str) → field, from the mapping screen
    sheet: str = ""  # a workbook's sheet to read (default: the first)

    @classmethod
    def from_dict(cls, data: dict) -> Options:
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Report:
    """Counts and row errors of one run; kept in the job."""

    def __init__(self, job: ImportJob | None = None):
        counts = dict(job.counts) if job and job.counts else {}
        self.counts = {k: counts.get(k, 0) for k in ("new", "updated", "duplicate", "invalid")}
        self.counts.update({k: v for k, v in counts.items() if k not in self.counts})
        self.errors: list[dict] = list(job.errors) if job and job.errors else []
        self.bad_rows: set[tuple[str, int]] = set()

    def error(self, row: int, column: str, reason: str, file: str = "") -> None:
        if (file, row) not in self.bad_rows:
            self.bad_rows.add((file, row))
            self.counts["invalid"] += 1
        if len(self.errors) < MAX_STORED_ERRORS:
            self.errors.append({"file": file, "row": row, "column": column, "reason": reason})

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def replay(self, calls: list[tuple]) -> None:
        """Be told again what a :class:`RecordedReport` was told."""
        for name, args in calls:
            getattr(self, name)(*args)


class RecordedReport:
    """What a report is told, kept to be told again (:meth:`Report.replay`): the report
    of an import's preparing process (ahead.Ahead), replayed by the importer in row
    order."""

    def __init__(self):
        self.calls: list[tuple] = []

    def error(self, *args) -> None:
        self.calls.append(("error", args))

    def add(self, *args) -> None:
        self.calls.append(("add", args))

    def take(self) -> list[tuple]:
        calls, self.calls = self.calls, []
        return calls


class Refused(Exception):
    """All-or-nothing run with invalid rows: roll everything back."""


class _DryRun(Exception):
    """Raised at the end of a dry run to roll its transaction back."""


# --- the run --------------------------------------------------------------------------


class Context:
    """State shared by the importers of one job: the actor, options, report, what was
    created (id ranges per model) and updated, caches of owners and accounts."""

    def __init__(self, job: ImportJob, actor, options: Options, progress=None):
        self.job = job
        self.actor = actor
        self.options = options
        self.report = Report(job)
        self.created: dict[str, list[list[int]]] = {
            k: [list(r) for r in v] for k, v in (job.created_objects or {}).items()
        }
        self.updated: list[dict] = list(job.updated_objects or [])
        self.progress = progress
        self.done = job.done_rows
        self.resume_after = job.resume_after_row
        self.owners = OwnerResolver(self)
        self.account_external: dict[str, int] = {}
        self.now = timezone.now()
        self._last_beat = 0.0

    def record_created(self, model, ids) -> None:
        label = model._meta.label_lower
        bulk.add_ranges(self.created.setdefault(label, []), ids)

    def record_updated(self, obj, fields) -> None:
        before = {}
        for name in fields:
            f = obj._meta.get_field(name)
            value = f.value_from_object(obj)
            before[f.attname] = None if value is None else f.value_to_string(obj)
        self.updated.append({"model": obj._meta.label_lower, "pk": obj.pk, "before": before})

    def tick(self, rows: int = 0) -> None:
        self.done += rows
        if self.progress:
            self.progress(self.done, self.job.total_rows)

    def checkpoint(self, last_row: int | None) -> None:
        """Write the job's state (inside the current transaction: a committed batch
        and the record of it are one)."""
        job = self.job
        job.counts, job.errors = self.report.counts, self.report.errors
        job.created_objects, job.updated_objects = self.created, self.updated
        job.done_rows = self.done
        if last_row is not None:
            job.resume_after_row = last_row
        job.heartbeat_at = timezone.now()
        if job.pk:
            job.save(update_fields=["counts", "errors", "created_objects", "updated_objects",
                                    "done_rows", "resume_after_row", "heartbeat_at"])  # fmt: skip


def _transaction_per_batch(ctx: Context):
    """Skip-bad-rows runs commit each batch (with the job row); other runs are inside
    one outer transaction, where this is a cheap savepoint-free no-op."""
    if ctx.options.skip_bad_rows and not ctx.job.dry_run:
        return transaction.atomic()
    return contextlib.nullcontext()


# While a job runs, the collector's first generation is collected after this many new
# objects (Python's default: 700).
GC_YOUNG = 10_000


@contextlib.contextmanager
def fewer_collections():
    """While an import runs, Python's cycle collector leaves alone the objects that
    existed before it (``gc.freeze``: Django, the app registry, a worker's state — no
    import garbage among them) and collects its first generation every GC_YOUNG new
    objects instead of every 700: an import makes millions of short-lived tuples, and
    their collections scanned the whole heap again and again (a 100,000-deal import
    spent 2.7 s of its importer's 12 s of CPU in them, 0.9 s so). Put back afterwards
    (several imports in one process: the first to end puts it back, which only costs
    the others that time again)."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], GC_YOUNG), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def run_job(job: ImportJob, *, actor=None, progress: Callable | None = None) -> ImportJob:
    """Run (or dry-run, or resume) ``job``; return it with its status and report."""
    from .importers import IMPORTERS

    actor = actor or job.created_by
    check_may_import(actor)
    options = Options.from_dict(job.options)
    if job.status == JobStatus.UNDONE:
        raise Conflict(_("This import was undone."))
    resuming = job.resume_after_row > 0 and not job.dry_run
    if not resuming:
        job.counts, job.errors, job.created_objects, job.updated_objects = {}, [], {}, []
        job.done_rows = 0
    job.status, job.started_at = JobStatus.RUNNING, job.started_at or timezone.now()
    job.message = ""
    job.save()
    ctx = Context(job, actor, options, progress)
    importer = IMPORTERS[job.kind](ctx)
    with fewer_collections():
        try:
            if job.dry_run:
                try:
                    with transaction.atomic():
                        importer.run()
                        raise _DryRun
                except _DryRun:
                    pass
                status = JobStatus.CHECKED
            elif options.skip_bad_rows:
                importer.run()
                status = JobStatus.DONE
            else:
                try:
                    with transaction.atomic():
                        importer.run()
                        if ctx.report.counts["invalid"]:
                            raise Refused
                except Refused:
                    ctx.created, ctx.updated = {}, []
                    status = JobStatus.REFUSED
                else:
                    status = JobStatus.DONE
        except (UnreadableFile, ValidationFailed, OSError) as error:
            return _failed(job, str(error))
        except Exception as error:  # a bug or a database refusal: the job must not hang
            logger.exception("import %s failed", job.pk)
            return _failed(job, _("The import stopped on an unexpected error: %s") % error)
    if not job.total_rows:  # files read in one pass learn their size at the end
        job.total_rows = ctx.done
    if job.dry_run:  # a dry run keeps its report, never its ids
        ctx.created, ctx.updated = {}, []
    ctx.checkpoint(None)
    job.status, job.finished_at = status, timezone.now()
    if status == JobStatus.REFUSED:
        job.message = _("Nothing was imported: %d rows have errors.") % ctx.report.counts["invalid"]
    job.save()
    return job


def _failed(job: ImportJob, message: str) -> ImportJob:
    """Mark ``job`` failed; what a skip-bad-rows run committed stays listed for undo."""
    job.refresh_from_db()
    job.status, job.message = JobStatus.FAILED, message[:2000]
    job.finished_at = timezone.now()
    job.save()
    return job


# --- undo -----------------------------------------------------------------------------

# Children first, so that nothing the job created is protected by another of its rows.
UNDO_ORDER = [
    "sales.payment", "sales.contract", "activities.activity",
    "pipeline.stagechange", "leads.poolevent", "pipeline.opportunity", "customers.contact",
    "leads.lead", "customers.account", "pipeline.stage", "pipeline.pipeline", "org.user",
]  # fmt: skip


@transaction.atomic
def undo(job: ImportJob, *, actor) -> ImportJob:
    """Delete what ``job`` created and restore what it updated, or nothing at all: a
    record someone has since attached work to (an activity, an opportunity on an
    imported account) makes the undo refuse with a conflict."""
    check_may_import(actor)
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status == JobStatus.UNDONE:
        raise Conflict(_("This import was already undone."))
    if job.dry_run or job.status not in (JobStatus.DONE, JobStatus.RUNNING, JobStatus.FAILED):
        raise Conflict(_("Only an import that wrote data can be undone."))
    if not (actor.sees_everything or job.created_by_id == actor.pk):
        raise NotPermitted(_("Only the person who ran an import, or an admin, may undo it."))
    created = job.created_objects or {}
    accounts = set()
    for first, last in created.get("pipeline.opportunity", []):
        accounts |= set(
            apps.get_model("pipeline.opportunity")
            .objects.filter(pk__range=(first, last))
            .values_list("account_id", flat=True)
            .distinct()
        )
    _refuse_if_others_built_on(created)
    contracts = _ids_of("sales.payment", created, "contract_id")
    subjects = {
        column: _ids_of("activities.activity", created, column)
        for column in ("lead_id", "account_id", "opportunity_id")
    }
    try:
        for label in UNDO_ORDER + sorted(set(created) - set(UNDO_ORDER)):
            model = apps.get_model(label)
            for first, last in created.get(label, []):
                for start in range(first, last + 1, 10_000):
                    model.objects.filter(pk__range=(start, min(last, start + 9_999))).delete()
    except ProtectedError as error:
        names = ", ".join(sorted({str(o._meta.verbose_name) for o in error.protected_objects}))
        raise Conflict(
            _("Cannot undo: other records now depend on what this import created (%s).") % names
        ) from None
    from loudou.leads.summaries import moving_ids
    from loudou.pipeline.summaries import accounts_moving

    leads = [e["pk"] for e in job.updated_objects or [] if e["model"] == "leads.lead"]
    edited = [e["pk"] for e in job.updated_objects or [] if e["model"] == "customers.account"]
    # restored leads move between the lead counts' rows, accounts' won deals in WonCount
    with moving_ids(leads), accounts_moving(edited):
        for entry in reversed(job.updated_objects or []):
            model = apps.get_model(entry["model"])
            values = {}
            for attname, raw in entry["before"].items():
                f = next(f for f in model._meta.concrete_fields if f.attname == attname)
                values[attname] = None if raw is None else f.to_python(raw)
            model.objects.filter(pk=entry["pk"]).update(**values)
    refresh_account_grades(accounts)  # the accounts that keep other deals
    _after_undo(contracts, subjects)
    restored = [e["pk"] for e in job.updated_objects or [] if e["model"] == "pipeline.opportunity"]
    if restored or {"pipeline.opportunity", "pipeline.stagechange"} & set(created):
        from loudou.pipeline.summaries import rebuild_summaries

        rebuild_summaries(restored)  # deletions are not seen by the summaries' state
    job.status, job.message = JobStatus.UNDONE, _("Undone by %s.") % actor
    job.save(update_fields=["status", "message"])
    return job


def _ranges_q(ranges, field: str = "pk") -> Q:
    q = Q(pk__in=[])
    for first, last in ranges:  # gte/lte: relations take no __range
        q |= Q(**{f"{field}__gte": first, f"{field}__lte": last})
    return q


def _ids_of(label: str, created: dict, column: str) -> set[int]:
    """The distinct ``column`` values of the rows of ``label`` the job created."""
    ranges = created.get(label)
    if not ranges:
        return set()
    rows = apps.get_model(label).objects.filter(_ranges_q(ranges)).order_by()
    return set(rows.exclude(**{column: None}).values_list(column, flat=True).distinct())


def _refuse_if_others_built_on(created: dict) -> None:
    """Refuse the undo when a record made by someone else since — an activity, a task,
    a visit, a contract, an opportunity (anything with an owner) — hangs from what the
    job created and would be deleted with it (CASCADE) or would block it (PROTECT)."""
    from loudou.core.models import OwnedModel

    for label, ranges in created.items():
        model = apps.get_model(label)
        for relation in model._meta.related_objects:
            related = relation.related_model
            if relation.many_to_many or not issubclass(related, OwnedModel):
                continue
            mine = created.get(related._meta.label_lower, [])
            rows = related.objects.filter(_ranges_q(ranges, relation.field.attname)).exclude(
                _ranges_q(mine)
            )  # fmt: skip
            if rows.exists():
                raise Conflict(
                    _("Cannot undo: other records now depend on what this import created (%s).")
                    % related._meta.verbose_name_plural  # fmt: skip
                )


def _after_undo(contracts: set[int], subjects: dict) -> None:
    """Recompute what other apps keep about the records the undo touched: the kept
    figures of contracts whose payments went, the follow-up state of records whose
    activities went."""
    if contracts:
        from .sales import recompute_contracts

        recompute_contracts(contracts)
    if any(subjects.values()):
        from loudou.rules import state

        for column, ids in subjects.items():
            kind = {"lead_id": "leads", "account_id": "accounts",
                    "opportunity_id": "opportunities"}[column]  # fmt: skip
            ids = sorted(ids)
            for start in range(0, len(ids), 5_000):
                state.refresh(**{kind: ids[start : start + 5_000]})


# --- owners ---------------------------------------------------------------------------


class OwnerResolver:
    """Who a name in the owner column is: the owner-map first, then a username, full
    name or e-mail. Managers may only give records to the users they may assign; an admin
    may also name people who are not users (yet): they become inactive placeholder users,
    to be mapped or activated later."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.cache: dict[str, int | str] = {}
        self.assignable: set[int] | None = None

    def _allowed(self, user_id: int) -> bool:
        actor = self.ctx.actor
        if actor.sees_everything:
            return True
        if self.assignable is None:
            self.assignable = set(assignable_owners(actor).values_list("pk", flat=True))
        return user_id in self.assignable

    def resolve(self, value: str) -> int:
        """The user id for ``value`` (the actor for an empty cell); BadValue if none."""
        value = value.strip()
        if not value:
            return self.ctx.actor.pk
        hit = self.cache.get(value)
        if hit is None:
            hit = self._lookup(value)
            self.cache[value] = hit
        if isinstance(hit, str):
            raise BadValue(hit)
        return hit

    def _lookup(self, value: str) -> int | str:
        target = self.ctx.options.owner_map.get(value, value)
        user = (
            User.objects.filter(
                Q(username__iexact=target) | Q(name=target) | Q(email__iexact=target)
            )
            .order_by("-is_active", "pk")
            .first()
        )
        if user is None:
            if not self.ctx.actor.sees_everything:
                return _("unknown owner “%s”: map it with an owner-map file") % value
            user = self._placeholder(value)
        if not self._allowed(user.pk):
            return _("you may not give records to %s") % user
        return user.pk

    def _placeholder(self, value: str) -> User:
        base = "imported-" + (slugify(value, allow_unicode=False)[:100] or "owner")
        username, n = base, 1
        while User.objects.filter(username=username).exists():
            n += 1
            username = f"{base}-{n}"
        user = User(username=username[:150], name=value[:100], is_active=False)
        user.set_unusable_password()
        user.save()
        self.ctx.record_created(User, [user.pk])
        self.ctx.report.add("placeholder_owners")
        return user


# --- row reading helpers ----------------------------------------------------------------

_SOURCE_WORDS = {
    Source.REFERRAL: ["referral", "推荐", "转介绍", "介绍", "老客户推荐", "word of mouth",
                      "employee referral", "partner referral"],
    Source.WEBSITE: ["website", "web", "官网", "网站", "网络", "online", "seo", "web site"],
    Source.EXHIBITION: ["exhibition", "trade show", "展会", "会议", "seminar", "conference",
                        "event"],
    Source.COLD_CALL: ["cold_call", "cold call", "电话", "陌拜", "电话营销", "outbound"],
    Source.ADVERTISING: ["advertising", "advertisement", "广告", "ads", "paid search",
                         "推广"],
    Source.PARTNER: ["partner", "合作伙伴", "渠道", "代理商"],
    Source.INBOUND: ["inbound", "咨询", "来电", "主动咨询", "询盘", "email", "chat"],
    Source.OTHER: ["other", "其他", "其它"],
}  # fmt: skip
SOURCE_OF = {word: key for key, words in _SOURCE_WORDS.items() for word in words}


def parse_source(value: str) -> str:
    """A source value in Loudou's list: known words in Chinese and English, else other."""
    word = value.strip().lower()
    if not word:
        return ""
    return SOURCE_OF.get(word) or SOURCE_OF.get(word.replace("_", " ")) or Source.OTHER


_email = EmailValidator()
_url = URLValidator()


_SIMPLE_EMAIL = re.compile(r"^[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+$")


def check_email(value: str) -> str:
    """An e-mail address; the common shape is checked by a quick pattern, anything else
    by Django's validator (the one the forms use)."""
    value = value.strip()
    if value and not _SIMPLE_EMAIL.match(value):
        try:
            _email(value)
        except ValidationError:
            raise BadValue(_("not an e-mail address")) from None
    return value


def check_url(value: str) -> str:
    value = value.strip()
    if value and not re.match(r"^[a-z]+://", value, re.IGNORECASE):
        value = "http://" + value
    if value:
        try:
            _url(value)
        except ValidationError:
            raise BadValue(_("not a web address")) from None
    return value


def limit(value: str, size: int) -> str:
    if len(value) > size:
        raise BadValue(_("longer than %d characters") % size)
    return value


class RowReader:
    """Reads the mapped fields of one table's rows, reporting each bad cell."""

    def __init__(self, ctx: Context, table: Table, mapping: layouts.Mapping, file: str):
        self.ctx, self.table, self.mapping, self.file = ctx, table, mapping, file
        self.columns = sorted(mapping.columns.items())
        self.header_of = {name: table.headers[i] or name for i, name in mapping.columns.items()}

    def fields(self, cells: list) -> dict:
        return {name: cells[i] if i < len(cells) else "" for i, name in self.columns}

    def bad(self, row: int, name: str, reason: str) -> None:
        self.ctx.report.error(row, self.header_of.get(name, name), reason, self.file)


def open_mapped(ctx: Context, path, kind: str, file: str) -> tuple[Table, layouts.Mapping]:
    """Open ``path``, find its header and layout; a required column that is missing
    fails the whole job (there is nothing row-by-row to report). The job's own file is
    read from the sheet the user chose; companion files from their first sheet."""
    sheet = ctx.options.sheet or None if kind == ctx.job.kind else None
    table = open_table(path, known=layouts.known_headers(kind), sheet=sheet)
    mapping = layouts.detect(kind, table.keys, ctx.options.format, table.headers)
    if kind != "history" and ctx.options.mapping:
        mapping.columns = {int(i): f for i, f in ctx.options.mapping.items() if f}
        mapping.layout = "custom"
    missing = mapping.missing(kind)
    if missing:
        raise ValidationFailed(
            _("The %(file)s file has no column for: %(fields)s (header found in row %(row)d)")
            % {"file": file, "fields": ", ".join(missing), "row": table.header_row}
        )
    return table, mapping
