"""Sales pages: contracts and orders, their detail with plan, payments, invoices and
shipments, the receivables page, quotes. Thin views: parse, call a service, render.
Every lookup is scoped with ``visible_to`` (404 outside it); a service's refusal lands on
the form as a field error."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loudou.analytics import exports
from loudou.core.exceptions import ServiceError
from loudou.org.models import User
from loudou.pipeline.choices import Status as OpportunityStatus
from loudou.pipeline.models import Opportunity
from loudou.web.helpers import read_filters, save_with_service

from . import queries, services
from .choices import ContractKind, ContractStatus, QuoteStatus, ShipmentStatus
from .filters import ContractFilter, QuoteFilter, ReceivableFilter
from .forms import (
    CancelForm,
    ContractEditForm,
    ContractForm,
    InvoiceForm,
    LineFormSet,
    OrderForm,
    PaymentForm,
    PlanForm,
    QuoteForm,
    ShipmentForm,
    line_initial,
    lines_of,
)
from .models import Contract, Invoice, Payment, PaymentPlan, Quote, Shipment

LIST_PAGE = 50
EXPORT_LIMIT = 100_000


def _contract(request, pk) -> Contract:
    return get_object_or_404(
        Contract.objects.visible_to(request.user).select_related(
            "account", "owner", "opportunity", "product_line"
        ),
        pk=pk,
    )


def _query_without(request, *keys) -> str:
    query = request.GET.copy()
    for key in keys:
        query.pop(key, None)
    return query.urlencode()


def _owners(request):
    return User.objects.visible_to(request.user).filter(is_active=True)


# --- contracts ---------------------------------------------------------------------------


@login_required
def contract_list(request):
    """Contracts and orders the user may see, with filters; ?format=csv|xlsx downloads
    the filtered rows."""
    filters = read_filters(request, ContractFilter)
    qs = filters.apply(Contract.objects.visible_to(request.user)).select_related("account", "owner")
    fmt = request.GET.get("format")
    if fmt in exports.FORMATS:
        return _export_contracts(fmt, qs)
    page = Paginator(qs, LIST_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "sales/contract_list.html",
        {
            "nav": "sales",
            "page": page,
            "filters": filters,
            "query": _query_without(request, "page", "format"),
            "owners": _owners(request),
            "statuses": ContractStatus.choices,
            "kinds": ContractKind.choices,
            "today": timezone.localdate(),
            "threshold": services.out_of_funnel_threshold(),
        },
    )


def _export_contracts(fmt, qs):
    headers = [
        _("Number"),
        _("Kind"),
        _("Title"),
        _("Account"),
        _("Owner"),
        _("Sign date"),
        _("Status"),
        _("Amount"),
        _("Received"),
        _("Receivable"),
        _("Next due date"),
    ]
    rows = (
        [
            c.number,
            c.get_kind_display(),
            c.title,
            c.account.name,
            str(c.owner or ""),
            c.sign_date,
            c.get_status_display(),
            c.amount,
            c.received,
            c.receivable,
            c.next_due_date,
        ]
        for c in qs[:EXPORT_LIMIT].iterator(chunk_size=2000)
    )
    return exports.table_response(fmt, "contracts", headers, rows)


@login_required
def contract_detail(request, pk):
    contract = _contract(request, pk)
    return render(request, "sales/contract_detail.html", _detail_context(request, contract))


def _detail_context(request, contract, **forms):
    today = timezone.localdate()
    plans = list(contract.plans.all())
    return {
        "nav": "sales",
        "contract": contract,
        "today": today,
        "lines": contract.lines.all(),
        "plans": plans,
        "payments": contract.payments.select_related("plan", "recorded_by"),
        "invoices": contract.invoices.all(),
        "shipments": contract.shipments.all(),
        "overdue": sum((p.outstanding for p in plans if p.is_overdue(today)), 0),
        "payment_form": forms.get("payment_form") or PaymentForm(contract=contract),
        "plan_form": forms.get("plan_form") or PlanForm(),
        "invoice_form": forms.get("invoice_form") or InvoiceForm(initial={"issued_on": today}),
        "shipment_form": forms.get("shipment_form") or ShipmentForm(initial={"shipped_on": today}),
        "cancel_form": forms.get("cancel_form")
        or CancelForm(initial={"version": contract.version}),
        "open_form": forms.get("open_form", ""),
        "quote": Quote.objects.visible_to(request.user).filter(contract=contract).first(),
        "shipment_statuses": ShipmentStatus.choices,
        "plan_action": reverse("sales:plan-add", args=[contract.pk]),
        "payment_action": reverse("sales:payment-create", args=[contract.pk]),
        "invoice_action": reverse("sales:invoice-add", args=[contract.pk]),
        "shipment_action": reverse("sales:shipment-add", args=[contract.pk]),
    }


@login_required
def contract_create(request, opportunity_id):
    """A contract for a won opportunity the user may see."""
    opp = get_object_or_404(
        Opportunity.objects.visible_to(request.user).select_related("account"), pk=opportunity_id
    )
    closed = timezone.localtime(opp.closed_at).date() if opp.closed_at else timezone.localdate()
    form = ContractForm(request.POST or None, initial={"title": opp.name, "sign_date": closed})
    formset = LineFormSet(request.POST or None, prefix="lines")
    if opp.status != OpportunityStatus.WON:
        form.add_error(None, _("Only a won opportunity gets a contract; win it first."))
    elif request.method == "POST" and form.is_valid() and formset.is_valid():
        data = form.cleaned_data
        contract = save_with_service(
            form,
            lambda: services.create_contract_from_opportunity(
                opp, actor=request.user, lines=lines_of(formset), **data
            ),
        )
        if contract:
            messages.success(request, _("Contract %s created.") % contract.number)
            return redirect(contract)
    return render(
        request,
        "sales/contract_form.html",
        {
            "nav": "sales",
            "form": form,
            "formset": formset,
            "opp": opp,
            "heading": _("New contract"),
        },
    )


@login_required
def order_create(request):
    """An out-of-funnel order (below the threshold; otherwise a field error on amount)."""
    initial = {"owner": request.user, "sign_date": timezone.localdate()}
    if request.GET.get("account", "").isdigit():
        initial["account"] = int(request.GET["account"])
    form = OrderForm(request.POST or None, actor=request.user, initial=initial)
    formset = LineFormSet(request.POST or None, prefix="lines")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        data = form.cleaned_data
        contract = save_with_service(
            form, lambda: services.create_order(actor=request.user, lines=lines_of(formset), **data)
        )
        if contract:
            messages.success(request, _("Order %s created.") % contract.number)
            return redirect(contract)
    return render(
        request,
        "sales/contract_form.html",
        {
            "nav": "sales",
            "form": form,
            "formset": formset,
            "heading": _("New order"),
            "threshold": services.out_of_funnel_threshold(),
        },
    )


@login_required
def contract_edit(request, pk):
    contract = _contract(request, pk)
    if contract.is_cancelled:
        messages.error(request, _("This contract is cancelled."))
        return redirect(contract)
    form = ContractEditForm(request.POST or None, instance=contract, actor=request.user)
    formset = LineFormSet(request.POST or None, prefix="lines", initial=line_initial(contract))
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        data = dict(form.cleaned_data)
        version = data.pop("version")
        lines = lines_of(formset)
        had_lines = contract.lines.exists()
        if lines or had_lines:
            data.pop("amount", None)
        saved = save_with_service(
            form,
            lambda: services.update_contract(
                Contract.objects.get(pk=pk),
                actor=request.user,
                version=version,
                lines=lines if (lines or had_lines) else None,
                **data,
            ),
        )
        if saved:
            messages.success(request, _("Contract saved."))
            return redirect(saved)
    return render(
        request,
        "sales/contract_form.html",
        {
            "nav": "sales",
            "form": form,
            "formset": formset,
            "contract": contract,
            "heading": _("Edit %s") % contract.number,
        },
    )


@login_required
@require_POST
def contract_cancel(request, pk):
    contract = _contract(request, pk)
    form = CancelForm(request.POST)
    if form.is_valid():
        done = save_with_service(
            form,
            lambda: services.cancel_contract(
                contract,
                actor=request.user,
                version=form.cleaned_data["version"],
                reason=form.cleaned_data["reason"],
            ),
        )
        if done:
            messages.success(request, _("Contract cancelled."))
            return redirect(contract)
    ctx = _detail_context(request, contract, cancel_form=form, open_form="cancel")
    return render(request, "sales/contract_detail.html", ctx, status=422)


@login_required
@require_POST
def payment_create(request, pk):
    """Record a payment. The form's hidden key makes a double submit store it once."""
    contract = _contract(request, pk)
    form = PaymentForm(request.POST, contract=contract)
    if form.is_valid():
        data = dict(form.cleaned_data)
        result = save_with_service(
            form, lambda: services.record_payment(contract, actor=request.user, **data)
        )
        if result:
            payment, created = result
            if created:
                messages.success(request, _("Payment recorded."))
            else:
                messages.info(request, _("This payment was already recorded."))
            return redirect(contract)
    ctx = _detail_context(request, contract, payment_form=form, open_form="payment")
    return render(request, "sales/contract_detail.html", ctx, status=422)


def _child_action(request, pk, form_class, key, call, done):
    contract = _contract(request, pk)
    form = form_class(request.POST)
    if form.is_valid() and save_with_service(form, lambda: call(contract, form.cleaned_data)):
        messages.success(request, done)
        return redirect(contract)
    ctx = _detail_context(request, contract, **{key: form}, open_form=key.replace("_form", ""))
    return render(request, "sales/contract_detail.html", ctx, status=422)


@login_required
@require_POST
def plan_add(request, pk):
    return _child_action(
        request,
        pk,
        PlanForm,
        "plan_form",
        lambda c, d: services.add_plan(c, actor=request.user, **d),
        _("Plan line added."),
    )


@login_required
@require_POST
def invoice_add(request, pk):
    return _child_action(
        request,
        pk,
        InvoiceForm,
        "invoice_form",
        lambda c, d: services.add_invoice(c, actor=request.user, **d),
        _("Invoice recorded."),
    )


@login_required
@require_POST
def shipment_add(request, pk):
    return _child_action(
        request,
        pk,
        ShipmentForm,
        "shipment_form",
        lambda c, d: services.add_shipment(c, actor=request.user, **d),
        _("Shipment recorded."),
    )


def _child_run(request, pk, model, child_id, call, done):
    """Run ``call`` on a plan line, payment, invoice or shipment of a contract the user
    may see (404 otherwise); a service's refusal becomes an error message."""
    contract = _contract(request, pk)
    child = get_object_or_404(model, pk=child_id, contract=contract)
    try:
        call(child)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect(contract)


@login_required
@require_POST
def plan_delete(request, pk, plan_id):
    return _child_run(
        request,
        pk,
        PaymentPlan,
        plan_id,
        lambda plan: services.delete_plan(plan, actor=request.user),
        _("Plan line removed."),
    )


@login_required
@require_POST
def payment_delete(request, pk, payment_id):
    return _child_run(
        request,
        pk,
        Payment,
        payment_id,
        lambda payment: services.delete_payment(payment, actor=request.user),
        _("Payment deleted."),
    )


@login_required
@require_POST
def invoice_cancel(request, pk, invoice_id):
    return _child_run(
        request,
        pk,
        Invoice,
        invoice_id,
        lambda invoice: services.cancel_invoice(invoice, actor=request.user),
        _("Invoice cancelled."),
    )


@login_required
@require_POST
def shipment_status(request, pk, shipment_id):
    status = request.POST.get("status", "")
    return _child_run(
        request,
        pk,
        Shipment,
        shipment_id,
        lambda shipment: services.set_shipment_status(shipment, status, actor=request.user),
        _("Shipment updated."),
    )


# --- receivables ---------------------------------------------------------------------------


@login_required
def receivables(request):
    """Signed contracts owing money (or holding a credit): overdue first, the ageing of
    the overdue amounts, totals; ?format=csv|xlsx downloads the filtered rows."""
    filters = read_filters(request, ReceivableFilter)
    today = timezone.localdate()
    scoped = filters.apply(Contract.objects.visible_to(request.user))
    qs = queries.with_overdue(queries.receivables(scoped), today).select_related("account", "owner")
    fmt = request.GET.get("format")
    if fmt in exports.FORMATS:
        return _export_receivables(fmt, qs, today)
    totals = queries.receivable_totals(scoped, today)
    paginator = Paginator(qs, LIST_PAGE)
    paginator.count = totals["count"]  # the same rows: no second count over them
    page = paginator.get_page(request.GET.get("page"))
    for contract in page:
        contract.days_overdue = (
            (today - contract.next_due_date).days if contract.is_overdue(today) else 0
        )
    return render(
        request,
        "sales/receivables.html",
        {
            "nav": "sales",
            "page": page,
            "filters": filters,
            "totals": totals,
            "buckets": queries.AGEING_BUCKETS,
            "query": _query_without(request, "page", "format"),
            "owners": _owners(request),
            "today": today,
        },
    )


def _export_receivables(fmt, qs, today):
    headers = [
        _("Number"),
        _("Title"),
        _("Account"),
        _("Owner"),
        _("Amount"),
        _("Received"),
        _("Receivable"),
        _("Overdue"),
        _("Oldest unpaid due date"),
        _("Days overdue"),
    ]
    rows = (
        [
            c.number,
            c.title,
            c.account.name,
            str(c.owner or ""),
            c.amount,
            c.received,
            c.receivable,
            c.overdue_amount,
            c.next_due_date,
            (today - c.next_due_date).days if c.is_overdue(today) else 0,
        ]
        for c in qs[:EXPORT_LIMIT].iterator(chunk_size=2000)
    )
    return exports.table_response(fmt, "receivables", headers, rows)


# --- quotes --------------------------------------------------------------------------------


def _quote(request, pk) -> Quote:
    return get_object_or_404(
        Quote.objects.visible_to(request.user).select_related(
            "account", "owner", "opportunity", "contract"
        ),
        pk=pk,
    )


@login_required
def quote_list(request):
    filters = read_filters(request, QuoteFilter)
    qs = filters.apply(Quote.objects.visible_to(request.user)).select_related("account", "owner")
    page = Paginator(qs, LIST_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "sales/quote_list.html",
        {
            "nav": "sales",
            "page": page,
            "filters": filters,
            "statuses": QuoteStatus.choices,
            "owners": _owners(request),
            "query": _query_without(request, "page"),
        },
    )


@login_required
def quote_detail(request, pk):
    quote = _quote(request, pk)
    return render(
        request,
        "sales/quote_detail.html",
        {
            "nav": "sales",
            "quote": quote,
            "lines": quote.lines.all(),
            "editable": quote.status in (QuoteStatus.DRAFT, QuoteStatus.SENT),
        },
    )


@login_required
def quote_create(request):
    initial = {}
    for key in ("account", "opportunity"):
        if request.GET.get(key, "").isdigit():
            initial[key] = int(request.GET[key])
    form = QuoteForm(request.POST or None, actor=request.user, initial=initial)
    formset = LineFormSet(request.POST or None, prefix="lines")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "version"}
        quote = save_with_service(
            form, lambda: services.create_quote(actor=request.user, lines=lines_of(formset), **data)
        )
        if quote:
            messages.success(request, _("Quote %s created.") % quote.number)
            return redirect(quote)
    return render(
        request,
        "sales/quote_form.html",
        {"nav": "sales", "form": form, "formset": formset, "heading": _("New quote")},
    )


@login_required
def quote_edit(request, pk):
    quote = _quote(request, pk)
    initial = {
        "title": quote.title,
        "opportunity": quote.opportunity_id,
        "valid_until": quote.valid_until,
        "notes": quote.notes,
        "version": quote.version,
    }
    form = QuoteForm(request.POST or None, actor=request.user, editing=True, initial=initial)
    formset = LineFormSet(request.POST or None, prefix="lines", initial=line_initial(quote))
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        data = dict(form.cleaned_data)
        version = data.pop("version")
        saved = save_with_service(
            form,
            lambda: services.update_quote(
                quote, actor=request.user, version=version, lines=lines_of(formset), **data
            ),
        )
        if saved:
            messages.success(request, _("Quote saved."))
            return redirect(saved)
    return render(
        request,
        "sales/quote_form.html",
        {
            "nav": "sales",
            "form": form,
            "formset": formset,
            "quote": quote,
            "heading": _("Edit %s") % quote.number,
        },
    )


@login_required
@require_POST
def quote_action(request, pk, action):
    quote = _quote(request, pk)
    verbs = {
        "send": (services.mark_quote_sent, _("Marked as sent.")),
        "reject": (services.reject_quote, _("Marked as rejected.")),
        "accept": (services.accept_quote, _("Accepted: contract created.")),
    }
    if action not in verbs:
        raise Http404
    verb, done = verbs[action]
    try:
        version = int(request.POST.get("version", ""))
    except ValueError:
        version = None
    try:
        result = verb(quote, actor=request.user, version=version)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect(quote)
    messages.success(request, done)
    return redirect(result if isinstance(result, Contract) else quote)
