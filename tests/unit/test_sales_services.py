"""Contract, order and payment rules: receivable arithmetic in Decimal, the out-of-funnel
threshold, idempotent payments, optimistic locking, plan allocation and quotes."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError
from django.utils import translation

from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.sales import services, testing
from loudou.sales.choices import ContractKind, ContractStatus, QuoteStatus
from loudou.sales.models import Contract, Payment, PaymentPlan

pytestmark = pytest.mark.django_db

D = Decimal


def pay(contract, amount, paid_on=date(2026, 2, 1), **kw):
    payment, _created = services.record_payment(
        contract, actor=contract.owner, amount=D(amount), paid_on=paid_on, **kw
    )
    contract.refresh_from_db()
    return payment


# --- creating contracts and orders ---------------------------------------------------------


def test_contract_from_won_opportunity_takes_its_figures(org):
    """A won deal's contract gets its account, owner, amount and the day it was won."""
    opp = testing.opportunity(org.east_rep, amount="123456.78", won_on=date(2026, 3, 9))
    contract = services.create_contract_from_opportunity(opp, actor=org.east_mgr)
    assert contract.account == opp.account
    assert contract.owner == org.east_rep
    assert contract.amount == D("123456.78")
    assert contract.sign_date == date(2026, 3, 9)
    assert contract.kind == ContractKind.CONTRACT
    assert contract.number == "HT-2026-00001"


def test_contract_amount_is_the_sum_of_its_lines(org):
    """With lines, the amount is Σ quantity × unit price, exact to the cent."""
    opp = testing.opportunity(org.east_rep, won_on=date(2026, 3, 9))
    lines = [
        {"product": "A", "quantity": "3", "unit_price": "0.10"},
        {"product": "B", "quantity": "2.5", "unit_price": "1999.99"},
    ]
    contract = services.create_contract_from_opportunity(opp, actor=org.east_rep, lines=lines)
    assert contract.amount == D("5000.28")  # 0.30 + 4999.975 → 4999.98
    assert [line.amount for line in contract.lines.all()] == [D("0.30"), D("4999.98")]


@pytest.mark.parametrize("lost", [False, True])
def test_contract_refused_for_open_or_lost_opportunity(org, lost):
    """An open or lost opportunity gets no contract (422), and nothing is written."""
    opp = testing.opportunity(org.east_rep, lost=lost)
    with pytest.raises(ValidationFailed) as exc:
        services.create_contract_from_opportunity(opp, actor=org.east_rep)
    assert exc.value.status == 422 and exc.value.field == "opportunity"
    assert not Contract.objects.exists()


def test_order_below_threshold_is_created(org, settings):
    """An out-of-funnel order just below the threshold is recorded, numbered DD-."""
    settings.LOUDOU_OUT_OF_FUNNEL_THRESHOLD = "20000"
    order = testing.order(org.east_rep, amount="19999.99")
    assert order.kind == ContractKind.ORDER and order.opportunity is None
    assert order.number.startswith("DD-2026-")


@pytest.mark.parametrize("amount", ["20000", "20000.01", "150000"])
def test_order_at_or_above_threshold_is_refused(org, settings, amount):
    """An order at or above the threshold must go through the funnel: a field error on
    the amount that says to create an opportunity; nothing is written."""
    settings.LOUDOU_OUT_OF_FUNNEL_THRESHOLD = "20000"
    with translation.override("en"), pytest.raises(ValidationFailed) as exc:
        testing.order(org.east_rep, amount=amount)
    assert exc.value.field == "amount" and exc.value.code == "above_threshold"
    assert "opportunity" in str(exc.value.message)
    assert not Contract.objects.exists()


def test_order_threshold_applies_to_the_lines_sum(org, settings):
    """The threshold is checked against the sum of the lines, not a typed amount."""
    settings.LOUDOU_OUT_OF_FUNNEL_THRESHOLD = "1000"
    with pytest.raises(ValidationFailed):
        services.create_order(
            actor=org.east_rep, account=testing.account(org.east_rep), title="x",
            sign_date=date(2026, 1, 1), amount=D(1),
            lines=[{"product": "p", "quantity": 2, "unit_price": "500"}],
        )  # fmt: skip


def test_numbers_count_up_within_a_year(org):
    """Contract numbers are sequential per prefix and year."""
    first = testing.contract(org.east_rep)
    second = testing.contract(org.east_rep)
    assert (first.number, second.number) == ("HT-2026-00001", "HT-2026-00002")


# --- receivable arithmetic ------------------------------------------------------------------


def test_partial_payments_leave_exact_receivable(org):
    """Receivable = amount − Σ payments, exact in Decimal (0.1 + 0.2 style sums)."""
    contract = testing.contract(org.east_rep, amount="1000.00")
    for amount in ("0.10", "0.20", "333.33", "333.33"):
        pay(contract, amount)
    assert contract.received == D("666.96")
    assert contract.receivable == D("333.04")


def test_over_payment_is_a_credit(org):
    """Paying more than the amount leaves a negative receivable: a credit, kept."""
    contract = testing.contract(org.east_rep, amount="1000.00")
    pay(contract, "1200.50")
    assert contract.receivable == D("-200.50")


def test_refund_is_a_negative_payment(org):
    """A refund reduces what was received and raises the receivable again."""
    contract = testing.contract(org.east_rep, amount="1000.00")
    pay(contract, "1000.00")
    refund = pay(contract, "-250.25")
    assert refund.is_refund
    assert contract.receivable == D("250.25")


def test_refund_beyond_received_is_refused(org):
    """A refund cannot take back more than was received; nothing is written."""
    contract = testing.contract(org.east_rep, amount="1000.00")
    pay(contract, "100")
    with pytest.raises(ValidationFailed):
        pay(contract, "-100.01")
    assert Payment.objects.count() == 1


def test_payment_against_cancelled_contract_is_refused(org):
    """A cancelled contract takes no new money (409) and nothing is written."""
    contract = testing.contract(org.east_rep)
    services.cancel_contract(contract, actor=org.east_rep, version=contract.version)
    with pytest.raises(Conflict):
        pay(contract, "10")
    assert not Payment.objects.exists()


def test_zero_payment_is_refused(org):
    """A payment of zero is not money received."""
    contract = testing.contract(org.east_rep)
    with pytest.raises(ValidationFailed):
        pay(contract, "0")


# --- plan allocation and overdue --------------------------------------------------------


def test_allocation_covers_plan_lines_in_due_date_order():
    """Unlinked payments cover the earliest due line first."""
    plans = [(2, date(2026, 3, 1), D(300)), (1, date(2026, 2, 1), D(500))]
    assert services.allocate(plans, [(None, D(600))]) == {1: D(500), 2: D(100)}


def test_allocation_explicit_link_first_and_excess_to_the_pool():
    """A payment linked to a line covers it first; its excess joins the pool, which
    then covers the earliest uncovered line."""
    plans = [(1, date(2026, 2, 1), D(500)), (2, date(2026, 3, 1), D(300))]
    covered = services.allocate(plans, [(2, D(400)), (None, D(50))])
    assert covered == {1: D(150), 2: D(300)}


def test_allocation_refund_reduces_the_pool():
    """An unlinked refund is taken off the pool before allocation."""
    plans = [(1, date(2026, 2, 1), D(500)), (2, date(2026, 3, 1), D(300))]
    assert services.allocate(plans, [(None, D(700)), (None, D(-400))]) == {1: D(300), 2: D(0)}


def test_overdue_follows_uncovered_plan_lines(org):
    """next_due_date is the first plan line not fully covered; paying it moves on."""
    plans = [
        {"due_date": date(2026, 2, 1), "amount": "400"},
        {"due_date": date(2026, 3, 1), "amount": "600"},
    ]
    contract = testing.contract(org.east_rep, amount="1000", plans=plans)
    assert contract.next_due_date == date(2026, 2, 1)
    assert contract.is_overdue(today=date(2026, 2, 2))
    pay(contract, "400")
    assert contract.next_due_date == date(2026, 3, 1)
    assert not contract.is_overdue(today=date(2026, 2, 2))
    pay(contract, "600")
    assert contract.next_due_date is None
    assert list(PaymentPlan.objects.values_list("covered", flat=True)) == [D(400), D(600)]


def test_plan_cannot_exceed_contract_amount(org):
    """A payment plan adding up to more than the contract is refused."""
    contract = testing.contract(org.east_rep, amount="1000")
    services.add_plan(contract, actor=org.east_rep, due_date=date(2026, 2, 1), amount="900")
    with pytest.raises(ValidationFailed):
        services.add_plan(contract, actor=org.east_rep, due_date=date(2026, 3, 1), amount="100.01")
    assert contract.plans.count() == 1


# --- idempotency ------------------------------------------------------------------------


def test_same_idempotency_key_twice_stores_one_payment(org):
    """A retried payment with the same key returns the first one and stores nothing."""
    contract = testing.contract(org.east_rep, amount="1000")
    kwargs = {"actor": org.east_rep, "amount": D("300"), "paid_on": date(2026, 2, 1),
              "idempotency_key": "k-1"}  # fmt: skip
    first, created = services.record_payment(contract, **kwargs)
    again, created_again = services.record_payment(contract, **kwargs)
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert Payment.objects.count() == 1
    contract.refresh_from_db()
    assert contract.received == D("300")


def test_same_key_with_other_data_is_a_conflict(org):
    """Reusing a key for a different payment is a 409 and stores nothing new."""
    contract = testing.contract(org.east_rep, amount="1000")
    services.record_payment(contract, actor=org.east_rep, amount=D("300"),
                            paid_on=date(2026, 2, 1), idempotency_key="k-1")  # fmt: skip
    with pytest.raises(Conflict) as exc:
        services.record_payment(contract, actor=org.east_rep, amount=D("301"),
                                paid_on=date(2026, 2, 1), idempotency_key="k-1")  # fmt: skip
    assert exc.value.code == "idempotency_conflict"
    assert Payment.objects.count() == 1


def test_lost_race_is_answered_with_the_winners_payment(org, monkeypatch):
    """When another request inserted the same key between our check and our insert, the
    unique constraint refuses ours and the winner's payment is returned (the race path)."""
    contract = testing.contract(org.east_rep, amount="1000")
    kwargs = {"actor": org.east_rep, "amount": D("300"), "paid_on": date(2026, 2, 1),
              "idempotency_key": "race"}  # fmt: skip
    winner, _ = services.record_payment(contract, **kwargs)
    real_replay = services._replay
    calls = []

    def blind_first_check(key, fingerprint):
        calls.append(key)
        # The first look happens before the other request committed: it sees nothing.
        return None if len(calls) == 1 else real_replay(key, fingerprint)

    monkeypatch.setattr(services, "_replay", blind_first_check)
    payment, created = services.record_payment(contract, **kwargs)
    assert len(calls) == 2  # the IntegrityError path asked again
    assert (payment.pk, created) == (winner.pk, False)
    assert Payment.objects.count() == 1
    contract.refresh_from_db()
    assert contract.received == D("300")


def test_idempotency_key_is_unique_in_the_database(org):
    """The database itself refuses a second row with the same key."""
    contract = testing.contract(org.east_rep)
    Payment.objects.create(contract=contract, amount=1, paid_on=date(2026, 1, 1),
                           idempotency_key="db")  # fmt: skip
    with pytest.raises(IntegrityError):
        Payment.objects.create(contract=contract, amount=2, paid_on=date(2026, 1, 1),
                               idempotency_key="db")  # fmt: skip


# --- edits and versions -------------------------------------------------------------------


def test_stale_version_is_a_conflict(org):
    """An edit from an outdated copy is refused with 409 and changes nothing."""
    contract = testing.contract(org.east_rep)
    services.update_contract(contract, actor=org.east_rep, version=1, title="First")
    with pytest.raises(Conflict) as exc:
        services.update_contract(contract, actor=org.east_rep, version=1, title="Second")
    assert exc.value.status == 409
    contract.refresh_from_db()
    assert (contract.title, contract.version) == ("First", 2)


def test_cancelled_contract_cannot_be_edited(org):
    """A cancelled contract is closed for edits."""
    contract = testing.contract(org.east_rep)
    services.cancel_contract(contract, actor=org.east_rep, version=1, reason="客户取消")
    with pytest.raises(Conflict):
        services.update_contract(contract, actor=org.east_rep, version=2, title="x")


def test_order_edit_cannot_cross_the_threshold(org, settings):
    """Raising an order's amount to the threshold is refused like creating it."""
    settings.LOUDOU_OUT_OF_FUNNEL_THRESHOLD = "20000"
    order = testing.order(org.east_rep, amount="1000")
    with pytest.raises(ValidationFailed):
        services.update_contract(order, actor=org.east_rep, version=1, amount=D("20000"))
    order.refresh_from_db()
    assert order.amount == D("1000")


def test_only_admin_deletes_payments(org):
    """A rep cannot delete a payment; an admin can, and the receivable follows."""
    contract = testing.contract(org.east_rep, amount="1000")
    payment = pay(contract, "400")
    with pytest.raises(NotPermitted):
        services.delete_payment(payment, actor=org.east_rep)
    services.delete_payment(payment, actor=org.admin)
    contract.refresh_from_db()
    assert contract.receivable == D("1000")


# --- quotes -------------------------------------------------------------------------------


def _quote(org, opportunity=None, amount="500"):
    acct = opportunity.account if opportunity else testing.account(org.east_rep)
    return services.create_quote(
        actor=org.east_rep, account=acct, title="报价", opportunity=opportunity,
        lines=[{"product": "Widget", "quantity": 2, "unit_price": amount}],
    )  # fmt: skip


def test_accepted_quote_becomes_a_contract_with_its_lines(org):
    """Accepting a quote of a won deal creates a contract with the same lines, linked."""
    opp = testing.opportunity(org.east_rep, won_on=date(2026, 3, 1))
    quote = _quote(org, opp)
    services.mark_quote_sent(quote, actor=org.east_rep, version=1)
    contract = services.accept_quote(quote, actor=org.east_rep, version=2)
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.ACCEPTED and quote.contract == contract
    assert contract.opportunity == opp and contract.amount == D("1000")
    assert [(ln.product, ln.quantity) for ln in contract.lines.all()] == [("Widget", D(2))]


def test_quote_without_opportunity_becomes_an_order(org):
    """A quote without an opportunity becomes an out-of-funnel order when small."""
    contract = services.accept_quote(_quote(org), actor=org.east_rep)
    assert contract.kind == ContractKind.ORDER


def test_accepting_twice_is_refused(org):
    """An accepted quote cannot be accepted again (one contract only)."""
    quote = _quote(org)
    services.accept_quote(quote, actor=org.east_rep)
    with pytest.raises(Conflict):
        services.accept_quote(quote, actor=org.east_rep)
    assert Contract.objects.count() == 1


def test_quote_of_open_opportunity_is_not_accepted(org):
    """A quote whose opportunity is still open cannot become a contract; it stays sent."""
    opp = testing.opportunity(org.east_rep)
    quote = _quote(org, opp)
    with pytest.raises(ValidationFailed):
        services.accept_quote(quote, actor=org.east_rep)
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.DRAFT and not Contract.objects.exists()


def test_cancel_keeps_payments(org):
    """Cancelling keeps the money on record and the contract stops counting as signed."""
    contract = testing.contract(org.east_rep, amount="1000")
    pay(contract, "100")
    services.cancel_contract(contract, actor=org.east_rep, version=contract.version)
    contract.refresh_from_db()
    assert contract.status == ContractStatus.CANCELLED and contract.received == D(100)
    assert not Contract.objects.signed().exists()
