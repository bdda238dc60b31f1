"""The year grid's actual figures: ``monthly_actuals`` (every measure for the twelve
months in a handful of queries) equals ``period_actuals`` (the definition, one month at a
time) for the company, a team, a rep and a product line, with records on both sides of
local midnights; the grid's query count does not grow with data; and the performance
list of an administrator (aggregated over every owner, then narrowed to the people of
the list) leaves out people who are not on it."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loudou.activities.services import log_activity
from loudou.analytics.periods import parse_period
from loudou.customers.services import create_account
from loudou.org.models import User
from loudou.pipeline import services as pipeline
from loudou.pipeline.models import ProductLine
from loudou.sales import services as sales
from loudou.sales import testing
from loudou.targets import performance, progress
from loudou.targets.models import Measure
from loudou.targets.views import grid_rows

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
D = Decimal


def at(*args):
    return datetime(*args, tzinfo=SH)


@pytest.fixture
def dcba(db):
    return testing.pipeline()


def _deal(rep, account, amount, *, created, won=None, line=None):
    opp = pipeline.create_opportunity(
        actor=rep, pipeline=testing.pipeline(), account=account, name=f"deal {amount}",
        amount=D(amount), when=created, product_line=line,
    )  # fmt: skip
    if won is not None:
        pipeline.win_opportunity(opp, actor=rep, when=won)
    return opp


@pytest.fixture
def year(org, dcba):
    """2025 for east_rep, east_rep2 and south_rep: deals created and won on both sides of
    month and year edges (local time), activities and visits at 23:59 and 00:01, orders,
    payments with a refund, and one product line."""
    line = ProductLine.objects.create(code="hw", name="硬件")
    east = create_account(actor=org.east_rep, name="恒信")
    east2 = create_account(actor=org.east_rep2, name="宏达")
    south = create_account(actor=org.south_rep, name="南方")
    _deal(org.east_rep, east, "100", created=at(2024, 12, 31, 23, 59), won=at(2025, 1, 31, 23, 30))
    _deal(org.east_rep, east, "7.5", created=at(2025, 1, 1, 0, 1), won=at(2025, 2, 1, 0, 30),
          line=line)  # fmt: skip
    _deal(org.east_rep2, east2, "40", created=at(2025, 3, 31, 23, 59))
    _deal(org.south_rep, south, "60", created=at(2025, 4, 1, 0, 0), won=at(2025, 12, 31, 23, 59))
    _deal(org.south_rep, south, "9", created=at(2025, 12, 31, 23, 59), won=at(2026, 1, 1, 0, 1))
    for rep, account, when, kind in (
        (org.east_rep, east, at(2025, 1, 31, 23, 59), "visit"),
        (org.east_rep, east, at(2025, 2, 1, 0, 1), "visit"),
        (org.east_rep, east, at(2025, 2, 1, 0, 1), "call"),
        (org.east_rep2, east2, at(2025, 6, 30, 23, 59), "visit"),
        (org.south_rep, south, at(2024, 12, 31, 23, 59), "visit"),
        (org.south_rep, south, at(2025, 12, 31, 23, 59), "call"),
    ):
        log_activity(rep, account=account, kind=kind, outcome="reached", occurred_at=when)
    testing.order(org.east_rep, amount="300", sign_date=date(2025, 1, 31), acct=east)
    testing.order(org.south_rep, amount="200.20", sign_date=date(2025, 2, 1), acct=south,
                  product_line=line)  # fmt: skip
    contract = testing.contract(org.east_rep2, amount="1000", sign_date=date(2025, 5, 5),
                                acct=east2)  # fmt: skip
    for amount, day in (("600.10", date(2025, 5, 31)), ("-100.05", date(2025, 6, 1)),
                        ("50", date(2026, 1, 1))):  # fmt: skip
        sales.record_payment(contract, actor=org.admin, amount=D(amount), paid_on=day)
    org.line = line
    return org


def _by_definition(owners, product_line=None):
    result = {}
    for m in range(1, 13):
        start = date(2025, m, 1)
        end = date(2026, 1, 1) if m == 12 else date(2025, m + 1, 1)
        result[m] = progress.period_actuals(start, end, owners=owners, product_line=product_line)
    return result


def _owners(org):
    return {
        "company": None,
        "east team": User.objects.filter(team__path__startswith=org.east.path),
        "south rep": User.objects.filter(pk=org.south_rep.pk),
    }


def test_monthly_actuals_equal_the_definition_month_by_month(year):
    """For the company, the East team and one rep, each month's six figures equal
    ``period_actuals`` of that month (amounts to the cent, counts exactly)."""
    for name, owners in _owners(year).items():
        monthly = progress.monthly_actuals(2025, owners=owners)
        expected = _by_definition(owners)
        for m in range(1, 13):
            got = {k: monthly[m][k] for k in expected[m]}
            assert got == expected[m], (name, m)


def test_monthly_actuals_of_a_product_line(year):
    """With a product line, the four pipeline and sales figures equal the definition and
    the activity figures stay zero (activities have no product line)."""
    monthly = progress.monthly_actuals(2025, product_line=year.line)
    expected = _by_definition(None, year.line)
    for m in range(1, 13):
        assert {k: monthly[m][k] for k in expected[m]} == expected[m]
        assert monthly[m][Measure.ACTIVITIES] == monthly[m][Measure.VISITS] == 0


def test_monthly_figures_by_hand(year):
    """The company's months, counted by hand: January signed 100 + 300, won 1, created 1
    (00:01 on 1 Jan; the deal of 23:59 on 31 Dec is last year's), 1 visit at 23:59 on
    31 Jan; February signed 7.50 + 200.20, won 1, 2 activities of which 1 visit; March
    1 deal created at 23:59 on the 31st; May signed 1,000 and collected 600.10; June
    collected −100.05 (a refund) and 1 visit; December signed 60 (won 23:59 on the
    31st), 1 created, 1 call. The payment and the win of 1 January 2026 do not count."""
    monthly = progress.monthly_actuals(2025)

    order = ("signed", "collected", "won_count", "new_opportunities", "activities", "visits")

    def month(m):
        return tuple(monthly[m][k] for k in order)

    assert month(1) == (D("400.00"), D("0.00"), 1, 1, 1, 1)
    assert month(2) == (D("207.70"), D("0.00"), 1, 0, 2, 1)
    assert month(3) == (D("0.00"), D("0.00"), 0, 1, 0, 0)
    assert month(4) == (D("0.00"), D("0.00"), 0, 1, 0, 0)
    assert month(5) == (D("1000.00"), D("600.10"), 1, 0, 0, 0)
    assert month(6) == (D("0.00"), D("-100.05"), 0, 0, 1, 1)
    assert month(12) == (D("60.00"), D("0.00"), 1, 1, 1, 0)


def _grid_queries(owner):
    with CaptureQueriesContext(connection) as ctx:
        grid_rows(owner, 2025, editable=True)
    return len(ctx.captured_queries)


def test_grid_query_count_does_not_grow_with_data(year):
    """The company's and a team's year grid take the same number of queries (at most
    eight: the target rows and one query per source) with ten more deals, orders,
    payments and activities."""
    company = progress.Owner("company")
    team = progress.Owner("team", team=year.east)
    before = (_grid_queries(company), _grid_queries(team))
    assert max(before) <= 8
    account = create_account(actor=year.east_rep, name="更多")
    for i in range(10):
        _deal(year.east_rep, account, str(100 + i), created=at(2025, 3, 3, 10, 0),
              won=at(2025, 4, 4, 10, 0))  # fmt: skip
        log_activity(year.east_rep, account=account, kind="visit", outcome="reached",
                     occurred_at=at(2025, 5, 5, 10, 0))  # fmt: skip
        order = testing.order(year.east_rep, amount="10", sign_date=date(2025, 7, 7), acct=account)
        sales.record_payment(order, actor=year.admin, amount=D(5), paid_on=date(2025, 8, 8))
    assert (_grid_queries(company), _grid_queries(team)) == before


def test_admin_list_leaves_out_people_who_are_not_on_it(year):
    """An administrator's list aggregates every owner and keeps the people on it: the
    deals of a rep who has left (not on the list) count neither in a row nor in the
    company's total, exactly as for a manager whose scope excludes them."""
    period = parse_period("2025")
    before = performance.build_report(year.admin, period, group="team")
    company_before = next(r for r in before.rows if r.kind == "company").values
    gone = year.south_rep
    gone.left_on = date(2025, 11, 1)
    gone.save(update_fields=["left_on"])
    after = performance.build_report(year.admin, period, group="team")
    company = next(r for r in after.rows if r.kind == "company").values
    assert company_before["signed"] == D("1667.70")  # 100 + 300 + 7.50 + 200.20 + 1,000 + 60
    assert company["signed"] == D("1407.50")  # without south_rep's 60 and 200.20
    assert company["won_count"] == company_before["won_count"] - 1
    rows = performance.build_report(year.admin, period).rows
    assert gone.pk not in {r.user_id for r in rows}
    east = performance.build_report(year.east_mgr, period, group="team").rows[0].values
    assert east["signed"] == D("1407.50")
