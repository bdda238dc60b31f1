"""PostgreSQL COPY path of the imports (loudou.core.db), reviewed with the per-batch
foreign-key checks: integers past their column's range are not wrapped by binary COPY,
a COPY's error is Django's whichever thread ran it, and a failed COPY in the background
writer stops the ones queued after it."""

import sys

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from loudou.core import db
from loudou.imports import bulk
from loudou.leads.models import Lead
from loudou.pipeline.models import Opportunity

pytestmark = pytest.mark.postgres_only


@pytest.mark.parametrize(
    ("column", "edge"),
    [("version", 2**31), ("id", 2**63)],  # integer, bigint
)
def test_integers_past_their_columns_range_go_as_text_and_are_refused(org, column, edge):
    """Binary COPY writes the low bytes of an integer too large for its column (2**31
    into an integer column was stored as -2**31). Such a value (either end) sends the
    call as text, which the server refuses with a DataError, storing nothing; the
    largest value that fits stays binary."""
    fields = [Opportunity._meta.get_field(column)]
    assert db._binary_types(fields, [(edge - 1,), (None,)]) is not None
    assert db._binary_types(fields, [(edge,)]) is None
    assert db._binary_types(fields, [(-edge - 1,)]) is None
    if column == "version":
        now = timezone.now()
        (pk,) = bulk.allocate_ids(Lead, 1)
        with pytest.raises(DataError), transaction.atomic():
            bulk.insert_tuples(Lead, ("id", "name", "version", "created_at", "updated_at"),
                               [(pk, "线索", edge, now, now)])  # fmt: skip
        assert not Lead.objects.filter(pk=pk).exists()


def test_a_copy_error_is_djangos_without_the_writer_too(org):
    """A COPY the server refuses (a name longer than its column) raises Django's DataError
    when run in the caller's thread, as the writer's wait() raises it — callers catch one
    kind of error."""
    now = timezone.now()
    (pk,) = bulk.allocate_ids(Lead, 1)
    with pytest.raises(DataError), transaction.atomic():
        bulk.insert_tuples(Lead, ("id", "name", "created_at", "updated_at"),
                           [(pk, "长" * 101, now, now)])  # fmt: skip


def test_a_failed_copy_in_the_writer_stops_the_ones_queued_after_it(org, monkeypatch):
    """Three batches handed to the background writer, the first pointing at a user that
    does not exist: wait() raises the first's error (the trigger's IntegrityError), and the
    batches queued after it are not written — the per-batch check's refusal leaves the
    transaction usable, so without the stop they would have gone in."""
    written = []
    real = db._write_copy

    def counting(cursor, sql, types, values, checked):
        written.append(len(values))
        real(cursor, sql, types, values, checked)

    monkeypatch.setattr(db, "_write_copy", counting)
    before = sys.getswitchinterval()
    now = timezone.now()
    columns = ("id", "name", "owner_id", "created_at", "updated_at")
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        checks = db.ForeignKeyChecks()
        writer = db.CopyWriter()
        try:
            for owner in (10**12, org.admin.pk, org.admin.pk):
                ids = bulk.allocate_ids(Lead, 2)
                bulk.insert_tuples(Lead, columns, [(pk, "线索", owner, now, now) for pk in ids],
                                   writer=writer, checks=checks)  # fmt: skip
            writer.wait()
        finally:
            writer.close(failed=True)
    assert 'is not present in table "org_user"' in str(caught.value)
    assert written == [2]
    assert Lead.objects.count() == 0
    assert connection.execute_wrappers == []  # the writer's guard is gone with it
    assert sys.getswitchinterval() == before  # and the interpreter's switch interval is back


def test_the_writer_shortens_the_switch_interval_while_it_runs(org):
    """While a background writer exists the interpreter switches threads every
    SWITCH_INTERVAL (the writer formats each row's COPY data with the GIL, and behind the
    caller's parsing it waited up to 5 ms at a time); closing it, on success or failure,
    gives back the interval it found."""
    before = sys.getswitchinterval()
    assert before != db.CopyWriter.SWITCH_INTERVAL
    for failed in (False, True):
        with transaction.atomic():
            writer = db.CopyWriter()
            during = sys.getswitchinterval()
            writer.close(failed=failed)
        assert during == pytest.approx(db.CopyWriter.SWITCH_INTERVAL)
        assert sys.getswitchinterval() == before
