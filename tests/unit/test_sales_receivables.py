"""The receivables list and totals as read from the owing-contracts index: the order
(oldest due date first, no due date last, then newest signed) and the totals (owed,
credit, count, overdue count) equal a recomputation in Python over every contract; the
page's count and pages come from the totals without a second count."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loudou.sales import queries, services, testing
from loudou.sales.models import Contract

pytestmark = pytest.mark.django_db

D = Decimal
TODAY = date(2026, 6, 30)


@pytest.fixture
def book(org):
    """Contracts with a due date in the past, in the future and none; ties on the due
    date and on the sign date; paid in part, paid in full, over-paid, refunded,
    cancelled and in draft."""
    rep = org.east_rep
    made = []

    def contract(amount, sign_date, due=None, paid=(), status=None):
        plans = [{"due_date": due, "amount": amount}] if due else []
        c = testing.contract(rep, amount=amount, sign_date=sign_date, plans=plans)
        for value in paid:
            services.record_payment(c, actor=org.admin, amount=D(value), paid_on=sign_date)
        if status == "cancelled":
            services.cancel_contract(c, actor=rep, version=Contract.objects.get(pk=c.pk).version)
        elif status == "draft":
            services.update_contract(
                c, actor=rep, version=Contract.objects.get(pk=c.pk).version, status="draft"
            )
        made.append(c)
        return c

    overdue = TODAY - timedelta(days=40)
    contract("1000", date(2026, 1, 5), overdue, ["100"])
    contract("500", date(2026, 1, 6), overdue)  # same due date, signed later: first
    contract("300", date(2026, 2, 1), TODAY - timedelta(days=100), ["50", "-20"])
    contract("200", date(2026, 3, 1), TODAY + timedelta(days=10))
    contract("80", date(2026, 3, 2))  # no plan: no due date
    contract("90", date(2026, 3, 2))  # same sign date: the newer first
    contract("60", date(2026, 3, 3), None, ["75"])  # over-paid: a credit
    contract("40", date(2026, 3, 4), overdue, ["40"])  # settled
    contract("70", date(2026, 3, 5), overdue, [], "cancelled")
    contract("20", date(2026, 3, 6), overdue, [], "draft")
    return made


def _python_order(contracts):
    rows = [c for c in contracts if c.status in ("active", "completed") and c.amount != c.received]
    rows.sort(key=lambda c: -c.pk)
    rows.sort(key=lambda c: c.sign_date, reverse=True)
    rows.sort(key=lambda c: (c.next_due_date is None, c.next_due_date or date.min))
    return [c.pk for c in rows]


def test_order_is_due_date_first_no_due_date_last(book):
    """The list's order equals sorting every contract in Python by (no due date, due
    date, newest sign date, newest id); settled, cancelled and draft ones are left out."""
    everything = list(Contract.objects.all())
    listed = [c.pk for c in queries.receivables(Contract.objects.all())]
    assert listed == _python_order(everything)
    assert len(listed) == 7
    assert [c.next_due_date is None for c in queries.receivables()][-3:] == [True] * 3


def test_totals_equal_a_recomputation(book):
    """Owed, credit, count and overdue count equal sums over the contracts in Python."""
    signed = [c for c in Contract.objects.all() if c.status in ("active", "completed")]
    receivable = [c.amount - c.received for c in signed]
    totals = queries.receivable_totals(Contract.objects.all(), today=TODAY)
    assert totals["owed"] == sum((r for r in receivable if r > 0), D("0.00"))
    assert totals["credit"] == sum((r for r in receivable if r < 0), D("0.00"))
    assert totals["count"] == sum(1 for r in receivable if r)
    assert totals["overdue_count"] == sum(
        1 for c in signed if c.next_due_date and c.next_due_date < TODAY
    )
    assert (totals["owed"], totals["credit"], totals["count"]) == (D("2040.00"), D("-15.00"), 7)


def test_page_counts_from_the_totals_and_pages_through(org, client, book, monkeypatch):
    """The page's total is the totals' count and no separate COUNT query runs; with a
    page size of 3 the pages hold every receivable once, in order."""
    monkeypatch.setattr("loudou.sales.views.LIST_PAGE", 3)
    client.force_login(org.admin)
    seen = []
    for number in (1, 2, 3):
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/sales/receivables/", {"page": number})
        assert response.status_code == 200
        page = response.context["page"]
        assert page.paginator.count == 7
        seen += [c.pk for c in page]
        counts = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT COUNT(*)")]
        assert not any("NOT (" in sql for sql in counts), counts
    assert seen == _python_order(list(Contract.objects.all()))
