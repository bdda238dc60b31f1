"""Breakdowns read from the maintained WonCount (analytics.queries.scope_breakdown) equal
the breakdown of the scope's own won deals (queries.breakdown) for every viewer, filter,
dimension and period — whole months from the summary, a week from the deals — also in
another time zone; a breakdown report costs as many queries with many deals as with few.
Runs on SQLite and, in the PostgreSQL run, on PostgreSQL."""

from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loudou.analytics import queries, reports
from loudou.analytics.periods import containing, parse_period
from loudou.analytics.queries import Scope
from loudou.customers.choices import Source
from loudou.customers.services import create_account
from loudou.pipeline import services, summaries
from loudou.pipeline.models import Opportunity, ProductLine

from .test_pipeline_summaries import (  # noqa: F401 (reason: a fixture)
    _viewer_scopes,
    reason,
)

SOURCES = ["", Source.REFERRAL, Source.WEBSITE]


def _won_deals(org, pipeline, count: int, offset: int = 0, hours: int = 41) -> None:
    """``count`` deals over four owners, three accounts (regions, industries), two
    product lines and none, the sources; three in four won, at times ``hours`` apart
    going back from now (so over several months, both sides of month ends)."""
    lines = list(ProductLine.objects.filter(code__in=["p1", "p2"]))
    if not lines:
        lines = ProductLine.objects.bulk_create(
            [ProductLine(code="p1", name="甲线"), ProductLine(code="p2", name="乙线")]
        )
    regions = [org.east_region, org.shanghai, None]
    accounts = [create_account(actor=org.east_rep, name=f"恒信{offset}-{i}", region=regions[i],
                               industry=["制造", "", "零售"][i]) for i in range(3)]  # fmt: skip
    owners = [org.east_rep, org.east_rep2, org.sub_rep, org.south_rep]
    now = timezone.now()
    for i in range(offset, offset + count):
        opp = services.create_opportunity(
            actor=owners[i % 4], pipeline=pipeline, account=accounts[i % 3], name=f"d{i}",
            amount=Decimal(900 * (i + 3)) / 100, source=SOURCES[i % 3],
            product_line=([None, *lines])[(i // 3) % 3], when=now - timedelta(days=400),
        )  # fmt: skip
        if i % 4:
            services.win_opportunity(opp, actor=owners[i % 4],
                                     when=now - timedelta(hours=hours * i + 1))  # fmt: skip


def _periods() -> list:
    today = timezone.localdate()
    return [
        containing("month", today),
        containing("month", today).previous(),
        containing("quarter", today),
        containing("quarter", today).previous(),
        containing("year", today),
        containing("year", today).previous(),
        containing("week", today),
        containing("week", today).previous(),
    ]


def _same_as_the_scan(scopes) -> int:
    """Assert scope_breakdown == breakdown of the scope's deals everywhere; returns how
    many non-empty breakdowns were compared."""
    compared = 0
    for scope in scopes:
        for period in _periods():
            for dimension in reports.DIMENSIONS:
                # the rows as a set: the report keys them by value (the database's
                # ORDER BY follows its collation, the summary's Python's order)
                expected = queries.breakdown(scope.opportunities(), dimension, period)
                got = queries.scope_breakdown(scope, dimension, period)
                assert sorted(got, key=str) == sorted(expected, key=str), (scope, period,
                                                                           dimension)  # fmt: skip
                compared += bool(expected)
    return compared


def test_breakdown_from_the_summary_equals_the_scan_for_every_viewer(org, reason):  # noqa: F811
    """For an admin, a manager, a rep with a colleague's deal shared with them, a
    sub-team rep, team and owner filters (and date and product-line filters, read from
    the deals), every dimension and months, quarters, years (from WonCount) and weeks
    (from the deals): the won count and amount per value equal the breakdown of the
    scope's own won deals — also after a region's and a product line's rename, which
    need no recount (the summary keeps ids)."""
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    _won_deals(org, pipeline, 36)
    shared = Opportunity.objects.filter(owner=org.south_rep, status="won").first()
    shared.shared_with.add(org.east_rep)
    summaries.ensure_fresh()
    scopes = _viewer_scopes(org, pipeline)
    assert _same_as_the_scan(scopes) > 50
    org.shanghai.name = "上海市"
    org.shanghai.save()
    ProductLine.objects.filter(code="p1").update(name="甲线（新）")
    assert _same_as_the_scan(scopes) > 50


def test_breakdown_in_another_time_zone_equals_the_scan(org, reason, settings):  # noqa: F811
    """With the company's time zone set to UTC (months end 8 hours later than in
    Asia/Shanghai), the breakdowns of whole months still equal the scan of the deals:
    the summary's months follow the setting."""
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    _won_deals(org, pipeline, 24)
    settings.TIME_ZONE = "UTC"
    reports.breakdown_report(Scope(user=org.admin, pipeline=pipeline), "region",
                             containing("month", timezone.localdate()))  # fmt: skip
    assert _same_as_the_scan(_viewer_scopes(org, pipeline)) > 20


def test_breakdown_report_reads_the_summary_for_months(org, reason):  # noqa: F811
    """A year's breakdown report reads no opportunity row when no deal is shared with
    the viewer (the summary answers); a week's reads the deals."""
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    _won_deals(org, pipeline, 12)
    year = parse_period(str(timezone.localdate().year))
    week = containing("week", timezone.localdate())
    for user in (org.admin, org.east_mgr):
        scope = Scope(user=user, pipeline=pipeline)
        with CaptureQueriesContext(connection) as captured:
            reports.breakdown_report(scope, "region", year)
        sqls = [q["sql"] for q in captured]
        assert not any('FROM "pipeline_opportunity"' in s for s in sqls), sqls
        with CaptureQueriesContext(connection) as captured:
            reports.breakdown_report(scope, "region", week)
        assert any('FROM "pipeline_opportunity"' in q["sql"] for q in captured)


def test_breakdown_query_count_does_not_grow_with_the_deals(
    org,
    reason,  # noqa: F811
    django_assert_max_num_queries,
):
    """The breakdown of a quarter and of a year by every dimension, for an admin, a
    manager and a rep, costs no more queries with 48 deals than with 8 won over the
    same months."""
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    _won_deals(org, pipeline, 8, hours=41 * 6)
    today = timezone.localdate()
    periods = [containing("quarter", today), containing("year", today).previous()]
    scopes = [Scope(user=u, pipeline=pipeline) for u in (org.admin, org.east_mgr, org.east_rep)]

    def count(scope, dimension, period) -> int:
        with CaptureQueriesContext(connection) as captured:
            reports.breakdown_report(scope, dimension, period)
        return len(captured)

    cases = [(s, d, p) for s in scopes for d in reports.DIMENSIONS for p in periods]
    few = [count(*case) for case in cases]
    _won_deals(org, pipeline, 40, offset=8)
    summaries.ensure_fresh()
    for case, n in zip(cases, few, strict=True):
        with django_assert_max_num_queries(n):
            reports.breakdown_report(*case)
