"""Writes to contracts, orders, payment plans, payments, invoices, shipments and quotes.

Views, the API, the demo and the CLI all call these. Lock contract: every service that
changes a contract or what hangs from it opens a transaction and locks the contract row
(``select_for_update``; on SQLite the IMMEDIATE transaction serialises writers), refuses
a stale ``version`` with :class:`Conflict` where the caller edits from a copy, writes,
and recomputes the contract's kept figures (:func:`recompute_contract`) before commit.
A refused action raises before anything is written.

Rules (docs/sales.md):

- A contract comes from a won opportunity (or an accepted quote); an out-of-funnel order
  has no opportunity and must stay below ``LOUDOU_OUT_OF_FUNNEL_THRESHOLD``.
- A contract's amount is the sum of its lines when it has lines.
- Receivable = amount − Σ payments; a refund is a negative payment and cannot take more
  back than was received; a cancelled contract takes no new money (refunds only).
- A payment carrying an idempotency key is stored once: the same key again with the same
  data returns the first payment; with other data it is a 409.
"""

import hashlib
import json
from collections import defaultdict
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.core.money import default_currency, quantize
from loudou.core.services import check_version
from loudou.pipeline.choices import Status as OpportunityStatus

from .choices import (
    ContractKind,
    ContractStatus,
    InvoiceStatus,
    PaymentMethod,
    QuoteStatus,
    ShipmentStatus,
)
from .models import (
    Contract,
    ContractLine,
    Invoice,
    Payment,
    PaymentPlan,
    Quote,
    QuoteLine,
    Shipment,
)

ZERO = Decimal("0.00")
MAX_AMOUNT = Decimal("999999999999.99")  # what DecimalField(14, 2) stores
TRUSTED = ["account", "opportunity", "product_line", "owner", "created_by", "contract", "plan",
           "quote", "recorded_by"]  # fmt: skip


def out_of_funnel_threshold() -> Decimal:
    """Orders must stay strictly below this amount (``LOUDOU_OUT_OF_FUNNEL_THRESHOLD``)."""
    return Decimal(settings.LOUDOU_OUT_OF_FUNNEL_THRESHOLD)


# --- small helpers ----------------------------------------------------------------------


def _money(value, field, *, allow_negative=False, allow_zero=True) -> Decimal:
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise ValidationFailed(_("Enter an amount."), field=field) from None
    if not amount.is_finite():
        raise ValidationFailed(_("Enter an amount."), field=field)
    amount = quantize(amount)
    if abs(amount) > MAX_AMOUNT:
        raise ValidationFailed(_("The amount is too large."), field=field)
    if amount < 0 and not allow_negative:
        raise ValidationFailed(_("The amount cannot be negative."), field=field)
    if amount == 0 and not allow_zero:
        raise ValidationFailed(_("The amount cannot be zero."), field=field)
    return amount


def _get(item, key, default=None):
    if isinstance(item, dict):
        return item.get(key, default)
    return getattr(item, key, default)


def _build_lines(items, model, **parent) -> list:
    """Unsaved line objects from dicts (or schemas) with product, quantity, unit_price."""
    lines = []
    for position, item in enumerate(items or (), start=1):
        product = (_get(item, "product") or "").strip()
        if not product:
            raise ValidationFailed(_("Every line needs a product."), field="lines")
        quantity = _money(_get(item, "quantity", 1), "lines")
        unit_price = _money(_get(item, "unit_price", 0), "lines")
        amount = quantize(quantity * unit_price)
        if amount > MAX_AMOUNT:
            raise ValidationFailed(_("The amount is too large."), field="lines")
        lines.append(
            model(product=product[:200], quantity=quantity, unit_price=unit_price,
                  amount=amount, position=position, **parent)
        )  # fmt: skip
    return lines


def _lines_total(lines) -> Decimal:
    total = sum((line.amount for line in lines), ZERO)
    if total > MAX_AMOUNT:
        raise ValidationFailed(_("The amount is too large."), field="lines")
    return total


def _check_term(start, end) -> None:
    if start and end and end < start:
        raise ValidationFailed(_("The term cannot end before it starts."), field="end_date")


def next_number(model, prefix: str, day) -> str:
    """The next free number of the year: HT-2026-00001, DD-..., BJ-... (also read by
    the contract import, which counts on from it)."""
    stem = f"{prefix}-{day.year}-"
    last = (
        model.objects.filter(number__startswith=stem)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    try:
        sequence = int(last[len(stem) :]) + 1 if last else 1
    except ValueError:
        sequence = 1
    return f"{stem}{sequence:05d}"


def _save_numbered(obj, prefix: str, day) -> None:
    """Save ``obj`` with the next number; two writers racing for one number retry."""
    for _attempt in range(5):
        obj.number = next_number(type(obj), prefix, day)
        try:
            with transaction.atomic():
                obj.save()
            return
        except IntegrityError:
            if type(obj).objects.filter(number=obj.number).exists():
                continue
            raise
    raise Conflict(_("Could not allocate a number; try again."))


def _lock(contract: Contract, version=None) -> Contract:
    locked = Contract.objects.select_for_update().get(pk=contract.pk)
    check_version(locked, version)
    return locked


def _bump(contract: Contract, fields) -> None:
    contract.version += 1
    contract.save(update_fields=[*fields, "version", "updated_at"])


def _refuse_if_cancelled(contract: Contract) -> None:
    if contract.status == ContractStatus.CANCELLED:
        raise Conflict(_("This contract is cancelled."), code="cancelled")


# --- receivable allocation --------------------------------------------------------------


def allocate(plans, payments) -> dict:
    """How much of each plan line the payments cover (docs/sales.md).

    ``plans``: (id, due_date, amount) in any order; ``payments``: (plan_id or None,
    amount). A payment linked to a plan line covers that line first, up to its amount;
    what is left over, and every unlinked payment (refunds negative), forms a pool that
    covers the remaining lines in due-date order. Pure: no database.
    """
    ordered = sorted(plans, key=lambda p: (p[1], p[0]))
    linked: dict = defaultdict(Decimal)
    pool = ZERO
    plan_ids = {p[0] for p in ordered}
    for plan_id, amount in payments:
        if plan_id in plan_ids:
            linked[plan_id] += amount
        else:
            pool += amount
    covered = {}
    for plan_id, _due, amount in ordered:
        own = min(max(linked[plan_id], ZERO), amount)
        covered[plan_id] = own
        pool += linked[plan_id] - own
    for plan_id, _due, amount in ordered:
        if pool <= 0:
            break
        take = min(pool, amount - covered[plan_id])
        covered[plan_id] += take
        pool -= take
    return covered


def recompute_contract(contract: Contract) -> Contract:
    """Rebuild the kept figures of a (locked) contract from its rows: ``received``,
    each plan line's ``covered`` and ``next_due_date``."""
    payments = list(contract.payments.values_list("plan_id", "amount"))
    plans = list(contract.plans.order_by("due_date", "pk"))
    covered = allocate([(p.pk, p.due_date, p.amount) for p in plans], payments)
    changed = []
    for plan in plans:
        if plan.covered != covered[plan.pk]:
            plan.covered = covered[plan.pk]
            changed.append(plan)
    if changed:
        PaymentPlan.objects.bulk_update(changed, ["covered"])
    received = sum((amount for _plan, amount in payments), ZERO)
    next_due = next((p.due_date for p in plans if p.covered < p.amount), None)
    if (contract.received, contract.next_due_date) != (received, next_due):
        contract.received, contract.next_due_date = received, next_due
        Contract.objects.filter(pk=contract.pk).update(received=received, next_due_date=next_due)
    return contract


# --- contracts and orders ---------------------------------------------------------------


def _create_contract(*, actor, lines=(), plans=(), **fields) -> Contract:
    built = _build_lines(lines, ContractLine)
    if built:
        fields["amount"] = _lines_total(built)
    fields.setdefault("currency", default_currency())
    fields.setdefault("owner", actor)
    contract = Contract(created_by=actor, **fields)
    _check_term(contract.start_date, contract.end_date)
    contract.full_clean(exclude=[*TRUSTED, "number"])
    prefix = "DD" if contract.kind == ContractKind.ORDER else "HT"
    _save_numbered(contract, prefix, contract.sign_date)
    for line in built:
        line.contract = contract
    ContractLine.objects.bulk_create(built)
    _add_plans(contract, plans)
    recompute_contract(contract)
    return contract


def _add_plans(contract: Contract, plans) -> list[PaymentPlan]:
    rows = []
    for item in plans or ():
        due = _get(item, "due_date")
        if due is None:
            raise ValidationFailed(_("Every plan line needs a due date."), field="plans")
        amount = _money(_get(item, "amount"), "plans", allow_zero=False)
        rows.append(PaymentPlan(contract=contract, due_date=due, amount=amount,
                                note=(_get(item, "note") or "")[:200]))  # fmt: skip
    existing = sum((p.amount for p in contract.plans.all()), ZERO) if contract.pk else ZERO
    if existing + sum((r.amount for r in rows), ZERO) > contract.amount:
        raise ValidationFailed(
            _("The payment plan adds up to more than the contract's amount."), field="plans"
        )
    return PaymentPlan.objects.bulk_create(rows)


@transaction.atomic
def create_contract_from_opportunity(
    opportunity, *, actor, title=None, amount=None, lines=(), plans=(), sign_date=None,
    start_date=None, end_date=None, notes="", status=ContractStatus.ACTIVE, currency=None,
) -> Contract:  # fmt: skip
    """A contract for a won opportunity: its account, owner and product line; the amount
    is the lines' sum, else ``amount``, else the opportunity's; signed on the day it was
    won unless told otherwise. Refused for an open or lost opportunity."""
    if opportunity.status != OpportunityStatus.WON:
        raise ValidationFailed(
            _("Only a won opportunity gets a contract; win it first."),
            field="opportunity",
            code="not_won",
        )
    if status not in (ContractStatus.DRAFT, ContractStatus.ACTIVE, ContractStatus.COMPLETED):
        raise ValidationFailed(_("Choose draft, active or completed."), field="status")
    if sign_date is None:
        closed = opportunity.closed_at or timezone.now()
        sign_date = timezone.localtime(closed).date()
    return _create_contract(
        actor=actor, lines=lines, plans=plans, kind=ContractKind.CONTRACT,
        title=title or opportunity.name, account=opportunity.account, opportunity=opportunity,
        product_line=opportunity.product_line, owner=opportunity.owner or actor,
        amount=_money(amount if amount is not None else opportunity.amount, "amount"),
        currency=currency or opportunity.currency, sign_date=sign_date,
        start_date=start_date, end_date=end_date, notes=notes, status=status,
    )  # fmt: skip


def _check_threshold(amount: Decimal) -> None:
    threshold = out_of_funnel_threshold()
    if amount >= threshold:
        raise ValidationFailed(
            _(
                "Orders of %(threshold)s or more go through the funnel: create an "
                "opportunity for this sale, win it, then create its contract."
            )
            % {"threshold": f"{threshold:,.2f}"},
            field="amount",
            code="above_threshold",
        )


@transaction.atomic
def create_order(
    *, actor, account, title, sign_date, amount=None, lines=(), plans=(), owner=None,
    product_line=None, start_date=None, end_date=None, notes="", currency=None,
    status=ContractStatus.ACTIVE,
) -> Contract:  # fmt: skip
    """An out-of-funnel order: no opportunity, amount strictly below the threshold."""
    built = _build_lines(lines, ContractLine)
    total = _lines_total(built) if built else _money(amount or 0, "amount")
    if total <= 0:
        raise ValidationFailed(_("Enter the amount or the lines of the order."), field="amount")
    _check_threshold(total)
    if status not in (ContractStatus.DRAFT, ContractStatus.ACTIVE, ContractStatus.COMPLETED):
        raise ValidationFailed(_("Choose draft, active or completed."), field="status")
    return _create_contract(
        actor=actor, lines=lines, plans=plans, kind=ContractKind.ORDER, title=title,
        account=account, owner=owner or actor, product_line=product_line, amount=total,
        currency=currency or default_currency(), sign_date=sign_date, start_date=start_date,
        end_date=end_date, notes=notes, status=status,
    )  # fmt: skip


CONTRACT_FIELDS = {"title", "amount", "sign_date", "start_date", "end_date", "notes",
                   "product_line", "owner", "status", "currency"}  # fmt: skip
EDIT_STATUSES = {ContractStatus.DRAFT, ContractStatus.ACTIVE, ContractStatus.COMPLETED}


@transaction.atomic
def update_contract(contract: Contract, *, actor, version=None, lines=None, **fields) -> Contract:
    """Change a contract's fields (``lines``: replace every line; the amount becomes
    their sum). Cancel with :func:`cancel_contract`. A stale ``version`` is a 409."""
    unknown = set(fields) - CONTRACT_FIELDS
    if unknown:
        raise ValidationFailed(
            _("These fields cannot be changed: %s") % ", ".join(sorted(unknown)),
            field=sorted(unknown)[0],
        )
    locked = _lock(contract, version)
    _refuse_if_cancelled(locked)
    if "status" in fields and fields["status"] not in EDIT_STATUSES:
        raise ValidationFailed(_("Use “cancel” to cancel a contract."), field="status")
    for key, value in fields.items():
        if key == "amount":
            value = _money(value, "amount")
        setattr(locked, key, value)
    built = None
    if lines is not None:
        built = _build_lines(lines, ContractLine, contract=locked)
        if built:
            locked.amount = _lines_total(built)
    elif "amount" in fields and locked.lines.exists():
        raise ValidationFailed(
            _("This contract has lines: its amount is their sum; change the lines."),
            field="amount",
        )
    if locked.kind == ContractKind.ORDER:
        _check_threshold(locked.amount)
    planned = sum((p.amount for p in locked.plans.all()), ZERO)
    if planned > locked.amount:
        raise ValidationFailed(
            _("The payment plan adds up to more than the contract's amount."), field="amount"
        )
    _check_term(locked.start_date, locked.end_date)
    locked.full_clean(exclude=[*TRUSTED, "number"])
    locked.version += 1
    locked.save()
    if built is not None:
        locked.lines.all().delete()
        ContractLine.objects.bulk_create(built)
    return locked


@transaction.atomic
def cancel_contract(contract: Contract, *, actor, version=None, reason="") -> Contract:
    """Cancel a contract: it no longer counts as signed nor carries a receivable. Money
    already received stays recorded (refund it with a negative payment)."""
    locked = _lock(contract, version)
    _refuse_if_cancelled(locked)
    locked.status, locked.cancel_reason = ContractStatus.CANCELLED, (reason or "")[:300]
    _bump(locked, ["status", "cancel_reason"])
    return locked


# --- payment plans ----------------------------------------------------------------------


@transaction.atomic
def add_plan(contract: Contract, *, actor, due_date, amount, note="") -> PaymentPlan:
    """Add one instalment to the contract's payment plan."""
    locked = _lock(contract)
    _refuse_if_cancelled(locked)
    (plan,) = _add_plans(locked, [{"due_date": due_date, "amount": amount, "note": note}])
    recompute_contract(locked)
    plan.refresh_from_db()
    return plan


@transaction.atomic
def delete_plan(plan: PaymentPlan, *, actor) -> None:
    """Remove an instalment; payments linked to it join the common pool."""
    locked = _lock(plan.contract)
    _refuse_if_cancelled(locked)
    PaymentPlan.objects.filter(pk=plan.pk).delete()
    recompute_contract(locked)


# --- payments ---------------------------------------------------------------------------


def payment_fingerprint(contract_id, amount, paid_on, method, plan_id, reference, note) -> str:
    """What a payment says, hashed: a retry under the same idempotency key must match it
    (record_payment here, the payment import)."""
    data = [contract_id, str(amount), paid_on.isoformat(), method, plan_id, reference, note]
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()


def _replay(key: str, fingerprint: str) -> Payment | None:
    """The payment stored under ``key``, if any; a 409 when it was other data."""
    existing = Payment.objects.filter(idempotency_key=key).first()
    if existing is not None and existing.fingerprint != fingerprint:
        raise Conflict(
            _("This idempotency key was already used for a different payment."),
            field="idempotency_key",
            code="idempotency_conflict",
        )
    return existing


def record_payment(
    contract: Contract, *, actor, amount, paid_on, method=PaymentMethod.BANK_TRANSFER,
    plan=None, reference="", note="", idempotency_key=None,
) -> tuple[Payment, bool]:  # fmt: skip
    """Record money received (a negative amount is a refund). Returns (payment, created):
    with an ``idempotency_key`` already used for the same data, the first payment and
    False; for different data a 409. Holds under a race: the key is unique in the
    database and a losing insert is answered with the winner's payment."""
    amount = _money(amount, "amount", allow_negative=True, allow_zero=False)
    if method not in PaymentMethod.values:
        raise ValidationFailed(_("Choose a payment method."), field="method")
    if paid_on is None:
        raise ValidationFailed(_("Enter the date the money arrived."), field="paid_on")
    reference, note = (reference or "")[:100], (note or "")[:300]
    key = (idempotency_key or "").strip()[:100] or None
    plan_id = plan.pk if plan is not None else None
    fingerprint = payment_fingerprint(
        contract.pk, amount, paid_on, method, plan_id, reference, note
    )
    if key and (existing := _replay(key, fingerprint)) is not None:
        return existing, False
    with transaction.atomic():
        locked = _lock(contract)
        if plan is not None and plan.contract_id != locked.pk:
            raise ValidationFailed(_("Choose a plan line of this contract."), field="plan")
        if amount > 0 and locked.status == ContractStatus.CANCELLED:
            raise Conflict(
                _("This contract is cancelled: it takes no more payments (refunds only)."),
                field="amount",
                code="cancelled",
            )
        if amount < 0 and locked.received + amount < 0:
            raise ValidationFailed(
                _("A refund cannot exceed what was received (%(received)s).")
                % {"received": f"{locked.received:,.2f}"},
                field="amount",
                code="refund_too_large",
            )
        payment = Payment(
            contract=locked, plan=plan, amount=amount, paid_on=paid_on, method=method,
            reference=reference, note=note, idempotency_key=key, fingerprint=fingerprint,
            recorded_by=actor,
        )  # fmt: skip
        try:
            with transaction.atomic():  # a savepoint: a lost race leaves the rest usable
                payment.save()
        except IntegrityError:
            if key and (existing := _replay(key, fingerprint)) is not None:
                return existing, False
            raise
        recompute_contract(locked)
    return payment, True


@transaction.atomic
def delete_payment(payment: Payment, *, actor) -> None:
    """Remove a payment entered by mistake (admins only; others record a correction)."""
    if not actor.sees_everything:
        raise NotPermitted(_("Only an administrator may delete a payment."))
    locked = _lock(payment.contract)
    Payment.objects.filter(pk=payment.pk).delete()
    recompute_contract(locked)


# --- invoices and shipments -------------------------------------------------------------


@transaction.atomic
def add_invoice(contract: Contract, *, actor, number, issued_on, amount, note="") -> Invoice:
    """Record an invoice issued against a contract."""
    locked = _lock(contract)
    _refuse_if_cancelled(locked)
    if not (number or "").strip():
        raise ValidationFailed(_("Enter the invoice number."), field="number")
    amount = _money(amount, "amount", allow_zero=False)
    invoice = Invoice(
        contract=locked, number=number.strip(), issued_on=issued_on, amount=amount,
        note=note or "",
    )  # fmt: skip
    invoice.full_clean(exclude=TRUSTED)
    invoice.save()
    return invoice


@transaction.atomic
def cancel_invoice(invoice: Invoice, *, actor) -> Invoice:
    """Mark an invoice cancelled (it stays on record)."""
    _lock(invoice.contract)
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.CANCELLED)
    invoice.status = InvoiceStatus.CANCELLED
    return invoice


@transaction.atomic
def add_shipment(
    contract: Contract, *, actor, shipped_on, items="", number="",
    status=ShipmentStatus.PENDING, note="",
) -> Shipment:  # fmt: skip
    """Record a delivery against a contract; without a number one is generated."""
    locked = _lock(contract)
    _refuse_if_cancelled(locked)
    if status not in ShipmentStatus.values:
        raise ValidationFailed(_("Choose a status."), field="status")
    number = (number or "").strip() or f"{locked.number}-FH{locked.shipments.count() + 1}"
    shipment = Shipment(
        contract=locked, shipped_on=shipped_on, items=items or "", status=status,
        note=note or "", number=number,
    )  # fmt: skip
    shipment.full_clean(exclude=TRUSTED)
    shipment.save()
    return shipment


@transaction.atomic
def set_shipment_status(shipment: Shipment, status, *, actor) -> Shipment:
    """Move a shipment to pending, shipped or delivered."""
    if status not in ShipmentStatus.values:
        raise ValidationFailed(_("Choose a status."), field="status")
    _lock(shipment.contract)
    Shipment.objects.filter(pk=shipment.pk).update(status=status)
    shipment.status = status
    return shipment


# --- quotes -----------------------------------------------------------------------------


def _check_quote_opportunity(account, opportunity) -> None:
    if opportunity is not None and opportunity.account_id != account.pk:
        raise ValidationFailed(
            _("Choose an opportunity of the selected account."), field="opportunity"
        )


@transaction.atomic
def create_quote(
    *, actor, account, title, lines=(), opportunity=None, valid_until=None, notes="",
    owner=None, product_line=None, quote_date=None, currency=None,
) -> Quote:  # fmt: skip
    """A draft quote with its lines; the amount is their sum."""
    _check_quote_opportunity(account, opportunity)
    built = _build_lines(lines, QuoteLine)
    quote_date = quote_date or timezone.localdate()
    if valid_until and valid_until < quote_date:
        raise ValidationFailed(_("A quote cannot expire before its date."), field="valid_until")
    quote = Quote(
        title=title, account=account, opportunity=opportunity, owner=owner or actor,
        created_by=actor, valid_until=valid_until, notes=notes or "", quote_date=quote_date,
        product_line=product_line or (opportunity.product_line if opportunity else None),
        currency=currency or default_currency(), amount=_lines_total(built),
    )  # fmt: skip
    quote.full_clean(exclude=[*TRUSTED, "number"])
    _save_numbered(quote, "BJ", quote_date)
    for line in built:
        line.quote = quote
    QuoteLine.objects.bulk_create(built)
    return quote


def _lock_quote(quote: Quote, version) -> Quote:
    locked = Quote.objects.select_for_update().get(pk=quote.pk)
    check_version(locked, version)
    return locked


QUOTE_FIELDS = {"title", "valid_until", "notes", "owner", "opportunity", "product_line"}


@transaction.atomic
def update_quote(quote: Quote, *, actor, version=None, lines=None, **fields) -> Quote:
    """Change a draft or sent quote (``lines`` replaces every line)."""
    unknown = set(fields) - QUOTE_FIELDS
    if unknown:
        raise ValidationFailed(
            _("These fields cannot be changed: %s") % ", ".join(sorted(unknown)),
            field=sorted(unknown)[0],
        )
    locked = _lock_quote(quote, version)
    if locked.status not in (QuoteStatus.DRAFT, QuoteStatus.SENT):
        raise Conflict(_("Only a draft or sent quote can be changed."), code="closed")
    for key, value in fields.items():
        setattr(locked, key, value)
    _check_quote_opportunity(locked.account, locked.opportunity)
    if locked.valid_until and locked.valid_until < locked.quote_date:
        raise ValidationFailed(_("A quote cannot expire before its date."), field="valid_until")
    built = None
    if lines is not None:
        built = _build_lines(lines, QuoteLine, quote=locked)
        locked.amount = _lines_total(built)
    locked.full_clean(exclude=[*TRUSTED, "number"])
    locked.version += 1
    locked.save()
    if built is not None:
        locked.lines.all().delete()
        QuoteLine.objects.bulk_create(built)
    return locked


def _set_quote_status(quote, version, allowed_from, status) -> Quote:
    locked = _lock_quote(quote, version)
    if locked.status not in allowed_from:
        raise Conflict(
            _("The quote is %(status)s: this action does not apply.")
            % {"status": locked.get_status_display()},
            code="wrong_status",
        )
    locked.status = status
    locked.version += 1
    locked.save(update_fields=["status", "version", "updated_at"])
    return locked


@transaction.atomic
def mark_quote_sent(quote: Quote, *, actor, version=None) -> Quote:
    """The quote went to the customer."""
    if not quote.lines.exists():
        raise ValidationFailed(_("Add at least one line before sending."), field="lines")
    return _set_quote_status(quote, version, (QuoteStatus.DRAFT,), QuoteStatus.SENT)


@transaction.atomic
def reject_quote(quote: Quote, *, actor, version=None) -> Quote:
    """The customer said no."""
    return _set_quote_status(
        quote, version, (QuoteStatus.DRAFT, QuoteStatus.SENT), QuoteStatus.REJECTED
    )


@transaction.atomic
def expire_quote(quote: Quote, *, actor, version=None) -> Quote:
    """The quote's validity ran out without an answer."""
    return _set_quote_status(
        quote, version, (QuoteStatus.DRAFT, QuoteStatus.SENT), QuoteStatus.EXPIRED
    )


@transaction.atomic
def accept_quote(quote: Quote, *, actor, version=None, sign_date=None) -> Contract:
    """The customer accepted: the quote becomes a contract with the same lines, linked
    both ways. With an opportunity, it must be won; without one, the contract is an
    out-of-funnel order and must stay below the threshold."""
    locked = _lock_quote(quote, version)
    if locked.status not in (QuoteStatus.DRAFT, QuoteStatus.SENT):
        raise Conflict(
            _("The quote is %(status)s: this action does not apply.")
            % {"status": locked.get_status_display()},
            code="wrong_status",
        )
    lines = [
        {"product": ln.product, "quantity": ln.quantity, "unit_price": ln.unit_price}
        for ln in locked.lines.all()
    ]
    if not lines:
        raise ValidationFailed(_("A quote without lines cannot become a contract."), field="lines")
    sign_date = sign_date or timezone.localdate()
    if locked.opportunity_id:
        contract = create_contract_from_opportunity(
            locked.opportunity, actor=actor, title=locked.title, lines=lines,
            sign_date=sign_date, currency=locked.currency, notes=locked.notes,
        )  # fmt: skip
    else:
        contract = create_order(
            actor=actor, account=locked.account, title=locked.title, lines=lines,
            sign_date=sign_date, owner=locked.owner, product_line=locked.product_line,
            currency=locked.currency, notes=locked.notes,
        )  # fmt: skip
    locked.status, locked.contract = QuoteStatus.ACCEPTED, contract
    locked.version += 1
    locked.save(update_fields=["status", "contract", "version", "updated_at"])
    return contract
