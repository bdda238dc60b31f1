"""The large-load paths of the importer: deferred SQLite indexes, duplicates found across
batches without keeping every key in memory, the stage history spooled to disk, and the
key lookups that bypass the ORM."""

import csv

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from loudou.imports import bulk, importers
from loudou.imports.models import JobStatus
from loudou.imports.services import create_job, run_job
from loudou.imports.spool import HistorySpool
from loudou.leads.models import Lead
from loudou.pipeline.models import Opportunity

from .test_imports_jobs import history_of


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def leads_file(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["线索名称", "手机", "邮箱", "备注"])
        out.writerows(rows)
    return path


def index_sql(table):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s "
            "AND sql IS NOT NULL ORDER BY name",
            [table],
        )
        return cursor.fetchall()


sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="indexes are deferred on SQLite only"
)


@sqlite_only
@pytest.mark.parametrize("outcome", ["done", "refused"])
def test_a_large_load_defers_indexes_and_puts_them_back(org, tmp_path, monkeypatch, outcome):
    """While a large all-or-nothing load runs, the lead table's secondary indexes are
    gone except those its duplicate check reads (mobile, e-mail); afterwards — imported
    or refused and rolled back — exactly the same indexes exist again."""
    monkeypatch.setattr(bulk, "DEFER_INDEXES_FROM", 5)
    monkeypatch.setattr(importers, "BATCH", 4)
    before = index_sql("leads_lead")
    rows = [[f"线索{i}", f"1390000{i:04d}", f"l{i}@example.cn", ""] for i in range(12)]
    if outcome == "refused":
        rows.append(["坏行", "13900009999", "not-an-address", ""])
    during = []

    def progress(done, total):
        during.append({name for name, _sql in index_sql("leads_lead")})

    job = create_job(actor=org.admin, kind="leads", file=leads_file(tmp_path / "l.csv", rows))
    job = run_job(job, progress=progress)
    assert job.status == (JobStatus.DONE if outcome == "done" else JobStatus.REFUSED)
    names = {name for name, _sql in before}
    kept = {n for n in names if "mobile_key" in n or "email_key" in n}
    assert len(kept) == 2 and during and all(seen == kept for seen in during)
    assert index_sql("leads_lead") == before
    assert Lead.objects.count() == (12 if outcome == "done" else 0)


@sqlite_only
def test_small_loads_and_committed_batches_keep_their_indexes(org, tmp_path, monkeypatch):
    """Below the threshold, and in skip-bad-rows mode (each batch commits on its own),
    no index is ever dropped."""
    monkeypatch.setattr(importers, "BATCH", 4)
    before = {name for name, _sql in index_sql("leads_lead")}
    rows = [[f"线索{i}", f"1390000{i:04d}", "", ""] for i in range(10)]
    for options, threshold in (({}, 100), ({"skip_bad_rows": True}, 5)):
        monkeypatch.setattr(bulk, "DEFER_INDEXES_FROM", threshold)
        seen = []

        def progress(done, total, seen=seen):
            seen.append({name for name, _sql in index_sql("leads_lead")})

        job = create_job(actor=org.admin, kind="leads", on_duplicate="create",
                         file=leads_file(tmp_path / "l.csv", rows), **options)  # fmt: skip
        run_job(job, progress=progress)
        assert seen and all(s == before for s in seen)


def pg_indexes(table) -> dict[str, str]:
    """PostgreSQL: ``table``'s indexes, name → definition."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s",
                       [table])  # fmt: skip
        return dict(cursor.fetchall())


def run_leads_watching_indexes(org, tmp_path, rows):
    """Import ``rows`` of leads (all or nothing), noting the lead table's index names
    after each batch: (job, [names seen…])."""
    during = []

    def progress(done, total):
        during.append(set(pg_indexes("leads_lead")))

    job = create_job(actor=org.admin, kind="leads", file=leads_file(tmp_path / "l.csv", rows))
    return run_job(job, progress=progress), during


@pytest.mark.postgres_only
@pytest.mark.parametrize("outcome", ["done", "refused"])
def test_a_large_load_into_an_empty_table_defers_its_indexes_on_postgresql(
    org, tmp_path, monkeypatch, outcome
):
    """On PostgreSQL a large all-or-nothing load into an empty table drops the table's
    secondary indexes but those its duplicate check reads (mobile, e-mail) and its
    unique ones, and builds them again at the end: afterwards — imported, or refused and
    rolled back — exactly the same indexes exist, with the same definitions, and the
    rows were checked as duplicates across batches all along."""
    monkeypatch.setattr(bulk, "DEFER_INDEXES_FROM", 5)
    monkeypatch.setattr(importers, "BATCH", 4)
    before = pg_indexes("leads_lead")
    rows = [[f"线索{i}", f"1390000{i:04d}", f"l{i}@example.cn", ""] for i in range(12)]
    rows.append(["又一条", "13900000003", "", ""])  # batch 4: a duplicate of row 4
    if outcome == "refused":
        rows.append(["坏行", "13900009999", "not-an-address", ""])
    job, during = run_leads_watching_indexes(org, tmp_path, rows)
    assert job.status == (JobStatus.DONE if outcome == "done" else JobStatus.REFUSED)
    kept = {name for name, sql in before.items()
            if "UNIQUE" in sql or "(mobile_key" in sql or "(email_key" in sql}  # fmt: skip
    assert len(kept) >= 3 and kept < set(before)  # the key, mobile, e-mail; others go
    assert during and all(seen == kept for seen in during)
    assert pg_indexes("leads_lead") == before
    assert Lead.objects.count() == (12 if outcome == "done" else 0)
    if outcome == "done":
        assert job.counts["duplicate"] == 1


@pytest.mark.postgres_only
@pytest.mark.parametrize("case", ["not empty", "in use"])
def test_a_table_not_empty_or_in_use_keeps_its_indexes_on_postgresql(
    org, tmp_path, monkeypatch, case
):
    """PostgreSQL defers no index of a table that holds rows (its readers would wait for
    the import) or that another session is using at that moment: the import takes the
    table's lock only if it is free at once, so it neither waits for that session nor
    makes it wait; it loads the rows with the indexes in place."""
    import psycopg

    monkeypatch.setattr(bulk, "DEFER_INDEXES_FROM", 5)
    monkeypatch.setattr(importers, "BATCH", 4)
    before = pg_indexes("leads_lead")
    other = None
    if case == "not empty":
        Lead.objects.create(name="老线索", mobile="13911112222", mobile_key="13911112222",
                            owner=org.admin)  # fmt: skip
    else:  # another session reading the table, its transaction still open
        params = connection.settings_dict
        other = psycopg.connect(dbname=params["NAME"], user=params["USER"],
                                password=params["PASSWORD"], host=params["HOST"],
                                port=params["PORT"] or None)  # fmt: skip
        other.execute("SELECT count(*) FROM leads_lead").fetchone()
    try:
        rows = [[f"线索{i}", f"1390000{i:04d}", "", ""] for i in range(12)]
        job, during = run_leads_watching_indexes(org, tmp_path, rows)
    finally:
        if other is not None:
            other.close()
    assert job.status == JobStatus.DONE, (job.errors, job.message)
    assert during and all(seen == set(before) for seen in during)
    assert Lead.objects.filter(name__startswith="线索").count() == 12


def test_duplicates_are_found_across_batches(org, tmp_path, monkeypatch):
    """Only the current batch's keys are held in memory: a row repeating a lead of an
    earlier batch (same mobile, or same e-mail) is still a duplicate, found in the
    database, and "update" changes an existing lead once however often it recurs."""
    monkeypatch.setattr(importers, "BATCH", 3)
    Lead.objects.create(name="老线索", mobile="13911112222", mobile_key="13911112222",
                        owner=org.admin)  # fmt: skip
    rows = [
        ["甲", "13800000001", "a@example.cn", ""],
        ["乙", "13800000002", "", ""],
        ["丙", "", "c@example.cn", ""],
        ["甲又", "13800000001", "", ""],  # batch 2: mobile of row 1
        ["丙又", "", "C@Example.cn", ""],  # e-mail of row 3 (normalised)
        ["老", "13911112222", "", "第一次"],
        ["老又", "139-1111-2222", "", "第二次"],  # batch 3
    ]
    job = run_job(create_job(actor=org.admin, kind="leads", on_duplicate="update",
                             file=leads_file(tmp_path / "l.csv", rows)))  # fmt: skip
    assert job.status == JobStatus.DONE, job.errors
    assert job.counts["new"] == 3
    assert job.counts["updated"] == 1 and job.counts["duplicate"] == 3
    assert Lead.objects.count() == 4
    assert Lead.objects.get(mobile_key="13911112222").notes == "第一次"


def test_history_spool_returns_each_deals_events_in_time_order():
    """The on-disk history gives a batch of deals their events sorted by time (ties in
    file order), the stages' earliest positions per pipeline, and the probabilities."""
    spool = HistorySpool()
    try:
        spool.extend(
            [("O2", 300.0, "B", None), ("O1", 200.0, "B", "10.00"), ("O1", 100.0, "A", None)],
            [("B", 50), ("B", 50), ("A", 10)],
        )
        spool.extend([("O2", 100.0, "A", None), ("O3", 100.0, "X", None)], [("A", 20)])
        spool.note_pipeline("O3", "Other")
        spool.finish()
        taken = spool.take(["O1", "O2", "O9", ""])
        assert taken == {"O1": [(100.0, "A", None), (200.0, "B", "10.00")],
                         "O2": [(100.0, "A", None), (300.0, "B", None)]}  # fmt: skip
        positions = {(p, s): pos for p, s, pos, _first in spool.stage_positions("Main")}
        assert positions == {("Main", "A"): 0, ("Main", "B"): 1, ("Other", "X"): 0}
        assert spool.probs["A"] == [30, 2] and spool.probs["B"] == [100, 2]
    finally:
        spool.close()


def test_history_reaches_deals_in_every_batch(org, tmp_path, monkeypatch):
    """With batches of two deals, each deal still gets exactly its own history rows,
    whichever batch it lands in and wherever its rows are in the history file."""
    monkeypatch.setattr(importers, "BATCH", 2)
    deals = tmp_path / "deals.csv"
    history = tmp_path / "history.csv"
    with open(deals, "w", newline="") as d, open(history, "w", newline="") as h:
        dw, hw = csv.writer(d), csv.writer(h)
        dw.writerow(["id", "name", "account", "stage", "status", "expected_close_date"])
        hw.writerow(["opportunity_id", "stage", "changed_at", "probability"])
        for i in range(5):
            dw.writerow([f"O{i}", f"Deal {i}", "客户", "C", "open", "2024-06-30"])
        for i in reversed(range(5)):  # the history file in the other order
            hw.writerow([f"O{i}", "C", f"2024-01-{10 + i:02d}T08:00:00Z", 60])
            hw.writerow([f"O{i}", "A", f"2024-01-0{1 + i}T08:00:00Z", 10])
    job = run_job(create_job(actor=org.admin, kind="opportunities", file=deals,
                             history=history))  # fmt: skip
    assert job.status == JobStatus.DONE, job.errors
    for i in range(5):
        opp = Opportunity.objects.get(name=f"Deal {i}")
        assert history_of(opp) == [("created", None, "A", None),
                                   ("moved", "A", "C", 9 * 86400)]  # fmt: skip


def test_lookup_reads_keys_in_chunks(org, monkeypatch):
    """bulk.lookup answers every key however many there are (chunked IN lists), and
    ignores empty keys."""
    monkeypatch.setattr(bulk, "LOOKUP_CHUNK", 2)
    for i in range(5):
        Lead.objects.create(name=f"L{i}", mobile_key=f"k{i}", owner=org.admin)
    found = bulk.lookup(Lead, ("name", "mobile_key"), "mobile_key",
                        ["k0", "k2", "k4", "k9", "", None])  # fmt: skip
    assert sorted(found) == [("L0", "k0"), ("L2", "k2"), ("L4", "k4")]


def test_funnel_summaries_follow_an_import_and_its_undo(org, tmp_path):
    """The funnel summaries (pipeline.summaries) are up to date when an opportunity import
    ends — no report has to catch up — and equal a rebuild from scratch; after the undo
    they hold nothing of the imported deals."""
    from loudou.imports.services import undo
    from loudou.pipeline.models import FunnelCount, StayCount
    from loudou.pipeline.summaries import is_fresh, rebuild_summaries

    deals = tmp_path / "deals.csv"
    history = tmp_path / "history.csv"
    with open(deals, "w", newline="") as d, open(history, "w", newline="") as h:
        dw, hw = csv.writer(d), csv.writer(h)
        dw.writerow(["id", "name", "account", "amount", "stage", "status", "expected_close_date"])
        hw.writerow(["opportunity_id", "stage", "changed_at", "probability"])
        for i in range(4):
            dw.writerow([f"O{i}", f"Deal {i}", f"客户{i % 2}", 1000 * (i + 1), "C", "open",
                         "2024-06-30"])  # fmt: skip
            hw.writerow([f"O{i}", "A", f"2024-01-0{1 + i}T08:00:00Z", 10])
            hw.writerow([f"O{i}", "C", f"2024-01-1{i}T08:00:00Z", 60])
    job = run_job(create_job(actor=org.admin, kind="opportunities", file=deals,
                             history=history))  # fmt: skip
    assert job.status == JobStatus.DONE, job.errors
    assert is_fresh()

    def snapshot():
        counts = sorted(
            FunnelCount.objects.values_list(
                "pipeline_id",
                "owner_key",
                "furthest_stage_id",
                "status",
                "count",
                "amount_cents",
                "stays_seconds",
            )
        )
        stays = sorted(StayCount.objects.values_list("stage_id", "hour", "count", "seconds"))
        return counts, stays  # fmt: skip

    kept = snapshot()
    assert sum(row[4] for row in kept[0]) == 4 and kept[1]
    rebuild_summaries()
    assert snapshot() == kept
    undo(job, actor=org.admin)
    assert snapshot() == ([], [])


def raw_rows(model, ids):
    """Every column but the id of ``model``'s rows ``ids``, as the database holds them."""
    quote = connection.ops.quote_name
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(map(quote, columns))} FROM {quote(model._meta.db_table)} "
            f"WHERE id IN ({', '.join(['%s'] * len(ids))}) ORDER BY id",
            list(ids),
        )
        return [tuple(row) for row in cursor.fetchall()]


def test_tuple_inserts_write_what_dict_inserts_write(org):
    """core.db.insert_tuples (rows as tuples in column order, datetimes adapted by the
    caller through datetime_param or by the call) writes exactly the rows insert_rows
    writes from dicts: aware datetimes in any zone (stored as the same instant), Decimal
    amounts and probabilities, dates, and the defaults of the columns left out (JSON
    included; nullable ones, left out of the INSERT, are NULL as the dict path writes)."""
    from datetime import UTC, date, datetime
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from loudou.customers.models import Account
    from loudou.pipeline.models import Pipeline, Stage

    pipeline = Pipeline.objects.create(name="P", position=99)
    stage = Stage.objects.create(pipeline=pipeline, name="S", position=10,
                                 default_probability=Decimal("25.00"))  # fmt: skip
    account = Account.objects.create(name="客户", name_key="客户", owner=org.admin,
                                     created_by=org.admin)  # fmt: skip
    shanghai = ZoneInfo("Asia/Shanghai")
    values = [
        {"name": "深夜", "amount": Decimal("1234567.89"), "probability": Decimal("33.33"),
         "created_at": datetime(2024, 3, 1, 0, 30, 15, 250000, tzinfo=shanghai),
         "closed_at": None, "expected_close_date": date(2024, 2, 29)},
        {"name": "UTC", "amount": Decimal("0.05"), "probability": Decimal("100"),
         "created_at": datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC),
         "closed_at": datetime(2024, 1, 1, 8, 0, tzinfo=shanghai), "expected_close_date": None},
    ]  # fmt: skip
    common = {"owner_id": org.admin.pk, "created_by_id": org.admin.pk,
              "account_id": account.pk, "pipeline_id": pipeline.pk, "stage_id": stage.pk,
              "furthest_stage_id": stage.pk, "status": "open", "version": 1}  # fmt: skip
    dict_ids = bulk.allocate_ids(Opportunity, len(values))
    bulk.insert_rows(Opportunity, [
        {"id": pk, **common, **v, "updated_at": v["created_at"],
         "stage_entered_at": v["created_at"]}
        for pk, v in zip(dict_ids, values, strict=True)
    ])  # fmt: skip
    columns = ("id", *common, "name", "amount", "probability", "created_at", "closed_at",
               "expected_close_date", "updated_at", "stage_entered_at")  # fmt: skip
    tuple_ids = bulk.allocate_ids(Opportunity, len(values))
    bulk.insert_tuples(Opportunity, columns, [
        (pk, *common.values(), v["name"], v["amount"], v["probability"], v["created_at"],
         v["closed_at"], v["expected_close_date"], v["created_at"], v["created_at"])
        for pk, v in zip(tuple_ids, values, strict=True)
    ])  # fmt: skip
    adapt = bulk.datetime_param()
    adapted_ids = bulk.allocate_ids(Opportunity, len(values))
    bulk.insert_tuples(Opportunity, columns, [
        (pk, *common.values(), v["name"], v["amount"], v["probability"],
         adapt(v["created_at"]), v["closed_at"] and adapt(v["closed_at"]),
         v["expected_close_date"], adapt(v["created_at"]), adapt(v["created_at"]))
        for pk, v in zip(adapted_ids, values, strict=True)
    ], adapted=("created_at", "closed_at", "updated_at", "stage_entered_at"))  # fmt: skip

    expected = raw_rows(Opportunity, dict_ids)
    assert raw_rows(Opportunity, tuple_ids) == expected
    assert raw_rows(Opportunity, adapted_ids) == expected
    for pk, v in zip(tuple_ids + adapted_ids, values * 2, strict=True):
        opp = Opportunity.objects.get(pk=pk)
        assert (opp.name, opp.amount, opp.probability, opp.created_at, opp.closed_at,
                opp.expected_close_date, opp.checklist_done) == (
            v["name"], v["amount"], v["probability"].quantize(Decimal("0.01")),
            v["created_at"], v["closed_at"], v["expected_close_date"], {},
        )  # fmt: skip


def test_compiled_row_parser_reads_and_reports_like_the_field_parsers():
    """The per-layout row parser (importers.compile_row_parser) gives each mapped field its
    parser's value, trims text, reports every bad cell of a row (too long, unreadable)
    by field and leaves it out, reads a missing cell of a short row as empty, and passes
    spreadsheet values (numbers) to the text parser."""
    from loudou.imports.values import parse_amount

    class Recorder:
        def __init__(self):
            self.errors = []

        def bad(self, number, name, reason):
            self.errors.append((number, name, reason))

    plan = [("name", 0, importers._text(5)), ("notes", 1, importers._text()),
            ("amount", 2, parse_amount), ("phone", 4, importers._text(30))]  # fmt: skip
    parse = importers.compile_row_parser(plan)
    ok = Recorder()
    assert parse(ok, 2, [" Ann ", " long note ", "1,234.5"]) == {
        "name": "Ann",
        "notes": "long note",
        "amount": parse_amount("1234.50"),
        "phone": "",
    }
    assert ok.errors == []
    assert parse(ok, 3, ["A", "", "", "", 13800138000.0])["phone"] == "13800138000"
    bad = Recorder()
    assert parse(bad, 4, ["Too long", "x", "many", "", ""]) == {"notes": "x", "phone": ""}
    assert [(n, f) for n, f, _r in bad.errors] == [(4, "name"), (4, "amount")]


@pytest.mark.parametrize("value", ["13812345678", " 13812345678", "+86 138-1234 5678",
                                   "8613812345678", "008613812345678", "１３８１２３４５６７８",
                                   "86", "", None, "021-6123 4567"])  # fmt: skip
def test_phone_key_is_normalize_phone(value):
    """The lead import's phone key fast path gives what leads.normalize_phone gives."""
    from loudou.leads.normalize import normalize_phone

    assert importers.phone_key(value) == normalize_phone(value)


@pytest.mark.parametrize("value", ["Lead@Example.CN ", "ａｂｃ@ＥＸ.cn", "", None, "İ@x.cn"])
def test_email_key_is_normalize_email(value):
    """The lead import's e-mail key fast path gives what leads.normalize_email gives."""
    from loudou.leads.normalize import normalize_email

    assert importers.email_key(value) == normalize_email(value)


@pytest.mark.parametrize("value", ["1,234", "123,400", "1,234,567.50", "12,345.6", "0,001",
                                   "999,999,999,999,999,999,999.123456"])  # fmt: skip
def test_grouped_amounts_read_as_the_general_parser_reads_them(value):
    """An amount with thousands separators ("1,234.50", as exports write them) takes a
    fast path that gives the very Decimal (value and exponent) the general parser gives
    (a leading space sends the same text through it)."""
    from loudou.imports.values import parse_decimal

    fast, general = parse_decimal(value), parse_decimal(" " + value)
    assert (str(fast), fast.as_tuple()) == (str(general), general.as_tuple())


def test_constant_columns_and_many_rows_per_statement_write_what_rows_write(org, monkeypatch):
    """insert_tuples with ``constants`` (SQLite: written into the statement as literals —
    text with quotes and "%s", a TextChoices value, an integer, NULL) and rows sent many
    to a statement (a few rows per statement here, with a shorter last statement) stores
    exactly what the same values given in every row store, row for row."""
    from loudou.core import db
    from loudou.leads.choices import LeadStatus

    monkeypatch.setattr(db, "SQLITE_VALUES_PER_STATEMENT", 9)  # 3 rows of 3 values
    now = bulk.datetime_param()(org.admin.date_joined)
    texts = [f"线索{i}" for i in range(7)]
    fixed = {"notes": "it's 100%s 'quoted'", "status": LeadStatus.NEW, "version": 3,
             "created_by_id": org.admin.pk, "created_at": now, "updated_at": now,
             "pool_id": None}  # fmt: skip
    row_ids = bulk.allocate_ids(Lead, len(texts))
    bulk.insert_tuples(Lead, ("id", "name", "mobile_key", *fixed), [
        (pk, name, f"138{i:08d}", *fixed.values())
        for i, (pk, name) in enumerate(zip(row_ids, texts, strict=True))
    ], adapted=("created_at", "updated_at"))  # fmt: skip
    const_ids = bulk.allocate_ids(Lead, len(texts))
    bulk.insert_tuples(Lead, ("id", "name", "mobile_key"), [
        (pk, name, f"138{i:08d}")
        for i, (pk, name) in enumerate(zip(const_ids, texts, strict=True))
    ], adapted=("created_at", "updated_at"), constants=fixed)  # fmt: skip
    assert raw_rows(Lead, const_ids) == raw_rows(Lead, row_ids)
    lead = Lead.objects.get(pk=const_ids[-1])
    assert (lead.name, lead.notes, lead.status, lead.version) == (
        "线索6", "it's 100%s 'quoted'", "new", 3)  # fmt: skip


@pytest.mark.django_db
def test_microsecond_times_are_stored_as_datetimes_are(org, monkeypatch):
    """The deal import carries its moments as whole microseconds since the epoch
    (bulk.micros) and hands them to insert_tuples through bulk.micros_param: the database
    stores exactly what it stores for the same aware datetime through datetime_param —
    any zone, with and without microseconds, before 1970, the first and last instants a
    datetime holds, across midnight and the turn of a year. On PostgreSQL both through
    the binary COPY (which writes the microseconds as they are) and through the text
    COPY a call falls back to, and with microseconds and datetimes in one column."""
    import random
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from loudou.core import db
    from loudou.customers.models import Account

    shanghai = ZoneInfo("Asia/Shanghai")
    moments = [
        datetime(2024, 3, 1, 0, 30, 15, 250000, tzinfo=shanghai),
        datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2024, 1, 1, 7, 59, 59, 999999, tzinfo=shanghai),
        datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(1, 1, 2, 8, 0, tzinfo=shanghai),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    rng = random.Random(7)
    start = datetime(1900, 1, 1, tzinfo=UTC)
    moments += [start + timedelta(microseconds=rng.randrange(0, 200 * 365 * 86400 * 10**6))
                for _ in range(1000)]  # fmt: skip
    moments += [start + timedelta(seconds=rng.randrange(0, 200 * 365 * 86400))
                for _ in range(1000)]  # fmt: skip
    columns = ("id", "name", "name_key", "owner_id", "created_by_id", "version", "created_at",
               "updated_at")  # fmt: skip

    written = []

    def stored(params) -> list[tuple]:
        """The two timestamp columns as the database holds them, written from ``params``."""
        ids = bulk.allocate_ids(Account, len(params))
        written[:] = ids
        bulk.insert_tuples(Account, columns, [
            (pk, "客户", "客户", org.admin.pk, org.admin.pk, 1, param, param)
            for pk, param in zip(ids, params, strict=True)
        ], adapted=("created_at", "updated_at"))  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT created_at, updated_at FROM customers_account WHERE id BETWEEN %s AND %s"
                " ORDER BY id", [ids[0], ids[-1]],
            )  # fmt: skip
            return [tuple(row) for row in cursor.fetchall()]

    adapt, fast = bulk.datetime_param(), bulk.micros_param()
    expected = stored([adapt(m) for m in moments])
    kept = Account.objects.filter(pk__in=written).order_by("pk").values_list("created_at")
    assert [at for (at,) in kept] == moments  # the same instants
    micros = [fast(bulk.micros(m)) for m in moments]
    assert stored(micros) == expected
    if connection.vendor == "postgresql":
        fields = [Account._meta.get_field("created_at")]
        assert db._binary_types(fields, [(micros[0],), (None,)]) == [db._MOMENTS]
        mixed = [m if i % 2 else adapt(moments[i]) for i, m in enumerate(micros)]
        assert db._binary_types(fields, [(m,) for m in mixed]) is None  # as text
        assert stored(mixed) == expected
        monkeypatch.setattr(db, "_binary_types", lambda fields, rows: None)
        assert stored(micros) == expected


@pytest.mark.django_db
def test_numbers_made_by_decimal_param_are_stored_as_decimals_are(org, monkeypatch):
    """What bulk.decimal_param makes of a Decimal (SQLite: its text; PostgreSQL: the
    numeric's binary form) is stored exactly as the Decimal itself is — any sign and
    scale, rounded to the column's scale the same way, its largest values, zeros with and
    without places. On PostgreSQL both through the binary COPY (which writes the bytes
    as they are) and through the text COPY a call falls back to, and with bytes and
    Decimals in one column."""
    import random
    from decimal import Decimal

    from loudou.core import db
    from loudou.customers.models import Account

    numbers = [Decimal(text) for text in (
        "0", "0.000000", "0E-10", "-0.000001", "999.999999", "-999.999999", "1.5",
        "1.0000005", "-1.0000005", "2.0000015", "12", "1E+2", "123.4560", "-0.5",
    )]  # fmt: skip
    rng = random.Random(11)
    numbers += [Decimal(rng.randrange(-999_999_999, 999_999_999)).scaleb(-rng.randrange(6, 10))
                for _ in range(2000)]  # fmt: skip
    columns = ("id", "name", "name_key", "owner_id", "created_by_id", "version", "created_at",
               "updated_at", "latitude", "longitude")  # fmt: skip
    now = bulk.datetime_param()(timezone.now())

    def stored(params) -> list[tuple]:
        """The two numeric columns as the database holds them, written from ``params``."""
        ids = bulk.allocate_ids(Account, len(params))
        bulk.insert_tuples(Account, columns, [
            (pk, "客户", "客户", org.admin.pk, org.admin.pk, 1, now, now, param, param)
            for pk, param in zip(ids, params, strict=True)
        ], adapted=("created_at", "updated_at"))  # fmt: skip
        kept = Account.objects.filter(pk__in=ids).order_by("pk")
        return list(kept.values_list("latitude", "longitude"))

    expected = stored(numbers)
    assert expected[:4] == [(Decimal(0), Decimal(0))] * 3 + [(Decimal("-0.000001"),) * 2]
    param = bulk.decimal_param()
    made = [param(n) for n in numbers]
    assert stored(made) == expected
    if connection.vendor == "postgresql":  # half away from zero (SQLite: through a float)
        assert expected[7:10] == [(Decimal("1.000001"),) * 2, (Decimal("-1.000001"),) * 2,
                                  (Decimal("2.000002"),) * 2]  # fmt: skip
        fields = [Account._meta.get_field("latitude")]
        assert db._binary_types(fields, [(made[0],), (None,)]) == [db._NUMERIC_BYTES]
        mixed = [m if i % 2 else numbers[i] for i, m in enumerate(made)]
        assert db._binary_types(fields, [(m,) for m in mixed]) is None  # as text
        assert stored(mixed) == expected
        monkeypatch.setattr(db, "_binary_types", lambda fields, rows: None)
        assert stored(made) == expected


def test_rebuild_on_microseconds_answers_as_on_datetimes():
    """history.rebuild gives the same changes, stays, stages and times whether the moments
    are datetimes or whole microseconds since the epoch (what the import passes), over
    random histories: moves back and forth, reopenings, ties, closes before the events."""
    import random
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from loudou.imports.history import StageInfo, rebuild

    opens = [StageInfo(i, "open", i * 10, Decimal(i * 10)) for i in range(1, 5)]
    won, lost = StageInfo(8, "won", 80, Decimal(100)), StageInfo(9, "lost", 90, Decimal(0))
    every = [*opens, won, lost]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rng = random.Random(11)

    def run(cast, case):
        created, events, status, stage, closed = case
        result = rebuild(
            created_at=cast(created),
            events=[(cast(at), every[s], amount) for at, s, amount in events],
            final_status=status, final_stage=stage, closed_at=cast(closed),
            first_open=opens[0], won_stage=won, lost_stage=lost,
        )  # fmt: skip
        back = (lambda v: v) if cast is moment else (
            lambda v: None if v is None else start + timedelta(microseconds=v - bulk.micros(start))
        )  # fmt: skip
        return (
            [(c.kind, c.from_stage, c.to_stage, back(c.at), c.probability, c.amount,
              c.stay_seconds) for c in result.changes],
            result.stage, result.furthest, result.status, back(result.stage_entered_at),
            back(result.closed_at),
        )  # fmt: skip

    def moment(minutes):
        return None if minutes is None else start + timedelta(minutes=minutes, microseconds=7)

    def micros(minutes):
        return None if minutes is None else bulk.micros(moment(minutes))

    for _ in range(3000):
        case = (
            rng.randrange(0, 40),
            [(rng.randrange(0, 40), rng.randrange(0, 6), rng.choice([None, Decimal(5)]))
             for _ in range(rng.randrange(0, 7))],
            rng.choice(["open", "won", "lost"]),
            rng.choice([None, *opens]),
            rng.choice([None, rng.randrange(0, 50)]),
        )  # fmt: skip
        assert run(micros, case) == run(moment, case), case


def test_history_spool_positions_follow_the_first_noted_pipeline():
    """stage_positions: a deal the deal file lists twice counts in the pipeline noted
    first; a deal it does not list counts in the default pipeline; each stage comes with
    its earliest position in any deal's time order and its first row in the file."""
    spool = HistorySpool()
    try:
        spool.extend([("O2", 5, "B", None), ("O1", 9, "C", None), ("O1", 1, "A", None),
                      ("O2", 1, "C", None), ("O9", 3, "C", None)])  # fmt: skip
        spool.note_pipeline("O1", "East")
        spool.note_pipeline("O2", "West")
        spool.note_pipeline("O1", "West")
        spool.finish()
        assert spool.stage_positions("Main") == [
            ("West", "B", 1, 1), ("East", "C", 1, 2), ("East", "A", 0, 3),
            ("West", "C", 0, 4), ("Main", "C", 0, 5),
        ]  # fmt: skip
    finally:
        spool.close()


def test_an_import_refreshes_its_lookup_tables_statistics_on_postgresql(org, tmp_path, monkeypatch):
    """On PostgreSQL an import refreshes the planner's statistics of the key columns its
    duplicate lookups read once ANALYZE_FROM rows are written and again each time the
    count doubles (a table filled from empty has none, and the planner then scans it
    whole for every batch's lookup); the rows written are the same. SQLite, whose
    planner needs no statistics to use the index, is left alone."""
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(importers, "BATCH", 2)
    monkeypatch.setattr(bulk, "ANALYZE_FROM", 3)
    path = leads_file(tmp_path / "leads.csv", [[f"线索{i}", f"1390000{i:04d}", "", ""]
                                               for i in range(9)])  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        job = run_job(create_job(actor=org.admin, kind="leads", file=path))
    assert job.status == JobStatus.DONE, (job.errors, job.message)
    analyzed = [q["sql"] for q in queries if q["sql"].startswith("ANALYZE")]
    if connection.vendor == "postgresql":  # after 4 rows and after 8, not after 2, 6 or 9
        assert analyzed == ['ANALYZE "leads_lead" ("mobile_key", "email_key")'] * 2
    else:
        assert analyzed == []
    assert sorted(Lead.objects.values_list("mobile_key", flat=True)) == [
        f"1390000{i:04d}" for i in range(9)
    ]


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(st.one_of(
    st.lists(st.integers(0, 80), max_size=10),  # any ids, repeats and gaps
    st.builds(lambda a, n: list(range(a, a + n)), st.integers(0, 80), st.integers(0, 12)),
), max_size=6))  # fmt: skip
def test_add_ranges_covers_exactly_the_ids_given_in_order(batches):
    """Batches of ids added in turn (each batch's ids at or after the last range, as a
    sequence gives them, or anywhere): the ranges cover exactly the ids given, each range
    is [first, last] with first <= last, and batches that continue the last range extend
    it instead of adding one."""
    ranges, given = [], set()
    for ids in batches:
        before = [list(r) for r in ranges]
        bulk.add_ranges(ranges, ids)
        given |= set(ids)
        covered = [pk for first, last in ranges for pk in range(first, last + 1)]
        assert set(covered) == given
        assert all(first <= last for first, last in ranges)
        run = sorted(set(ids))
        one_run = bool(run) and run[-1] - run[0] + 1 == len(run)
        if one_run and before and before[-1][0] <= run[0] <= before[-1][1] + 1:
            assert len(ranges) == len(before)  # the last range extended, none added
            assert ranges[-1] == [before[-1][0], max(before[-1][1], run[-1])]


@pytest.mark.parametrize("outcome", ["done", "failed"])
def test_an_import_collects_less_while_it_runs_and_puts_the_collector_back(
    org, tmp_path, monkeypatch, outcome
):
    """While a job runs, Python's cycle collector leaves the objects that existed before
    alone (frozen) and collects its young generation every GC_YOUNG objects; after the
    job — done, or failed on a bug — its thresholds are what they were and nothing is
    left frozen."""
    import gc

    from loudou.imports import engine

    monkeypatch.setattr(importers, "BATCH", 2)
    before = gc.get_threshold()
    seen = []

    def progress(done, total):
        seen.append((gc.get_threshold()[0], gc.get_freeze_count() > 0))
        if outcome == "failed":
            raise RuntimeError("a bug")

    path = leads_file(tmp_path / "l.csv", [[f"线索{i}", f"1390000{i:04d}", "", ""]
                                           for i in range(5)])  # fmt: skip
    job = run_job(create_job(actor=org.admin, kind="leads", file=path), progress=progress)
    assert job.status == (JobStatus.DONE if outcome == "done" else JobStatus.FAILED)
    assert seen and all(seen_now == (engine.GC_YOUNG, True) for seen_now in seen)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
