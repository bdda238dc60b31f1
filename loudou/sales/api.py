"""Contracts, orders, payment plans, payments, invoices, shipments, quotes and receivables.

Every lookup goes through ``visible_to``: a contract (or quote) outside the caller's
scope answers 404 like one that does not exist; its lines, plan, payments, invoices and
shipments are reached only through it. Money is a decimal string ("1200.00"); refunds are
negative payments. ``POST /contracts/{id}/payments`` honours an ``Idempotency-Key``
header: a retry with the same key and body answers 200 with the first payment, the same
key with another body is a 409.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Header, Query, Router, Schema, Status

from loudou.api.pagination import LimitOffsetPagination, paginate
from loudou.core.exceptions import ValidationFailed
from loudou.customers.models import Account
from loudou.org.models import assignable_owners
from loudou.pipeline.filters import RowId
from loudou.pipeline.models import Opportunity, ProductLine

from . import queries, services
from .choices import PaymentMethod, ShipmentStatus
from .filters import ContractFilter, QuoteFilter, ReceivableFilter
from .models import Contract, Invoice, Payment, PaymentPlan, Quote, Shipment

router = Router(tags=["sales"])

Money = Field(..., max_digits=14, decimal_places=2)
EditableStatus = Literal["draft", "active", "completed"]
MethodValue = Literal[tuple(PaymentMethod.values)]
ShipmentStatusValue = Literal[tuple(ShipmentStatus.values)]


# --- schemas --------------------------------------------------------------------------


class SalesRef(Schema):
    id: int
    name: str

    @staticmethod
    def resolve_name(obj) -> str:
        return str(obj)


class ContractLineIn(Schema):
    product: str = Field(..., min_length=1, max_length=200)
    quantity: Decimal = Field(Decimal(1), ge=0, max_digits=12, decimal_places=2)
    unit_price: Decimal = Field(..., ge=0, max_digits=14, decimal_places=2)


class ContractLineOut(Schema):
    id: int
    product: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


class PaymentPlanIn(Schema):
    due_date: date
    amount: Decimal = Field(..., gt=0, max_digits=14, decimal_places=2)
    note: str = Field("", max_length=200)


class PaymentPlanOut(Schema):
    id: int
    contract_id: int
    due_date: date
    amount: Decimal
    covered: Decimal = Field(..., description="How much of this line the payments cover.")
    outstanding: Decimal
    overdue: bool
    note: str

    @staticmethod
    def resolve_overdue(obj) -> bool:
        return obj.is_overdue()


class ContractOut(Schema):
    id: int
    number: str
    kind: str
    title: str
    account: SalesRef
    owner: SalesRef | None
    opportunity_id: int | None
    product_line_id: int | None
    amount: Decimal
    currency: str
    received: Decimal = Field(..., description="Σ payments, refunds negative.")
    receivable: Decimal = Field(..., description="amount − received; negative is a credit.")
    next_due_date: date | None = Field(
        ..., description="Due date of the earliest plan line not fully covered."
    )
    overdue: bool
    sign_date: date
    start_date: date | None
    end_date: date | None
    status: str
    notes: str
    cancel_reason: str
    version: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_overdue(obj) -> bool:
        return obj.is_overdue()


class ContractDetailOut(ContractOut):
    lines: list[ContractLineOut]
    plans: list[PaymentPlanOut]

    @staticmethod
    def resolve_lines(obj):
        return obj.lines.all()

    @staticmethod
    def resolve_plans(obj):
        return obj.plans.all()


class ContractFromOpportunityIn(Schema):
    opportunity_id: RowId = Field(..., description="A won opportunity you may see.")
    title: str | None = Field(None, min_length=1, max_length=200)
    amount: Decimal | None = Field(
        None, ge=0, max_digits=14, decimal_places=2,
        description="Ignored when lines are given (their sum); default: the deal's amount.",
    )  # fmt: skip
    lines: list[ContractLineIn] = Field(default_factory=list, max_length=500)
    plans: list[PaymentPlanIn] = Field(default_factory=list, max_length=120)
    sign_date: date | None = Field(None, description="Default: the day the deal was won.")
    start_date: date | None = None
    end_date: date | None = None
    status: EditableStatus = "active"
    notes: str = Field("", max_length=5000)


class ContractOrderIn(Schema):
    account_id: RowId
    title: str = Field(..., min_length=1, max_length=200)
    amount: Decimal | None = Field(
        None, ge=0, max_digits=14, decimal_places=2,
        description="Must stay below LOUDOU_OUT_OF_FUNNEL_THRESHOLD; ignored with lines.",
    )  # fmt: skip
    lines: list[ContractLineIn] = Field(default_factory=list, max_length=500)
    plans: list[PaymentPlanIn] = Field(default_factory=list, max_length=120)
    sign_date: date
    start_date: date | None = None
    end_date: date | None = None
    owner_id: RowId | None = Field(None, description="Default: you.")
    product_line_id: RowId | None = None
    status: EditableStatus = "active"
    notes: str = Field("", max_length=5000)


class ContractPatch(Schema):
    version: int = Field(..., ge=1, le=2**31 - 1, description="The version you last read.")
    title: str = Field(None, min_length=1, max_length=200)
    amount: Decimal = Field(None, ge=0, max_digits=14, decimal_places=2)
    lines: list[ContractLineIn] = Field(None, max_length=500, description="Replaces every line.")
    sign_date: date = None
    start_date: date | None = None
    end_date: date | None = None
    status: EditableStatus = None
    notes: str = Field(None, max_length=5000)
    owner_id: RowId = None
    product_line_id: RowId | None = None


class ContractCancelIn(Schema):
    version: int = Field(..., ge=1, le=2**31 - 1)
    reason: str = Field("", max_length=300)


class PaymentIn(Schema):
    amount: Decimal = Field(
        ..., max_digits=14, decimal_places=2, description="Negative for a refund; not zero."
    )
    paid_on: date
    method: MethodValue = PaymentMethod.BANK_TRANSFER.value
    plan_id: RowId | None = Field(None, description="The plan line this pays, if any.")
    reference: str = Field("", max_length=100)
    note: str = Field("", max_length=300)


class PaymentOut(Schema):
    id: int
    contract_id: int
    plan_id: int | None
    amount: Decimal
    paid_on: date
    method: str
    reference: str
    note: str
    recorded_by_id: int | None
    created_at: datetime


class InvoiceIn(Schema):
    number: str = Field(..., min_length=1, max_length=40)
    issued_on: date
    amount: Decimal = Field(..., gt=0, max_digits=14, decimal_places=2)
    note: str = Field("", max_length=300)


class InvoiceOut(Schema):
    id: int
    contract_id: int
    number: str
    issued_on: date
    amount: Decimal
    status: str
    note: str


class ShipmentIn(Schema):
    number: str = Field("", max_length=40, description="Default: generated.")
    shipped_on: date
    items: str = Field("", max_length=5000)
    status: ShipmentStatusValue = ShipmentStatus.PENDING.value
    note: str = Field("", max_length=300)


class ShipmentPatch(Schema):
    status: ShipmentStatusValue


class ShipmentOut(Schema):
    id: int
    contract_id: int
    number: str
    shipped_on: date
    items: str
    status: str
    note: str


class QuoteLineOut(Schema):
    id: int
    product: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


class QuoteOut(Schema):
    id: int
    number: str
    title: str
    account: SalesRef
    owner: SalesRef | None
    opportunity_id: int | None
    product_line_id: int | None
    amount: Decimal
    currency: str
    quote_date: date
    valid_until: date | None
    status: str
    notes: str
    contract_id: int | None
    version: int
    lines: list[QuoteLineOut]

    @staticmethod
    def resolve_lines(obj):
        return obj.lines.all()


class QuoteIn(Schema):
    account_id: RowId
    title: str = Field(..., min_length=1, max_length=200)
    opportunity_id: RowId | None = None
    lines: list[ContractLineIn] = Field(default_factory=list, max_length=500)
    quote_date: date | None = None
    valid_until: date | None = None
    notes: str = Field("", max_length=5000)


class QuotePatch(Schema):
    version: int = Field(..., ge=1, le=2**31 - 1)
    title: str = Field(None, min_length=1, max_length=200)
    opportunity_id: RowId | None = None
    lines: list[ContractLineIn] = Field(None, max_length=500)
    valid_until: date | None = None
    notes: str = Field(None, max_length=5000)


class QuoteActionIn(Schema):
    version: int = Field(..., ge=1, le=2**31 - 1)


class QuoteAcceptIn(Schema):
    version: int = Field(..., ge=1, le=2**31 - 1)
    sign_date: date | None = Field(None, description="Default: today.")


class ReceivableOut(Schema):
    id: int
    number: str
    title: str
    kind: str
    account: SalesRef
    owner: SalesRef | None
    amount: Decimal
    received: Decimal
    receivable: Decimal
    overdue_amount: Decimal
    next_due_date: date | None
    days_overdue: int = Field(..., description="Days since the oldest unpaid due date, or 0.")

    @staticmethod
    def resolve_days_overdue(obj) -> int:
        if obj.next_due_date is None:
            return 0
        return max((timezone.localdate() - obj.next_due_date).days, 0)


class ReceivableSummaryOut(Schema):
    owed: Decimal = Field(..., description="Σ positive receivables.")
    credit: Decimal = Field(..., description="Σ negative receivables (over-payments).")
    net: Decimal
    count: int
    overdue: Decimal
    overdue_count: int
    buckets: dict[str, Decimal] = Field(
        ..., description="Overdue amount by days past due: 0-30, 31-60, 61-90, 90+."
    )


class OverduePlanOut(Schema):
    id: int
    contract: SalesRef
    account: SalesRef
    owner: SalesRef | None
    due_date: date
    amount: Decimal
    covered: Decimal
    outstanding: Decimal
    days_overdue: int

    @staticmethod
    def resolve_account(obj):
        return obj.contract.account

    @staticmethod
    def resolve_owner(obj):
        return obj.contract.owner

    @staticmethod
    def resolve_days_overdue(obj) -> int:
        return (timezone.localdate() - obj.due_date).days


# --- helpers --------------------------------------------------------------------------


def _contracts(request):
    return Contract.objects.visible_to(request.auth).select_related("account", "owner")


def _contract(request, contract_id) -> Contract:
    return get_object_or_404(_contracts(request), pk=contract_id)


def _detail(request, contract) -> Contract:
    return _contracts(request).prefetch_related("lines", "plans").get(pk=contract.pk)


def _quotes(request):
    return (
        Quote.objects.visible_to(request.auth)
        .select_related("account", "owner")
        .prefetch_related("lines")
    )


def _quote(request, quote_id) -> Quote:
    return get_object_or_404(_quotes(request), pk=quote_id)


def _visible(model, request, pk, field):
    if pk is None:
        return None
    found = model.objects.visible_to(request.auth).filter(pk=pk).first()
    if found is None:
        raise ValidationFailed(_("Not found or not visible to you."), field=field)
    return found


def _product_line(pk):
    if pk is None:
        return None
    line = ProductLine.objects.filter(pk=pk).first()
    if line is None:
        raise ValidationFailed(_("Unknown product line."), field="product_line_id")
    return line


def _owner(request, pk):
    owner = assignable_owners(request.auth).filter(pk=pk).first()
    if owner is None:
        raise ValidationFailed(_("You cannot give this record to that user."), field="owner_id")
    return owner


def _dump(items):
    return [item.model_dump() for item in items or ()]


# --- contracts ------------------------------------------------------------------------


@router.get("/contracts", response=list[ContractOut])
@paginate(LimitOffsetPagination)
def list_contracts(request, filters: Query[ContractFilter]):
    """Contracts and orders you may see, with the list page's filters."""
    return filters.apply(_contracts(request))


@router.post("/contracts", response={201: ContractDetailOut})
def create_contract(request, payload: ContractFromOpportunityIn):
    """A contract for a won opportunity (422 for an open or lost one)."""
    opp = _visible(Opportunity, request, payload.opportunity_id, "opportunity_id")
    data = payload.model_dump(exclude={"opportunity_id", "lines", "plans"})
    contract = services.create_contract_from_opportunity(
        opp, actor=request.auth, lines=_dump(payload.lines), plans=_dump(payload.plans), **data
    )
    return Status(201, _detail(request, contract))


@router.post("/orders", response={201: ContractDetailOut})
def create_order(request, payload: ContractOrderIn):
    """An out-of-funnel order: no opportunity; its amount must stay below the threshold
    (otherwise 422 on ``amount``: create an opportunity)."""
    data = payload.model_dump(exclude={"account_id", "lines", "plans", "owner_id",
                                       "product_line_id"})  # fmt: skip
    contract = services.create_order(
        actor=request.auth,
        account=_visible(Account, request, payload.account_id, "account_id"),
        owner=_owner(request, payload.owner_id) if payload.owner_id else request.auth,
        product_line=_product_line(payload.product_line_id),
        lines=_dump(payload.lines),
        plans=_dump(payload.plans),
        **data,
    )
    return Status(201, _detail(request, contract))


@router.get("/contracts/{contract_id}", response=ContractDetailOut)
def get_contract(request, contract_id: RowId):
    return _detail(request, _contract(request, contract_id))


@router.patch("/contracts/{contract_id}", response=ContractDetailOut)
def update_contract(request, contract_id: RowId, payload: ContractPatch):
    """Change fields; ``version`` must be the one you read (409 otherwise)."""
    contract = _contract(request, contract_id)
    data = payload.model_dump(exclude_unset=True)
    version = data.pop("version")
    lines = data.pop("lines", None)
    if "owner_id" in data:
        owner_id = data.pop("owner_id")
        if owner_id != contract.owner_id:
            data["owner"] = _owner(request, owner_id)
    if "product_line_id" in data:
        data["product_line"] = _product_line(data.pop("product_line_id"))
    for key in ("title", "sign_date", "notes", "status", "amount"):
        if key in data and data[key] is None:
            raise ValidationFailed(_("This field cannot be empty."), field=key)
    services.update_contract(
        contract, actor=request.auth, version=version,
        lines=_dump(payload.lines) if lines is not None else None, **data,
    )  # fmt: skip
    return _detail(request, contract)


@router.post("/contracts/{contract_id}/cancel", response=ContractDetailOut)
def cancel_contract(request, contract_id: RowId, payload: ContractCancelIn):
    """Cancel: no longer signed, no receivable. Payments stay on record."""
    contract = _contract(request, contract_id)
    services.cancel_contract(
        contract, actor=request.auth, version=payload.version, reason=payload.reason
    )
    return _detail(request, contract)


@router.get("/contracts/{contract_id}/lines", response=list[ContractLineOut])
def list_lines(request, contract_id: RowId):
    return _contract(request, contract_id).lines.all()


@router.get("/contracts/{contract_id}/plans", response=list[PaymentPlanOut])
def list_plans(request, contract_id: RowId):
    """The payment plan in due-date order, with what the payments cover of each line."""
    return _contract(request, contract_id).plans.all()


@router.post("/contracts/{contract_id}/plans", response={201: PaymentPlanOut})
def add_plan(request, contract_id: RowId, payload: PaymentPlanIn):
    """Add an instalment (422 when the plan would exceed the contract's amount)."""
    contract = _contract(request, contract_id)
    plan = services.add_plan(contract, actor=request.auth, **payload.model_dump())
    return Status(201, plan)


@router.delete("/contracts/{contract_id}/plans/{plan_id}", response={204: None})
def delete_plan(request, contract_id: RowId, plan_id: RowId):
    """Remove an instalment; payments linked to it then count for the others."""
    contract = _contract(request, contract_id)
    plan = get_object_or_404(PaymentPlan, pk=plan_id, contract=contract)
    services.delete_plan(plan, actor=request.auth)
    return Status(204, None)


@router.get("/contracts/{contract_id}/payments", response=list[PaymentOut])
def list_contract_payments(request, contract_id: RowId):
    return _contract(request, contract_id).payments.order_by("-paid_on", "-pk")


@router.post("/contracts/{contract_id}/payments", response={200: PaymentOut, 201: PaymentOut})
def record_payment(
    request,
    contract_id: RowId,
    payload: PaymentIn,
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        max_length=100,
        description="Send the same key when retrying: the payment is stored once.",
    ),
):
    """Record money received (negative: a refund). 201 for a new payment; 200 with the
    first payment for a retry with the same Idempotency-Key; 409 for that key with other
    data or a cancelled contract; 422 for a refund beyond what was received."""
    contract = _contract(request, contract_id)
    plan = None
    if payload.plan_id is not None:
        plan = PaymentPlan.objects.filter(pk=payload.plan_id, contract=contract).first()
        if plan is None:
            raise ValidationFailed(_("Choose a plan line of this contract."), field="plan_id")
    data = payload.model_dump(exclude={"plan_id"})
    payment, created = services.record_payment(
        contract, actor=request.auth, plan=plan, idempotency_key=idempotency_key, **data
    )
    return Status(201 if created else 200, Payment.objects.get(pk=payment.pk))


@router.get("/payments", response=list[PaymentOut])
@paginate(LimitOffsetPagination)
def list_payments(
    request,
    paid_from: date | None = None,
    paid_to: date | None = None,
    owner: RowId | None = None,
):
    """Payments of the contracts you may see, newest first."""
    qs = Payment.objects.visible_to(request.auth)
    if paid_from:
        qs = qs.filter(paid_on__gte=paid_from)
    if paid_to:
        qs = qs.filter(paid_on__lte=paid_to)
    if owner is not None:
        qs = qs.filter(contract__owner_id=owner)
    return qs.order_by("-paid_on", "-pk")


@router.get("/contracts/{contract_id}/invoices", response=list[InvoiceOut])
def list_invoices(request, contract_id: RowId):
    return _contract(request, contract_id).invoices.all()


@router.post("/contracts/{contract_id}/invoices", response={201: InvoiceOut})
def add_invoice(request, contract_id: RowId, payload: InvoiceIn):
    contract = _contract(request, contract_id)
    return Status(201, services.add_invoice(contract, actor=request.auth, **payload.model_dump()))


@router.post("/invoices/{invoice_id}/cancel", response=InvoiceOut)
def cancel_invoice(request, invoice_id: RowId):
    invoice = get_object_or_404(Invoice.objects.visible_to(request.auth), pk=invoice_id)
    return services.cancel_invoice(invoice, actor=request.auth)


@router.get("/contracts/{contract_id}/shipments", response=list[ShipmentOut])
def list_shipments(request, contract_id: RowId):
    return _contract(request, contract_id).shipments.all()


@router.post("/contracts/{contract_id}/shipments", response={201: ShipmentOut})
def add_shipment(request, contract_id: RowId, payload: ShipmentIn):
    contract = _contract(request, contract_id)
    shipment = services.add_shipment(contract, actor=request.auth, **payload.model_dump())
    return Status(201, shipment)


@router.patch("/shipments/{shipment_id}", response=ShipmentOut)
def update_shipment(request, shipment_id: RowId, payload: ShipmentPatch):
    shipment = get_object_or_404(Shipment.objects.visible_to(request.auth), pk=shipment_id)
    return services.set_shipment_status(shipment, payload.status, actor=request.auth)


# --- receivables ----------------------------------------------------------------------


@router.get("/receivables", response=list[ReceivableOut])
@paginate(LimitOffsetPagination)
def list_receivables(request, filters: Query[ReceivableFilter]):
    """Signed contracts owing money or holding a credit; overdue first."""
    qs = filters.apply(queries.receivables(_contracts(request)))
    return queries.with_overdue(qs)


@router.get("/receivables/summary", response=ReceivableSummaryOut)
def receivables_summary(request, filters: Query[ReceivableFilter]):
    """Totals of the receivables you may see: owed, credit, overdue and ageing buckets."""
    return queries.receivable_totals(filters.apply(Contract.objects.visible_to(request.auth)))


@router.get("/receivables/overdue", response=list[OverduePlanOut])
@paginate(LimitOffsetPagination)
def list_overdue(request, filters: Query[ReceivableFilter]):
    """Plan lines past due and not fully paid, oldest first."""
    return queries.overdue_plans(filters.apply(Contract.objects.visible_to(request.auth)))


# --- quotes ---------------------------------------------------------------------------


@router.get("/quotes", response=list[QuoteOut])
@paginate(LimitOffsetPagination)
def list_quotes(request, filters: Query[QuoteFilter]):
    return filters.apply(_quotes(request))


@router.post("/quotes", response={201: QuoteOut})
def create_quote(request, payload: QuoteIn):
    quote = services.create_quote(
        actor=request.auth,
        account=_visible(Account, request, payload.account_id, "account_id"),
        opportunity=_visible(Opportunity, request, payload.opportunity_id, "opportunity_id"),
        title=payload.title,
        lines=_dump(payload.lines),
        quote_date=payload.quote_date,
        valid_until=payload.valid_until,
        notes=payload.notes,
    )
    return Status(201, _quotes(request).get(pk=quote.pk))


@router.get("/quotes/{quote_id}", response=QuoteOut)
def get_quote(request, quote_id: RowId):
    return _quote(request, quote_id)


@router.patch("/quotes/{quote_id}", response=QuoteOut)
def update_quote(request, quote_id: RowId, payload: QuotePatch):
    """Change a draft or sent quote (409 once accepted, rejected or expired)."""
    quote = _quote(request, quote_id)
    data = payload.model_dump(exclude_unset=True)
    version = data.pop("version")
    lines = data.pop("lines", None)
    if "opportunity_id" in data:
        data["opportunity"] = _visible(
            Opportunity, request, data.pop("opportunity_id"), "opportunity_id"
        )
    for key in ("title", "notes"):
        if key in data and data[key] is None:
            raise ValidationFailed(_("This field cannot be empty."), field=key)
    services.update_quote(
        quote, actor=request.auth, version=version,
        lines=_dump(payload.lines) if lines is not None else None, **data,
    )  # fmt: skip
    return _quote(request, quote_id)


@router.post("/quotes/{quote_id}/send", response=QuoteOut)
def send_quote(request, quote_id: RowId, payload: QuoteActionIn):
    services.mark_quote_sent(_quote(request, quote_id), actor=request.auth, version=payload.version)
    return _quote(request, quote_id)


@router.post("/quotes/{quote_id}/reject", response=QuoteOut)
def reject_quote(request, quote_id: RowId, payload: QuoteActionIn):
    services.reject_quote(_quote(request, quote_id), actor=request.auth, version=payload.version)
    return _quote(request, quote_id)


@router.post("/quotes/{quote_id}/accept", response={201: ContractDetailOut})
def accept_quote(request, quote_id: RowId, payload: QuoteAcceptIn):
    """The customer accepted: a contract with the quote's lines (201). With an
    opportunity it must be won; without one it is an order below the threshold."""
    contract = services.accept_quote(
        _quote(request, quote_id), actor=request.auth, version=payload.version,
        sign_date=payload.sign_date,
    )  # fmt: skip
    return Status(201, _detail(request, contract))
