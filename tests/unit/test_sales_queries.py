"""The sales queries other apps read (completed revenue per owner on the signed and the
collected basis, out-of-funnel orders) and the receivable totals, against figures
computed by hand, including DOMAIN §8's worked example."""

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
from loudou.sales.models import Contract

pytestmark = pytest.mark.django_db

D = Decimal
Q1 = (date(2026, 1, 1), date(2026, 4, 1))
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_worked_example_signed_basis(org, settings):
    """DOMAIN §8: funnel wins 300,000 + out-of-funnel orders 20,000 = completed 320,000;
    the contracts of the won deals are not counted a second time."""
    settings.LOUDOU_OUT_OF_FUNNEL_THRESHOLD = "20000"
    rep = org.east_rep
    for amount in ("200000", "100000"):
        opp = testing.opportunity(rep, amount=amount, won_on=date(2026, 2, 10))
        services.create_contract_from_opportunity(opp, actor=rep)
    testing.order(rep, amount="12000", sign_date=date(2026, 2, 11))
    testing.order(rep, amount="8000", sign_date=date(2026, 3, 31))
    assert queries.signed_by_owner(*Q1) == {rep.pk: D("320000.00")}
    assert queries.out_of_funnel_by_owner(*Q1) == {rep.pk: D("20000.00")}
    assert queries.completed_by_owner(*Q1, basis="signed") == {rep.pk: D("320000.00")}


def test_period_edges_are_local_days(org):
    """A deal won at 23:30 Shanghai time on the quarter's last day counts in it (though
    it is already 15:30 UTC); one won at 00:30 on the next day does not."""
    rep = org.east_rep
    inside = testing.opportunity(rep, amount="100")
    outside = testing.opportunity(rep, amount="7")
    pipeline_services.win_opportunity(
        inside, actor=rep, when=datetime(2026, 3, 31, 23, 30, tzinfo=SHANGHAI)
    )
    pipeline_services.win_opportunity(
        outside, actor=rep, when=datetime(2026, 4, 1, 0, 30, tzinfo=SHANGHAI)
    )
    assert queries.signed_by_owner(*Q1) == {rep.pk: D("100.00")}
    assert queries.signed_by_owner(date(2026, 4, 1), date(2026, 4, 2)) == {rep.pk: D("7.00")}


def test_orders_count_only_when_signed_and_in_period(org):
    """Draft and cancelled orders, and orders outside the period, are not sales."""
    rep = org.east_rep
    testing.order(rep, amount="100", sign_date=date(2026, 1, 1))
    testing.order(rep, amount="200", sign_date=date(2026, 4, 1))  # end is exclusive
    draft = testing.order(rep, amount="400")
    services.update_contract(draft, actor=rep, version=1, status="draft")
    cancelled = testing.order(rep, amount="800")
    services.cancel_contract(cancelled, actor=rep, version=1)
    assert queries.out_of_funnel_by_owner(*Q1) == {rep.pk: D("100.00")}


def test_collected_by_contract_owner_with_refunds(org):
    """Collected = Σ payments in the period by the contract's owner; refunds subtract,
    and payments outside the period do not count."""
    east = testing.contract(org.east_rep, amount="1000")
    south = testing.contract(org.south_rep, amount="1000")
    for contract, amount, day in (
        (east, "600.10", date(2026, 1, 5)),
        (east, "-100.05", date(2026, 3, 31)),
        (east, "99", date(2026, 4, 1)),
        (south, "0.30", date(2026, 2, 1)),
    ):
        services.record_payment(contract, actor=org.admin, amount=D(amount), paid_on=day)
    assert queries.collected_by_owner(*Q1) == {
        org.east_rep.pk: D("500.05"),
        org.south_rep.pk: D("0.30"),
    }


def test_completed_basis_follows_the_setting(org, settings):
    """Without a basis, LOUDOU_COMPLETED_BASIS decides: collected counts money in."""
    contract = testing.contract(org.east_rep, amount="1000", sign_date=date(2026, 2, 1))
    services.record_payment(contract, actor=org.east_rep, amount=D("250"),
                            paid_on=date(2026, 2, 2))  # fmt: skip
    settings.LOUDOU_COMPLETED_BASIS = "collected"
    assert queries.completed_by_owner(*Q1) == {org.east_rep.pk: D("250.00")}
    settings.LOUDOU_COMPLETED_BASIS = "signed"
    assert queries.completed_by_owner(*Q1) == {org.east_rep.pk: D("1000.00")}


def test_owner_and_product_line_filters(org):
    """``owners`` takes ids or a User queryset; ``product_line`` narrows to one line."""
    line = ProductLine.objects.create(code="saas", name="软件")
    testing.order(org.east_rep, amount="10", product_line=line)
    testing.order(org.east_rep, amount="20")
    testing.order(org.south_rep, amount="40")
    assert queries.signed_by_owner(*Q1, owners=[org.south_rep.pk]) == {org.south_rep.pk: D(40)}
    east = User.objects.filter(team=org.east)
    assert queries.signed_by_owner(*Q1, owners=east) == {org.east_rep.pk: D(30)}
    assert queries.signed_by_owner(*Q1, product_line=line) == {org.east_rep.pk: D(10)}
    assert queries.signed_by_owner(*Q1, owners=[]) == {}


def test_unknown_basis_is_an_error(org):
    """A basis other than signed or collected is a programming error."""
    with pytest.raises(ValueError):
        queries.completed_by_owner(*Q1, basis="booked")


def test_completed_is_two_queries_whatever_the_rows(org):
    """The totals are grouped in the database: the query count does not grow with rows."""
    for _ in range(5):
        testing.order(org.east_rep, amount="10")
        testing.opportunity(org.south_rep, amount="5", won_on=date(2026, 1, 20))
    with CaptureQueriesContext(connection) as ctx:
        result = queries.completed_by_owner(*Q1, basis="signed")
    assert len(ctx.captured_queries) == 2
    assert result == {org.east_rep.pk: D(50), org.south_rep.pk: D(25)}


def test_receivable_totals_and_ageing(org):
    """Owed, credit and overdue per ageing bucket (days past each line's due date)."""
    today = date(2026, 6, 30)
    plans = [
        {"due_date": date(2026, 6, 29), "amount": "100"},  # 1 day → 0–30
        {"due_date": date(2026, 5, 1), "amount": "200"},  # 60 days → 31–60
        {"due_date": date(2026, 3, 1), "amount": "300"},  # 121 days → >90
        {"due_date": date(2026, 7, 30), "amount": "400"},  # not yet due
    ]
    owing = testing.contract(org.east_rep, amount="1000", plans=plans)
    services.record_payment(owing, actor=org.east_rep, amount=D("50"), paid_on=today)
    credit = testing.contract(org.east_rep, amount="10")
    services.record_payment(credit, actor=org.east_rep, amount=D("12.5"), paid_on=today)
    settled = testing.contract(org.east_rep, amount="5")
    services.record_payment(settled, actor=org.east_rep, amount=D("5"), paid_on=today)
    totals = queries.receivable_totals(Contract.objects.all(), today=today)
    # 50 paid covers the earliest due line (2026-03-01) first: 250 left there.
    assert totals["buckets"] == {"0-30": D(100), "31-60": D(200), "61-90": D(0), "90+": D(250)}
    assert totals["overdue"] == D("550.00")
    assert (totals["owed"], totals["credit"], totals["net"]) == (D(950), D("-2.50"), D("947.50"))
    assert (totals["count"], totals["overdue_count"]) == (2, 1)
    listed = list(queries.receivables(Contract.objects.all()))
    assert listed[0] == owing and settled not in listed
    row = queries.with_overdue(Contract.objects.filter(pk=owing.pk), today=today).get()
    assert row.overdue_amount == D("550.00")
