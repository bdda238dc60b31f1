"""Completed revenue per period (``signed_by_period``, ``collected_by_period``, used by
the targets year grid): for every period the same figure as the per-owner functions
summed over the owners, at local-day edges, with refunds, orders that do not count,
owner and product-line filters, and a query count that does not grow with the number of
periods or rows."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loudou.org.models import User
from loudou.pipeline import services as pipeline_services
from loudou.pipeline.models import ProductLine
from loudou.sales import queries, services, testing

pytestmark = pytest.mark.django_db

D = Decimal
SHANGHAI = ZoneInfo("Asia/Shanghai")
MONTHS = [date(2025, m, 1) for m in range(1, 13)] + [date(2026, 1, 1)]


def _won_at(rep, amount, when, product_line=None):
    opp = testing.opportunity(rep, amount=amount, product_line=product_line)
    return pipeline_services.win_opportunity(opp, actor=rep, when=when)


@pytest.fixture
def sales(org):
    """Deals won on both sides of local midnights (month and year edges), orders signed,
    cancelled and in draft, payments and a refund across months, one product line."""
    line = ProductLine.objects.create(code="saas", name="软件")
    east, south = org.east_rep, org.south_rep
    _won_at(east, "100", datetime(2025, 1, 31, 23, 30, tzinfo=SHANGHAI))  # Jan (15:30 UTC)
    _won_at(east, "7", datetime(2025, 2, 1, 0, 30, tzinfo=SHANGHAI))  # Feb (Jan 31 UTC)
    _won_at(south, "55.55", datetime(2025, 12, 31, 23, 59, tzinfo=SHANGHAI), line)  # Dec
    _won_at(south, "9", datetime(2026, 1, 1, 0, 1, tzinfo=SHANGHAI))  # next year
    _won_at(east, "3", datetime(2024, 12, 31, 23, 59, tzinfo=SHANGHAI))  # last year
    testing.order(east, amount="12000", sign_date=date(2025, 1, 31))
    testing.order(south, amount="800.10", sign_date=date(2025, 2, 1), product_line=line)
    testing.order(east, amount="50", sign_date=date(2026, 1, 1))
    draft = testing.order(east, amount="400", sign_date=date(2025, 3, 3))
    services.update_contract(draft, actor=east, version=1, status="draft")
    cancelled = testing.order(south, amount="800", sign_date=date(2025, 3, 3))
    services.cancel_contract(cancelled, actor=south, version=1)
    east_contract = testing.contract(east, amount="1000", sign_date=date(2025, 1, 10))
    south_contract = testing.contract(south, amount="2000", sign_date=date(2025, 5, 10))
    for contract, amount, day in (
        (east_contract, "600.10", date(2025, 1, 31)),
        (east_contract, "-100.05", date(2025, 2, 1)),
        (east_contract, "99", date(2026, 1, 1)),
        (south_contract, "0.30", date(2025, 5, 31)),
        (south_contract, "1000", date(2025, 12, 31)),
    ):
        services.record_payment(contract, actor=org.admin, amount=D(amount), paid_on=day)
    org.line = line
    return org


def _per_owner_summed(function, days, **kw):
    """The reference: the per-owner function asked once per period, summed over owners."""
    result = {}
    for i, (start, end) in enumerate(zip(days, days[1:], strict=False)):
        per_owner = function(start, end, **kw)
        if per_owner:
            result[i] = sum(per_owner.values(), D("0.00"))
    return result


@pytest.mark.parametrize(
    "days",
    [MONTHS, [date(2025, 1, 1), date(2025, 4, 1), date(2025, 7, 1)], [date(2025, 2, 1),
     date(2025, 2, 2)]],
    ids=["months", "quarters", "one-day"],
)  # fmt: skip
def test_per_period_equals_per_owner_summed(sales, days):
    """Every period's total equals the per-owner figures of that period summed: signed
    (won deals + signed orders) and collected (payments, refunds negative)."""
    for by_period, by_owner in (
        (queries.signed_by_period, queries.signed_by_owner),
        (queries.collected_by_period, queries.collected_by_owner),
    ):
        assert by_period(days) == _per_owner_summed(by_owner, days)


def test_month_figures_by_hand(sales):
    """January: 100 (won 23:30 on the 31st) + 12,000 (order) + 1,000 (the deal behind
    east's contract); February: 7 (won 00:30 on the 1st) + 800.10 (order); May: 2,000
    (south's contract deal); December: 55.55; the draft and cancelled orders and the
    deals and orders of other years do not count. Collected: January 600.10, February
    −100.05 (a refund), May 0.30, December 1,000."""
    signed = queries.signed_by_period(MONTHS)
    assert signed == {0: D("13100.00"), 1: D("807.10"), 4: D("2000.00"), 11: D("55.55")}
    assert queries.collected_by_period(MONTHS) == {
        0: D("600.10"), 1: D("-100.05"), 4: D("0.30"), 11: D("1000.00"),
    }  # fmt: skip


def test_owner_and_product_line_filters(sales):
    """``owners`` (ids or a queryset) and ``product_line`` narrow the totals exactly as
    they narrow the per-owner figures."""
    east = User.objects.filter(team=sales.east)
    for kw in ({"owners": east}, {"owners": [sales.south_rep.pk]}, {"owners": []},
               {"product_line": sales.line}):  # fmt: skip
        assert queries.signed_by_period(MONTHS, **kw) == _per_owner_summed(
            queries.signed_by_owner, MONTHS, **kw
        )
        assert queries.collected_by_period(MONTHS, **kw) == _per_owner_summed(
            queries.collected_by_owner, MONTHS, **kw
        )
    assert queries.signed_by_period(MONTHS, product_line=sales.line) == {
        1: D("800.10"), 11: D("55.55"),
    }  # fmt: skip


def test_query_count_does_not_grow_with_periods_or_rows(sales):
    """Signed is two queries (won deals, orders) and collected one, for twelve months as
    for one, however many rows."""
    for _ in range(3):
        testing.order(sales.east_rep, amount="10", sign_date=date(2025, 6, 6))
    for days in (MONTHS, MONTHS[:2]):
        with CaptureQueriesContext(connection) as ctx:
            queries.signed_by_period(days)
            queries.collected_by_period(days)
        assert len(ctx.captured_queries) == 3
