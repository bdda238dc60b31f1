"""What a deal import leaves for what is derived from the deals: the account grades
(DOMAIN §4) are those the rule gives over the accounts' deals in the database, whether
the import runs in one transaction (the grades of the accounts it creates folded from
the deals it writes, no query) or batch by batch (read back per batch), and the fold
does not depend on how the rows are split or ordered; on PostgreSQL a large load leaves
the planner statistics the funnel summaries' recount groups by."""

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from loudou.customers.models import Account
from loudou.customers.services import create_account
from loudou.imports import bulk, importers
from loudou.imports.models import JobStatus
from loudou.imports.opportunities import SUMMARY_KEYS
from loudou.imports.services import create_job, run_job
from loudou.pipeline import services
from loudou.pipeline.choices import Status
from loudou.pipeline.models import Opportunity, StageChange

from .test_imports_grouped import write

DCBA = "D/C/B/A 客户分级漏斗"
HEADER = ["name", "account", "amount", "pipeline", "stage", "status"]
# Batches of two: an account's deals spread over batches, one of them in another
# pipeline whose stage is named like a graded one.
ROWS = [
    ["d1", "Lost Only", "1", DCBA, "B 重点跟进", "lost"],
    ["d2", "Won Then D", "1", DCBA, "A 订单跟进", "won"],
    ["d3", "A Beats B", "1", DCBA, "B 重点跟进", "open"],
    ["d4", "Won Then D", "1", DCBA, "D 识别", "open"],
    ["d5", "Won Only", "1", DCBA, "C 目标", "won"],
    ["d6", "A Beats B", "1", DCBA, "A 订单跟进", "open"],
    ["d7", "Other Pipeline", "1", "Elsewhere", "A 订单跟进", "open"],
    ["d8", "Old Graded", "1", DCBA, "C 目标", "won"],  # its open C deal stays the grade
    ["d9", "Old Bare", "1", DCBA, "D 识别", "won"],  # an older account, no deals before
    ["d10", "A Beats B", "1", DCBA, "C 目标", "open"],
]
EXPECTED = {
    "Lost Only": "", "Won Then D": "D", "A Beats B": "A", "Won Only": "won",
    "Other Pipeline": "", "Old Graded": "C", "Old Bare": "won",
}  # fmt: skip


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def run(org, tmp_path, skip_bad_rows):
    StageChange.objects.all().delete()
    Opportunity.objects.all().delete()
    Account.objects.all().delete()
    dcba = services.create_pipeline_from_template("dcba")
    graded = create_account(actor=org.admin, name="Old Graded")
    create_account(actor=org.admin, name="Old Bare")
    services.create_opportunity(
        actor=org.admin, pipeline=dcba, account=graded, name="older",
        stage=dcba.open_stages().get(code="C"),
    )  # fmt: skip
    path = write(tmp_path / "deals.csv", HEADER, ROWS)
    job = run_job(create_job(actor=org.admin, kind="opportunities", file=path,
                             skip_bad_rows=skip_bad_rows))  # fmt: skip
    assert job.status == JobStatus.DONE, job.errors
    return dict(Account.objects.values_list("name", "grade"))


@pytest.mark.parametrize("skip_bad_rows", [False, True])
def test_imported_accounts_carry_the_grade_their_deals_give(
    org, tmp_path, monkeypatch, skip_bad_rows
):
    """After an import (one transaction, or batch by batch) every account — created by
    it or older, its deals in one batch or several, some in another pipeline — holds the
    grade the rule reads from its deals in the database: the furthest open D/C/B/A stage,
    else won, else none."""
    monkeypatch.setattr(importers, "BATCH", 2)
    grades = run(org, tmp_path, skip_bad_rows)
    assert grades == EXPECTED
    by_rule = services._grades(list(Account.objects.values_list("pk", flat=True)))
    names = dict(Account.objects.values_list("pk", "name"))
    assert {names[pk]: grade for pk, grade in by_rule.items()} == {
        name: grade for name, grade in EXPECTED.items() if grade
    }


CODES = [None, *services.GRADE_CODES]
ROW = st.tuples(st.integers(1, 4), st.sampled_from(list(Status)), st.sampled_from(CODES))


@given(rows=st.lists(ROW, max_size=30), cut=st.integers(0, 30), seed=st.randoms())
def test_grades_folded_batch_by_batch_are_those_of_all_rows_at_once(rows, cut, seed):
    """Folding deal rows into the grades in two parts, in any order, gives what the rows
    give at once; and an account is graded exactly when one of its deals is won or open
    at a D/C/B/A stage."""
    whole = services.best_grades(rows)
    shuffled = rows[:]
    seed.shuffle(shuffled)
    parts = services.best_grades(shuffled[cut:], services.best_grades(shuffled[:cut]))
    assert parts == whole
    graded = {a for a, status, code in rows
              if status == Status.WON or (status == Status.OPEN and code is not None)}  # fmt: skip
    assert set(whole) == graded


def fresh_statistics(since: int) -> set[tuple[str, str]]:
    """(table, column) of the deal tables' planner statistics written since transaction
    id ``since`` (pg_statistic rows are written by ANALYZE in the transaction, or its
    savepoint, that runs it: statistics older than the test do not count)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, a.attname FROM pg_statistic s "
            "JOIN pg_class c ON c.oid = s.starelid "
            "JOIN pg_attribute a ON a.attrelid = s.starelid AND a.attnum = s.staattnum "
            "WHERE c.relname IN ('pipeline_opportunity', 'pipeline_stagechange') "
            "AND s.xmin::text::bigint > %s",
            [since % 2**32],
        )
        return set(cursor.fetchall())


@pytest.mark.postgres_only
@pytest.mark.parametrize("threshold, analysed", [(5, True), (50, False)])
def test_a_large_deal_load_leaves_statistics_of_the_summaries_columns(
    org, tmp_path, monkeypatch, threshold, analysed
):
    """On PostgreSQL, a deal import of at least ANALYZE_FROM rows leaves planner
    statistics of every column the summaries' recount groups and joins by, in both
    tables it filled; a smaller one gathers none (no ANALYZE for a handful of rows)."""
    monkeypatch.setattr(bulk, "ANALYZE_FROM", threshold)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        since = cursor.fetchone()[0]
    grades = run(org, tmp_path, skip_bad_rows=False)
    assert grades == EXPECTED
    wanted = {
        (model._meta.db_table, model._meta.get_field(name).column)
        for model, names in SUMMARY_KEYS.items()
        for name in names
    }
    fresh = fresh_statistics(since)
    if analysed:
        assert wanted <= fresh
    else:
        assert not fresh & wanted
