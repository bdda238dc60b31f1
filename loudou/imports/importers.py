"""One importer per kind of record: accounts, contacts, leads, opportunities (with their
stage history). Each reads its file in batches, validates every cell (all bad cells of a
row are reported, not only the first), finds duplicates with the normalised keys of
``loudou.leads.normalize`` and writes with bulk INSERTs the rows the services would
write (keys, versions, pool events, stage history)."""

from __future__ import annotations

import functools
import operator
import os
from collections import Counter

from django.utils.translation import gettext as _

from loudou.customers.models import Account, Contact
from loudou.leads import summaries as lead_counts
from loudou.leads.choices import LeadStatus, PoolEventKind
from loudou.leads.models import Lead, PoolEvent, PublicPool
from loudou.leads.normalize import normalize_company as _normalize_company
from loudou.leads.normalize import normalize_email, normalize_phone
from loudou.pipeline import summaries

from . import ahead, bulk
from .engine import (
    _SIMPLE_EMAIL,
    BATCH,
    Context,
    RecordedReport,
    RowReader,
    _transaction_per_batch,
    check_email,
    check_url,
    limit,
    open_mapped,
    parse_source,
)
from .models import OnDuplicate
from .values import BadValue, memoized, text

# The same company names recur in every row of a deal file: normalise each once.
normalize_company = functools.lru_cache(maxsize=200_000)(_normalize_company)

PENDING = -1  # a duplicate key met earlier in the same batch, before its id is known


def visible_accounts(actor, keys) -> dict[str, int]:
    """Normalised name → id of the accounts ``actor`` may see with those ``keys`` (the
    oldest of equal names)."""
    found = {}
    rows = Account.objects.visible_to(actor).filter(name_key__in=keys).order_by("pk")
    for pk, key in rows.values_list("pk", "name_key"):
        found.setdefault(key, pk)
    return found


def estimate_rows(path) -> int:
    """Rows in a CSV from its size and the length of its first lines (spreadsheets: a
    row takes about 40 bytes compressed)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            head = handle.read(65_536)
    except OSError:
        return 0
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        return size // 40
    lines = head.count(b"\n")
    return size * lines // max(len(head), 1) if lines else 0


class Importer:
    """Reads ``path`` of ``kind`` in batches and hands each to :meth:`write_batch`."""

    kind = ""
    file = ""
    # PostgreSQL, one transaction: COPY each batch in a background thread while the next is
    # read (bulk.CopyWriter); the importer calls self.sync() before reading the database
    # and passes self.writer to insert_tuples.
    background_copy = False

    def __init__(self, ctx: Context, path=None, *, main: bool = True):
        self.ctx = ctx
        self.path = path or ctx.job.file.path
        self.main = main  # the job's own file (not a companion accounts file)
        self.prefix = "" if main else f"{self.kind}_"
        self.force_mode = None
        self.silent = False
        self.seen: dict = {}  # duplicate keys met earlier in this file → id
        self.updated: set[int] = set()  # existing records this file updated already
        self._plans: dict = {}
        self.checks = None  # bulk.ForeignKeyChecks of this run (PostgreSQL)

    @property
    def mode(self) -> str:
        return self.force_mode or self.ctx.options.on_duplicate

    def count(self, key: str, n: int = 1) -> None:
        if not self.silent:
            main_key = key in ("new", "updated", "duplicate")
            self.ctx.report.add(self.prefix + key if main_key else key, n)

    def run(self) -> None:
        table, mapping = open_mapped(self.ctx, self.path, self.kind, self.file)
        if self.main:
            self.ctx.job.layout = mapping.layout
            self.ctx.job.mapping = {str(i): f for i, f in mapping.columns.items()}
        self.reader = RowReader(self.ctx, table, mapping, self.file)
        self.mapped = set(mapping.columns.values())
        self.before(table, mapping)
        one_transaction = self.ctx.job.dry_run or not self.ctx.options.skip_bad_rows
        expected = self.expected_rows() if one_transaction and self.main else 0
        self.written, self.analyze_at = 0, bulk.ANALYZE_FROM
        self.writer, self._due = None, False
        if one_transaction and bulk.connection.vendor == "postgresql":
            bulk.no_jit()
        if bulk.connection.vendor == "postgresql":  # foreign keys checked per batch
            self.checks = bulk.ForeignKeyChecks()  # (where the database role may)
        # Forked before the writer's thread starts: the child copies one thread.
        source = None
        if self.prepare_ahead and ahead.possible() and self.may_prepare_ahead():
            source = ahead.start(lambda: self._prepared(table), start=self.in_child)
        failed = True
        try:
            if self.background_copy and one_transaction and bulk.connection.vendor == "postgresql":
                self.writer = bulk.CopyWriter()
            with bulk.deferred_indexes(self.indexes_kept(), rows=expected):
                if source is None:
                    for batch, last in self._batches(table):
                        self._flush(batch, len(batch), last, self.write_batch)
                else:
                    replay = self.ctx.report.replay
                    for prepared, calls, size, last in source:
                        replay(calls)
                        self._flush(prepared, size, last, self.write_prepared)
                self.sync()
                self.loaded()
            failed = False
        finally:
            if source is not None:
                source.close()
            if self.writer is not None:
                self.writer.close(failed=failed)

    def _batches(self, table):
        """The rows to write (those after the row a resumed job stopped at) in batches:
        (batch, the last one's row number)."""
        batch, last = [], 0
        resume_after = self.ctx.resume_after if self.main else 0
        for number, cells in table.rows:
            if number <= resume_after:
                continue
            batch.append((number, cells, cells))
            last = number
            if len(batch) >= BATCH:
                yield batch, last
                batch = []
        if batch:
            yield batch, last

    def _prepared(self, table):
        """In the preparing process: each batch prepared, with what it told the report."""
        recorded = self.ctx.report = RecordedReport()
        for batch, last in self._batches(table):
            prepared = self.prepare(batch)
            yield prepared, recorded.take(), len(batch), last

    # Importers whose write_batch is prepare (no database) then write_prepared may have
    # their batches prepared in a second process (ahead.Ahead) while they write.
    prepare_ahead = False

    def may_prepare_ahead(self) -> bool:
        """Whether this run's batches can be prepared without the database (e.g. every
        owner named in the file resolved beforehand)."""
        return True

    def in_child(self) -> None:
        """In the preparing process, before the first batch (e.g. reopen a file)."""

    def prepare(self, batch):
        """The database-free part of writing ``batch``."""
        return batch

    def write_prepared(self, prepared) -> None:
        raise NotImplementedError

    def write_batch(self, batch) -> None:
        self.write_prepared(self.prepare(batch))

    def before(self, table, mapping) -> None:
        """Set-up after the header is known (e.g. the opportunities' first pass)."""

    def loaded(self) -> None:
        """After the last batch, while the indexes deferred by bulk.deferred_indexes are
        still missing: work on the rows just loaded that would otherwise maintain them
        (e.g. an UPDATE of those rows)."""

    def expected_rows(self) -> int:
        """About how many rows the file holds (from its size and first lines), to decide
        whether deferring the index updates pays (bulk.deferred_indexes)."""
        if self.ctx.job.total_rows:
            return self.ctx.job.total_rows
        return estimate_rows(self.path)

    def indexes_kept(self) -> dict:
        """Tables this importer writes → the columns whose indexes its duplicate checks
        read (kept while the others are deferred)."""
        return {}

    def _flush(self, batch, size, last, write) -> None:
        """``write(batch)`` (of ``size`` rows, the last ``last``) in its transaction."""
        with _transaction_per_batch(self.ctx):
            write(batch)
            self.ctx.tick(size)
            if self.writer is None:
                self.ctx.checkpoint(last if self.main else None)
            else:  # after the batch's COPYs (a statement now would wait for them)
                self._due = last if self.main else None
        self.written += size
        if self.written >= self.analyze_at:  # 10,000 rows, 20,000, 40,000, ...
            self.sync()
            bulk.analyze({model: keys for model, keys in self.indexes_kept().items() if keys})
            self.analyze_at = 2 * self.written

    def sync(self) -> None:
        """With a background writer (``background_copy``): wait until the batches handed
        to it are in the database (the duplicate lookups of the next batch must see
        them), then write the job's checkpoint of the last one. A no-op without."""
        if self.writer is None:
            return
        self.writer.wait()
        if self._due is not False:
            self.ctx.checkpoint(self._due)
            self._due = False

    def parse_row(self, number: int, cells: list, parsers: dict) -> dict:
        """Apply ``parsers`` (field → function of the cell) to a row's mapped cells.
        Every bad cell is reported and left out of the result, and ``self.row_bad`` is
        set, so that the checks after this one still report the row's other problems.

        Plain text fields (``_text``) of CSV cells are read inline: a million-row file
        spends most of its Python time here."""
        compiled = self._plans.get(id(parsers))
        if compiled is None:
            plan = [(name, index, parsers[name]) for index, name in self.reader.columns
                    if name in parsers]  # fmt: skip
            compiled = self._plans[id(parsers)] = compile_row_parser(plan)
        self.row_bad = False
        return compiled(self, number, cells)

    def bad(self, number, name, reason) -> None:
        self.reader.bad(number, name, reason)
        self.row_bad = True

    def required(self, number, data, *names) -> None:
        """Report the required fields whose (readable) cell is empty."""
        for name in names:
            if name in data and not data[name]:
                self.bad(number, name, _("required"))

    def owner(self, number, data) -> None:
        try:
            data["owner_id"] = self.ctx.owners.resolve(data.pop("owner", "") or "")
        except BadValue as error:
            self.bad(number, "owner", error.reason)

    def update_existing(self, model, updates: dict[int, dict]) -> None:
        """Apply the file's non-empty values to existing records the actor may see,
        remembering the values before (for undo)."""
        if not updates:
            return
        visible = model.objects.visible_to(self.ctx.actor).in_bulk(list(updates))
        changed, fields = [], set()
        for pk, data in updates.items():
            obj = visible.get(pk)
            if obj is None:  # a duplicate out of the actor's sight is not theirs to change
                self.count("duplicate")
                continue
            values = {k: v for k, v in data.items() if v not in ("", None)}
            values = {k: v for k, v in values.items() if getattr(obj, k) != v}
            if values:
                self.ctx.record_updated(obj, [*values, "version", "updated_at"])
                for key, value in values.items():
                    setattr(obj, key, value)
                obj.version += 1
                obj.updated_at = self.ctx.now
                fields |= set(values)
                changed.append(obj)
            self.count("updated")
        if changed:
            model.objects.bulk_update(changed, [*fields, "version", "updated_at"])

    def parse_batch(self, batch, check) -> list[tuple[int, dict]]:
        """The batch's rows read with ``self.parsers`` and checked by ``check(number,
        data)`` (which reports through :meth:`bad`): those without a bad cell, as
        ``(number, data)``."""
        parsed = []
        for number, cells, _cells in batch:
            data = self.parse_row(number, cells, self.parsers)
            check(number, data)
            if not self.row_bad:
                parsed.append((number, data))
        return parsed

    def insert_new(self, model, rows: list[dict]) -> None:
        """INSERT new ``rows`` (dicts of attnames, ids given here), remembered for undo
        and counted as new."""
        ids = bulk.allocate_ids(model, len(rows))
        for pk, row in zip(ids, rows, strict=True):
            row["id"] = pk
        bulk.insert_rows(model, rows)
        self.ctx.record_created(model, ids)
        self.count("new", len(ids))

    def stamp(self, row: dict) -> dict:
        now = self.ctx.now
        row.setdefault("created_at", now)
        row.setdefault("updated_at", now)
        return row


def compile_row_parser(plan):
    """One function that reads a row's mapped cells as ``plan`` says ((field, cell index,
    parser) triples), the loop unrolled: a million-row file spends most of its Python
    time reading cells. Plain text fields (``_text``) of CSV cells are read inline; every
    bad cell is reported through ``importer.bad`` and left out of the result."""
    lines = ["def parse_row(importer, number, cells):", "    out = {}", "    width = len(cells)"]
    scope = {"BadValue": BadValue, "_": _, "INF": float("inf")}
    for k, (name, index, parse) in enumerate(plan):
        scope[f"p{k}"] = parse
        size = getattr(parse, "size", None)
        lines.append(f"    v = cells[{index}] if {index} < width else ''")
        body = [
            "try:",
            f"    out[{name!r}] = p{k}(v)",
            "except BadValue as error:",
            f"    importer.bad(number, {name!r}, error.reason)",
        ]
        if size is None:
            lines += ["    " + line for line in body]
            continue
        lines += ["    if type(v) is str:", "        v = v.strip()"]
        if size == float("inf"):
            lines.append(f"        out[{name!r}] = v")
        else:
            lines += [
                f"        if len(v) > {size}:",
                f"            importer.bad(number, {name!r}, _('longer than %d characters')"
                f" % {size})",
                "        else:",
                f"            out[{name!r}] = v",
            ]
        lines += ["    else:"] + ["        " + line for line in body]
    lines.append("    return out")
    exec("\n".join(lines), scope)  # noqa: S102 -- the source is built above, from field names
    return scope["parse_row"]


def _text(size=None):
    """Text of at most ``size`` characters (no limit: None)."""

    def parse(value):
        value = text(value)
        return value if size is None else limit(value, size)

    parse.size = size if size is not None else float("inf")
    return parse


_source = memoized(lambda value: parse_source(text(value)))


# --- accounts -------------------------------------------------------------------------


class AccountImporter(Importer):
    kind, file = "accounts", "accounts"
    parsers = {
        "external_id": _text(100), "name": _text(200), "industry": _text(100),
        "phone": _text(60), "website": lambda v: limit(check_url(text(v)), 200),
        "address": _text(300), "source": _source, "owner": _text(), "notes": _text(),
    }  # fmt: skip

    def write_batch(self, batch) -> None:
        rows = []
        for number, row, _cells in batch:
            data = self.parse_row(number, row, self.parsers)
            self.required(number, data, "name")
            self.owner(number, data)
            if not self.row_bad:
                rows.append((number, data))
        keys = {normalize_company(d["name"]) for _n, d in rows}
        existing = {}
        for pk, key in sorted(bulk.lookup(Account, ("id", "name_key"), "name_key", keys)):
            existing.setdefault(key, pk)
        mode = self.mode
        created = self.ctx.created.get("customers.account", [])
        new, updates, deferred, seen = [], {}, [], {}
        for _number, data in rows:
            key = normalize_company(data["name"])
            external = data.pop("external_id", "")
            match = existing.get(key) or seen.get(key)
            if match and mode != OnDuplicate.CREATE:
                if (
                    mode == OnDuplicate.UPDATE and key in existing and key not in seen
                    and match not in self.updated and not bulk.in_ranges(created, match)
                ):  # fmt: skip
                    updates[match] = data
                    self.updated.add(match)
                    seen[key] = match
                else:
                    self.count("duplicate")
                if external:
                    deferred.append((external, key))
                continue
            seen[key] = PENDING
            new.append((key, external, data))
        ids = bulk.allocate_ids(Account, len(new))
        inserts = []
        for pk, (key, external, data) in zip(ids, new, strict=True):
            seen[key] = pk
            if external:
                self.ctx.account_external[external] = pk
            inserts.append(self.stamp({
                "id": pk, "name_key": key, "created_by_id": self.ctx.actor.pk, "version": 1,
                **data,
            }))  # fmt: skip
        for external, key in deferred:  # duplicates: their ids are known now
            self.ctx.account_external[external] = existing.get(key) or seen[key]
        bulk.insert_rows(Account, inserts, checks=self.checks)
        self.ctx.record_created(Account, ids)
        self.count("new", len(ids))
        with summaries.accounts_moving(updates):  # their won deals' WonCount rows follow
            self.update_existing(Account, updates)


# --- contacts -------------------------------------------------------------------------


class ContactImporter(Importer):
    kind, file = "contacts", "contacts"
    parsers = {
        "account": _text(200), "account_external_id": _text(100), "name": _text(100),
        "title": _text(100), "mobile": _text(30), "phone": _text(60),
        "email": lambda v: limit(check_email(text(v)), 254), "wechat": _text(60),
        "notes": _text(),
    }  # fmt: skip

    def write_batch(self, batch) -> None:
        rows = []
        names = set()
        for number, row, _cells in batch:
            data = self.parse_row(number, row, self.parsers)
            self.required(number, data, "name")
            if self.row_bad:
                continue
            rows.append((number, data))
            names.add(normalize_company(data.get("account", "")))
        accounts = {}
        for pk, key in Account.objects.filter(name_key__in=names).values_list("pk", "name_key"):
            accounts.setdefault(key, pk)
        resolved = []
        for number, data in rows:
            external = data.pop("account_external_id", "")
            name = data.pop("account", "")
            account_id = self.ctx.account_external.get(external) or accounts.get(
                normalize_company(name)
            )
            if not account_id:
                self.bad(number, "account", _("no such account") if name or external
                         else _("required"))  # fmt: skip
                continue
            data["account_id"] = account_id
            data["mobile_key"] = normalize_phone(data.get("mobile")) or normalize_phone(
                data.get("phone")
            )
            data["email_key"] = normalize_email(data.get("email"))
            resolved.append(data)
        mobiles = {d["mobile_key"] for d in resolved if d["mobile_key"]}
        emails = {d["email_key"] for d in resolved if d["email_key"]}
        existing = {}
        found = bulk.lookup(Contact, ("id", "account_id", "mobile_key", "email_key"),
                            "mobile_key", mobiles)  # fmt: skip
        found += bulk.lookup(Contact, ("id", "account_id", "mobile_key", "email_key"),
                             "email_key", emails)  # fmt: skip
        for pk, account_id, mobile, email in sorted(found):
            for key in (mobile, email):
                if key:
                    existing.setdefault((account_id, key), pk)
        mode = self.mode
        created = self.ctx.created.get("customers.contact", [])
        new, updates = [], {}
        for data in resolved:
            keys = [(data["account_id"], k) for k in (data["mobile_key"], data["email_key"]) if k]
            keys = keys or [(data["account_id"], "name:" + data["name"].casefold())]
            match = next((existing.get(k) or self.seen.get(k) for k in keys
                          if existing.get(k) or self.seen.get(k)), None)  # fmt: skip
            if match and mode != OnDuplicate.CREATE:
                if (
                    mode == OnDuplicate.UPDATE and match in existing.values()
                    and match not in self.updated and not bulk.in_ranges(created, match)
                ):  # fmt: skip
                    self.updated.add(match)
                    updates[match] = {
                        k: v
                        for k, v in data.items()
                        if k not in ("account_id", "mobile_key", "email_key")
                    }
                else:
                    self.count("duplicate")
                continue
            for key in keys:
                self.seen.setdefault(key, PENDING)
            new.append((keys, data))
        ids = bulk.allocate_ids(Contact, len(new))
        inserts = []
        for pk, (keys, data) in zip(ids, new, strict=True):
            for key in keys:
                if self.seen.get(key) == PENDING:
                    self.seen[key] = pk
            inserts.append(self.stamp({"id": pk, "version": 1, **data}))
        bulk.insert_rows(Contact, inserts, checks=self.checks)
        self.ctx.record_created(Contact, ids)
        self.count("new", len(ids))
        self.update_existing(Contact, updates)


# --- leads ----------------------------------------------------------------------------


# The rows LeadImporter writes, in this column order (bulk.insert_tuples): the fixed
# values first, then the file's text fields and keys ("" when the file has no column).
LEAD_TEXT = (
    "name", "company", "title", "mobile", "phone", "email", "wechat", "source", "industry",
    "notes", "mobile_key", "email_key", "company_key",
)  # fmt: skip
LEAD_COLUMNS = ("id", "owner_id", "owned_since", "pool_id")  # then the file's text fields
LEAD_ADAPTED = ("created_at", "updated_at", "owned_since")
LEAD_BLANK = dict.fromkeys(LEAD_TEXT, "")
# Text fields every good row has in its dict: the keys, and the name (required, or
# taken from the company).
LEAD_ALWAYS = ("name", "mobile_key", "email_key", "company_key")
EVENT_COLUMNS = ("id", "lead_id", "pool_id", "owner_id")


def parse_email(value) -> str:
    """An e-mail cell (``check_email``, at most 254 characters); the common shape is
    answered at once."""
    if type(value) is str:
        value = value.strip()
        if len(value) <= 254 and _SIMPLE_EMAIL.match(value):
            return value
    return limit(check_email(text(value)), 254)


def phone_key(value: str | None) -> str:
    """``normalize_phone``, with the common case (plain ASCII digits, no country code)
    answered without Unicode normalisation: a million leads pass here."""
    if value and value.isascii() and value.isdigit() and not value.startswith(("86", "0086")):
        return value
    return normalize_phone(value)


def email_key(value: str | None) -> str:
    """``normalize_email``; an ASCII address (NFKC leaves ASCII as it is) without it."""
    if value and value.isascii():
        return value.strip().lower()
    return normalize_email(value)


class LeadImporter(Importer):
    """Leads, owned (owner column, else the importer) or straight into a public pool.
    A duplicate is a lead with the same normalised mobile or e-mail (leads issue)."""

    kind, file = "leads", "leads"
    background_copy = True
    parsers = {
        "name": _text(100), "company": _text(200), "title": _text(100), "mobile": _text(30),
        "phone": _text(60), "email": parse_email, "wechat": _text(60), "source": _source,
        "industry": _text(100), "owner": _text(), "pool": _text(), "notes": _text(),
    }  # fmt: skip

    def before(self, table, mapping) -> None:
        self.pools = {}
        self.owners = {}
        self.pending = None  # (rows, future answer of their lookups and ids)
        self.recent: dict = {}  # key → id of the leads of the batch written last
        self.spare_ids: tuple[list, list] = ([], [])  # lead ids, event ids
        self.lead_counts: Counter = Counter()
        pool_id = self.ctx.options.pool
        self.default_pool = None
        if pool_id:
            self.default_pool = PublicPool.objects.visible_to(self.ctx.actor).filter(
                pk=pool_id).first()  # fmt: skip
            if self.default_pool is None:
                from loudou.core.exceptions import ValidationFailed

                raise ValidationFailed(_("No such public pool."), field="pool")

    def _pool(self, name: str):
        if name not in self.pools:
            self.pools[name] = (
                PublicPool.objects.visible_to(self.ctx.actor).filter(name=name)
                .values_list("pk", flat=True).first()
            )  # fmt: skip
        return self.pools[name]

    def indexes_kept(self) -> dict:
        return {Lead: ["mobile_key", "email_key"], PoolEvent: []}

    def write_batch(self, batch) -> None:
        rows = self._parse(batch)
        if not self.pipelined:
            # Earlier batches are in the database already (this transaction or
            # committed): the lookup finds them as it finds older leads.
            self.sync()
            found = []
            for column in ("mobile_key", "email_key"):
                found.append(bulk.lookup(Lead, ("id", column), column, {d[column] for d in rows}))
            self._write(rows, *found)
            return
        # Pipelined (PostgreSQL, background writer): this batch's lookups and ids are
        # asked for now, in the writer's thread, behind the COPYs already handed to it;
        # the batch before is written with the answers it asked for one batch ago. The
        # caller never waits for a COPY before its lookups (the server inserts one batch
        # while this thread parses the next and checks the one before), and the writer's
        # queue holds at most one batch more than before.
        asked = self._ask(rows)
        self._write_pending()
        self.pending = (rows, asked)

    def _parse(self, batch) -> list[dict]:
        """The batch's good rows, with their owner or pool and their duplicate keys."""
        rows = []
        default_pool = self.default_pool.pk if self.default_pool else None
        owners, resolve = self.owners, self.ctx.owners.resolve
        for number, row, _cells in batch:
            data = self.parse_row(number, row, self.parsers)
            if not data.get("name") and data.get("company"):
                data["name"] = data["company"][:100]  # 线索名称 is often the company
            if not data.get("name"):
                self.required(number, data, "name")
            pool_name = data.pop("pool", "")
            pool_id = default_pool
            if pool_name:
                pool_id = self._pool(pool_name)
                if pool_id is None:
                    self.bad(number, "pool", _("no such public pool"))
            if pool_id:
                data.pop("owner", None)
                data["owner_id"], data["pool_id"] = None, pool_id
            else:  # self.owner, with the users of this file remembered
                value = data.pop("owner", "") or ""
                owner_id = owners.get(value)
                if owner_id is None:
                    try:
                        owner_id = owners[value] = resolve(value)
                    except BadValue as error:
                        self.bad(number, "owner", error.reason)
                if owner_id is not None:
                    data["owner_id"] = owner_id
            if self.row_bad:
                continue
            data["mobile_key"] = phone_key(data.get("mobile")) or phone_key(data.get("phone"))
            data["email_key"] = email_key(data.get("email"))
            data["company_key"] = normalize_company(data.get("company"))
            rows.append(data)
        return rows

    @property
    def pipelined(self) -> bool:
        return self.writer is not None and bulk.connection.vendor == "postgresql"

    @functools.cached_property
    def probes(self) -> dict[str, str]:
        """The lookup of leads by each key column (``bulk.lookup``'s statement)."""
        return {column: bulk.probe_sql(Lead, ("id", column), column)
                for column in ("mobile_key", "email_key")}  # fmt: skip

    def _ask(self, rows):
        """The future answer of the batch's lookups (mobile, e-mail) and of as many
        lead and event ids as it has rows, run in the writer's thread after the COPYs
        handed to it so far."""
        statements = []
        for column in ("mobile_key", "email_key"):
            keys = [k for k in {d[column] for d in rows} if k]
            statements.append((self.probes[column], [keys]) if keys else None)
        for model in (Lead, PoolEvent):
            sequence = bulk.sequence_of(model)
            statements.append((bulk.NEXTVAL, [sequence, len(rows)]) if rows else None)
        return self.writer.submit_queries(statements)

    def _write_pending(self) -> None:
        """Write the batch whose lookups were asked for last (if any)."""
        if self.pending is None:
            return
        (rows, asked), self.pending = self.pending, None
        try:
            with bulk.connection.wrap_database_errors:
                mobiles, emails, lead_ids, event_ids = asked.result()
        except Exception:
            self.writer.wait()  # an earlier COPY's own error first: why these did not run
            raise
        # Ids come in order from the sequence; those a batch's duplicates left unused
        # go to the next batch, so a file's leads still get consecutive ids.
        self.spare_ids[0].extend(row[0] for row in lead_ids)
        self.spare_ids[1].extend(row[0] for row in event_ids)
        # The batch written just before (its COPY may have run after this batch's
        # lookups): its keys are known here.
        recent, self.recent = self.recent, {}
        self._write(rows, mobiles, emails, self.spare_ids[0], self.spare_ids[1], recent)

    def sync(self) -> None:
        if self.pipelined:
            self._write_pending()
            if self.lead_counts:  # before the COPYs' wait: the statement waits for them
                lead_counts.add_counts(self.lead_counts)
                self.lead_counts.clear()
        super().sync()

    def _write(self, rows, mobiles, emails, lead_ids=None, event_ids=None, recent=None):
        """Write the batch's ``rows`` given the leads found by their keys (``mobiles``,
        ``emails``: (id, key) rows). Ids: taken from the front of ``lead_ids`` and
        ``event_ids`` (enough for all rows), else allocated here. ``recent``: key → id of
        leads written but perhaps not yet visible to those lookups."""
        existing = {}
        for pk, key in mobiles:
            existing.setdefault(key, pk)
        for pk, key in emails:
            existing.setdefault(key, pk)
        for key, pk in (recent or {}).items():
            existing.setdefault(key, pk)
        mode = self.mode
        created = self.ctx.created.get("leads.lead", [])
        new, updates, seen = [], {}, {}
        for data in rows:
            keys = [k for k in (data["mobile_key"], data["email_key"]) if k]
            match = None
            for k in keys:
                match = existing.get(k) or seen.get(k)
                if match:
                    break
            if match and mode != OnDuplicate.CREATE:
                if (
                    mode == OnDuplicate.UPDATE and match != PENDING
                    and match not in self.updated and not bulk.in_ranges(created, match)
                ):  # fmt: skip
                    self.updated.add(match)
                    updates[match] = {k: v for k, v in data.items() if k in (
                        "name", "company", "title", "phone", "wechat", "source", "industry",
                        "notes")}  # fmt: skip
                else:
                    self.count("duplicate")
                continue
            for key in keys:
                seen.setdefault(key, PENDING)
            new.append(data)
        if lead_ids is None:
            ids = bulk.allocate_ids(Lead, len(new))
            event_ids = bulk.allocate_ids(PoolEvent, len(new))
        else:
            ids, event_ids, spare = lead_ids[: len(new)], event_ids[: len(new)], event_ids
            del lead_ids[: len(new)], spare[: len(new)]
        actor = self.ctx.actor.pk
        now = bulk.datetime_param()(self.ctx.now)  # adapted once for the whole batch
        # The text fields the file has go in each row; those it lacks are one constant "".
        given = tuple(f for f in LEAD_TEXT if f in self.mapped or f in LEAD_ALWAYS)
        lead_text = operator.itemgetter(*given)
        constants = {**dict.fromkeys(set(LEAD_TEXT) - set(given), ""), "created_at": now,
                     "updated_at": now, "created_by_id": actor, "version": 1,
                     "status": LeadStatus.NEW}  # fmt: skip
        event_constants = {"kind": PoolEventKind.CREATE, "by_id": actor, "at": now,
                           "reason": ""}  # fmt: skip
        lead_columns, event_columns = LEAD_COLUMNS + given, EVENT_COLUMNS
        lead_tail = event_tail = ()
        if bulk.connection.vendor == "postgresql":
            # Each row whole, constants included: COPY sends every value of every row
            # anyway, and insert_tuples then makes no second tuple per row with them
            # appended. (SQLite writes the constants into the statement instead.)
            lead_columns, lead_tail = bulk.whole_rows(Lead, lead_columns, constants)
            event_columns, event_tail = bulk.whole_rows(PoolEvent, event_columns, event_constants)
            constants = event_constants = None
        inserts, events = [], []
        remember = self.recent if self.pipelined else None
        for pk, event_id, data in zip(ids, event_ids, new, strict=True):
            owned, pool = data.get("owner_id"), data.get("pool_id")
            try:
                texts = lead_text(data)
            except KeyError:  # not expected: every mapped field of a good row is read
                texts = operator.itemgetter(*given)({**LEAD_BLANK, **data})
            inserts.append((pk, owned, now if owned else None, pool, *texts, *lead_tail))
            events.append((event_id, pk, pool, owned, *event_tail))
            if remember is not None:
                if data["mobile_key"]:
                    remember.setdefault(data["mobile_key"], pk)
                if data["email_key"]:
                    remember.setdefault(data["email_key"], pk)
        # Updates first: with a background writer, a statement after the COPYs would wait
        # for them.
        with lead_counts.moving_ids(updates):  # the lead counts (leads.summaries)
            self.update_existing(Lead, updates)
        keys = ((i[1], i[3], data.get("source"), LeadStatus.NEW)
                for i, data in zip(inserts, new, strict=True))  # fmt: skip
        if self.pipelined:  # counted here, added in one statement at the end (sync)
            self.lead_counts.update(keys)
        else:
            lead_counts.add_keys(keys)
        bulk.insert_tuples(Lead, lead_columns, inserts, adapted=LEAD_ADAPTED,
                           constants=constants, writer=self.writer,
                           checks=self.checks)  # fmt: skip
        bulk.insert_tuples(PoolEvent, event_columns, events, adapted=("at",),
                           constants=event_constants, writer=self.writer,
                           checks=self.checks)  # fmt: skip
        self.ctx.record_created(Lead, ids)
        self.ctx.record_created(PoolEvent, event_ids)
        self.count("new", len(ids))


class _Lazy(dict):
    """The importer of each kind; the larger ones load when first asked for."""

    def __missing__(self, key):
        if key == "opportunities":
            from .opportunities import OpportunityImporter as found
        elif key == "activities":
            from .activities import ActivityImporter as found
        elif key == "orders":
            from .sales import ContractImporter as found
        elif key == "payments":
            from .sales import PaymentImporter as found
        else:
            raise KeyError(key)
        return found


IMPORTERS = _Lazy(accounts=AccountImporter, contacts=ContactImporter, leads=LeadImporter)
