"""The PostgreSQL write path of large imports: binary COPY (only for values whose binary
form stores what the text form stores), the duplicate lookups as index probes from one
array parameter, and the background COPY writer of the lead import (same rows, errors
surface, nothing half-written)."""

from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from loudou.core import db
from loudou.customers.models import Account
from loudou.imports import bulk, importers
from loudou.imports.models import JobStatus
from loudou.imports.services import create_job, run_job
from loudou.leads.choices import LeadStatus
from loudou.leads.models import Lead, PoolEvent
from loudou.pipeline.models import Opportunity, Pipeline, Stage

from .test_imports_bulk import leads_file, raw_rows


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.postgres_only
def test_binary_copy_stores_what_text_copy_stores(org, monkeypatch):
    """The same opportunity rows COPYed in binary and (binary refused) as text are stored
    identically: Decimal and whole-number amounts, the same Decimal objects in several
    rows and equal values of other scales, dates, aware datetimes in two zones, NULLs,
    choices, text with tabs, quotes, backslashes and newlines, JSON defaults."""
    from zoneinfo import ZoneInfo

    pipeline = Pipeline.objects.create(name="P", position=99)
    stage = Stage.objects.create(pipeline=pipeline, name="S", position=10,
                                 default_probability=Decimal("25.00"))  # fmt: skip
    account = Account.objects.create(name="客户", name_key="客户", owner=org.admin,
                                     created_by=org.admin)  # fmt: skip
    shanghai = ZoneInfo("Asia/Shanghai")
    columns = ("id", "owner_id", "created_by_id", "account_id", "pipeline_id", "stage_id",
               "furthest_stage_id", "status", "version", "name", "amount", "probability",
               "created_at", "updated_at", "stage_entered_at", "closed_at",
               "expected_close_date")  # fmt: skip
    values = [
        ("tab\there \\ 'q' \"d\"\nline", Decimal("1234567.89"), Decimal("33.33"),
         datetime(2024, 3, 1, 0, 30, 15, 250000, tzinfo=shanghai), None, date(2024, 2, 29)),
        ("整数", 5000, 100, datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
         datetime(2024, 1, 1, 8, 0, tzinfo=shanghai), None),
    ]  # fmt: skip
    # The same Decimal objects again (a binary COPY encodes each object once), and equal
    # values of other scales in objects of their own.
    values += [
        ("同一对象", values[0][1], values[0][2], values[0][3], None, None),
        ("另一标度", Decimal("1234567.9"), Decimal("33.330"), values[0][3], None, None),
    ]

    def write(binary: bool) -> list[int]:
        if not binary:
            monkeypatch.setattr(db, "_binary_types", lambda fields, rows: None)
        ids = bulk.allocate_ids(Opportunity, len(values))
        bulk.insert_tuples(Opportunity, columns, [
            (pk, org.admin.pk, org.admin.pk, account.pk, pipeline.pk, stage.pk, stage.pk,
             "open", 1, name, amount, probability, at, at, at, closed, expected)
            for pk, (name, amount, probability, at, closed, expected)
            in zip(ids, values, strict=True)
        ])  # fmt: skip
        return ids

    fields = [Opportunity._meta.get_field(c) for c in columns]
    sample = [(1, 1, 1, 1, 1, 1, 1, "open", 1, *row[:3], row[3], row[3], row[3], *row[4:])
              for row in values]  # fmt: skip
    assert db._binary_types(fields, sample) is not None  # the binary path is taken
    binary_ids = write(binary=True)
    text_ids = write(binary=False)
    assert raw_rows(Opportunity, binary_ids) == raw_rows(Opportunity, text_ids)
    stored = Opportunity.objects.get(pk=binary_ids[0])
    assert stored.name == values[0][0] and stored.amount == values[0][1]
    stored_numbers = Opportunity.objects.filter(pk__in=binary_ids).order_by("pk")
    assert [(o.amount, o.probability) for o in stored_numbers] == [v[1:3] for v in values]
    assert stored.created_at == values[0][3] and stored.checklist_done == {}


class _Offset(tzinfo):
    """A time zone of our own (neither ``timezone`` nor ``ZoneInfo``) with this offset."""

    def __init__(self, offset):
        self.offset = offset

    def utcoffset(self, dt):
        return self.offset


@pytest.mark.postgres_only
@pytest.mark.parametrize(("column", "value"), [
    ("amount", 12.5),  # a float for a decimal
    ("amount", "12.50"),  # text for a decimal
    ("version", "1"),  # text for an integer
    ("version", True),  # a bool for an integer
    ("name", 5),  # a number for a text
    ("created_at", datetime(2024, 1, 1, 8, 0)),  # noqa: DTZ001 -- a naive datetime
    ("created_at", "2024-01-01 08:00:00+08"),  # a datetime as text
    ("created_at", datetime(2024, 1, 1, tzinfo=_Offset(None))),  # a zone without an offset
    ("created_at", 2**62),  # microseconds past any datetime
    ("expected_close_date", datetime(2024, 1, 1, tzinfo=UTC)),  # a datetime for a date
])  # fmt: skip
def test_values_binary_copy_would_read_otherwise_go_as_text(org, column, value):
    """A row whose value the binary format would refuse or read differently sends the
    whole call's rows as text COPY, as before; plain values and NULLs keep it binary."""
    columns = ("version", "name", "amount", "created_at", "expected_close_date")
    fields = [Opportunity._meta.get_field(c) for c in columns]
    good = (1, "甲", Decimal("1.00"), datetime(2024, 1, 1, tzinfo=UTC), date(2024, 1, 2))
    assert db._binary_types(fields, [good, (None,) * 5]) is not None
    bad = list(good)
    bad[columns.index(column)] = value
    assert db._binary_types(fields, [good, tuple(bad)]) is None


@pytest.mark.postgres_only
def test_aware_datetimes_of_any_zone_keep_binary_copy(org):
    """Datetimes aware by ``timezone``, ``ZoneInfo`` or a zone of another kind whose
    offset is given keep the binary COPY (the first two without a question per value)."""
    fields = [Opportunity._meta.get_field("created_at")]
    zones = [UTC, ZoneInfo("Asia/Shanghai"), _Offset(timedelta(hours=8))]
    rows = [(datetime(2024, 1, 1, tzinfo=zone),) for zone in zones] + [(None,)]
    assert db._binary_types(fields, rows) == [1184]


@pytest.mark.parametrize("with_chunks", [False, True])
def test_lookup_answers_keys_with_any_characters(org, monkeypatch, with_chunks):
    """bulk.lookup (an array of keys probed one by one on PostgreSQL, an IN list on
    SQLite) finds exactly the rows the ORM finds for text keys holding quotes, commas,
    braces, backslashes, spaces and CJK, and for integer keys of a foreign key."""
    if with_chunks:
        monkeypatch.setattr(bulk, "LOOKUP_CHUNK", 2)
    keys = ['a"b', "c,d", "{e}", "f\\g", "h i", "NULL", "中文", "'", "plain"]
    for i, key in enumerate(keys):
        Lead.objects.create(name=f"L{i}", email_key=key, owner=org.admin)
    Lead.objects.create(name="twin", email_key="plain", owner=org.admin)
    asked = [*keys, "absent", "", None]
    found = bulk.lookup(Lead, ("id", "email_key"), "email_key", asked)
    assert sorted(found) == sorted(
        Lead.objects.filter(email_key__in=keys).values_list("id", "email_key")
    )
    assert len(found) == len(keys) + 1
    owners = bulk.lookup(Lead, ("id",), "owner", [org.admin.pk, org.east_rep.pk, 10**12])
    assert sorted(owners) == sorted(
        Lead.objects.filter(owner__in=[org.admin, org.east_rep]).values_list("id")
    )


def test_lead_import_in_batches_writes_every_row_once(org, tmp_path, monkeypatch):
    """An all-or-nothing lead import in many batches (on PostgreSQL each batch's COPYs run
    in the background writer while the next batch is read) writes each lead and its pool
    event once, finds duplicates of the batch just handed to the writer, keeps the job's
    record of where it stopped, and leaves the transaction's constraints as Django
    declares them (deferred: a child row may come before its parent until COMMIT)."""
    monkeypatch.setattr(importers, "BATCH", 2)
    rows = [[f"线索{i}", f"1390000{i:04d}", f"l{i}@example.cn", ""] for i in range(7)]
    rows.insert(4, ["重复", "13900000002", "", ""])  # a row of the batch before
    rows.append(["又重复", "", "L6@example.cn", ""])  # the row just before
    job = run_job(create_job(actor=org.admin, kind="leads",
                             file=leads_file(tmp_path / "l.csv", rows)))  # fmt: skip
    assert job.status == JobStatus.DONE, (job.errors, job.message)
    assert (job.counts["new"], job.counts["duplicate"]) == (7, 2)
    assert job.done_rows == 9 and job.resume_after_row == 10  # header is row 1
    leads = Lead.objects.order_by("pk")
    assert [lead.mobile_key for lead in leads] == [f"1390000{i:04d}" for i in range(7)]
    assert all(lead.status == LeadStatus.NEW and lead.owner_id == org.admin.pk
               for lead in leads)  # fmt: skip
    assert sorted(PoolEvent.objects.values_list("lead_id", flat=True)) == [
        lead.pk for lead in leads
    ]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # a deferred key: checked at COMMIT, not here
            cursor.execute(
                "INSERT INTO leads_poolevent (lead_id, kind, reason, at) "
                "VALUES (%s, 'create', '', now())",
                [10**12],
            )
            cursor.execute("DELETE FROM leads_poolevent WHERE lead_id = %s", [10**12])


@pytest.mark.postgres_only  # SQLite checks its keys at the COMMIT a test never reaches
def test_a_row_pointing_at_a_missing_record_fails_the_import_whole(org, tmp_path, monkeypatch):
    """A lead whose owner id does not exist (a bug upstream) stops the import with an
    error (on PostgreSQL raised by the background writer's COPY at the next batch, or at
    the end) and nothing of it stays: not the leads of the batches before, not their pool
    events."""
    monkeypatch.setattr(importers, "BATCH", 2)
    from loudou.imports.engine import OwnerResolver

    real = OwnerResolver.resolve

    def resolve(self, value):
        return 10**12 if value == "ghost" else real(self, value)

    monkeypatch.setattr(OwnerResolver, "resolve", resolve)
    path = tmp_path / "l.csv"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("线索名称,手机,负责人\n")
        for i in range(5):
            handle.write(f"线索{i},1390000{i:04d},{'ghost' if i == 2 else ''}\n")
    job = run_job(create_job(actor=org.admin, kind="leads", file=path))
    assert job.status == JobStatus.FAILED
    assert Lead.objects.count() == 0 and PoolEvent.objects.count() == 0


@pytest.mark.postgres_only
def test_ids_come_as_the_sequence_gives_them_in_runs(org):
    """PostgreSQL ids are taken from the table's sequence (nextval, safe beside other
    writers) and fetched as runs of consecutive values: the ids are exactly those the
    sequence handed out, in order, whether they are consecutive or not (another session
    taking ids meanwhile leaves gaps, as a step of 3 does here)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY SEQUENCE gaps START 10 INCREMENT BY 3")
        cursor.execute(db.NEXTVAL_RUNS, ["gaps", 4])
        assert cursor.fetchall() == [(10, 10), (13, 13), (16, 16), (19, 19)]
        cursor.execute("SELECT last_value FROM gaps")
        assert cursor.fetchone() == (19,)
    first = bulk.allocate_ids(Opportunity, 3)
    second = bulk.allocate_ids(Opportunity, 2)
    assert second == [first[-1] + 1, first[-1] + 2] and first == list(range(first[0], first[0] + 3))
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM pipeline_opportunity_id_seq")
        assert cursor.fetchone() == (second[-1],)
