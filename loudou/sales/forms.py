"""Forms of the sales pages. They only parse input; the rules live in services.py, whose
refusals land on the form as field errors (``save_with_service``)."""

import uuid

from django import forms
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from loudou.customers.models import Account
from loudou.org.models import User, assignable_owners
from loudou.pipeline.models import Opportunity, ProductLine
from loudou.web.forms import BootstrapMixin

from .choices import ContractStatus, PaymentMethod, ShipmentStatus
from .models import Contract, PaymentPlan

EDIT_STATUSES = [
    (s.value, s.label)
    for s in (ContractStatus.DRAFT, ContractStatus.ACTIVE, ContractStatus.COMPLETED)
]
MONEY = {"max_digits": 14, "decimal_places": 2}


class SalesForm(BootstrapMixin):
    """Bootstrap widgets, and labels capitalised as a model form's are."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if field.label:
                field.label = capfirst(field.label)


def _date(label, required=True, **kwargs):
    return forms.DateField(label=label, required=required, widget=forms.DateInput, **kwargs)


class LineForm(SalesForm, forms.Form):
    """One product line; a row left empty is ignored."""

    product = forms.CharField(label=_("product"), max_length=200, required=False)
    quantity = forms.DecimalField(label=_("quantity"), min_value=0, max_digits=12,
                                  decimal_places=2, required=False)  # fmt: skip
    unit_price = forms.DecimalField(label=_("unit price"), min_value=0, required=False, **MONEY)

    def clean(self):
        data = super().clean()
        if data.get("product") and data.get("unit_price") is None:
            self.add_error("unit_price", _("Enter the unit price."))
        if not data.get("product") and data.get("unit_price") is not None:
            self.add_error("product", _("Name the product."))
        return data

    def line(self):
        data = self.cleaned_data
        if not data.get("product"):
            return None
        quantity = data.get("quantity")
        return {"product": data["product"], "quantity": 1 if quantity is None else quantity,
                "unit_price": data["unit_price"]}  # fmt: skip


LineFormSet = forms.formset_factory(LineForm, extra=3, max_num=100, absolute_max=100)


def lines_of(formset) -> list[dict]:
    return [line for form in formset.forms if (line := form.line())]


def line_initial(obj) -> list[dict]:
    return [
        {"product": ln.product, "quantity": ln.quantity, "unit_price": ln.unit_price}
        for ln in obj.lines.all()
    ]


class ContractForm(SalesForm, forms.Form):
    """A contract for a won opportunity: amount (or lines), dates, status."""

    title = forms.CharField(label=_("title"), max_length=200)
    amount = forms.DecimalField(
        label=_("amount"), min_value=0, required=False,
        help_text=_("Leave empty to use the lines' sum, or the opportunity's amount."), **MONEY,
    )  # fmt: skip
    sign_date = _date(_("sign date"))
    start_date = _date(_("start of term"), required=False)
    end_date = _date(_("end of term"), required=False)
    status = forms.ChoiceField(label=_("status"), choices=EDIT_STATUSES,
                               initial=ContractStatus.ACTIVE)  # fmt: skip
    notes = forms.CharField(
        label=_("notes"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class OrderForm(ContractForm):
    """An out-of-funnel order: no opportunity, below the configured threshold."""

    account = forms.ModelChoiceField(label=_("account"), queryset=Account.objects.none())
    owner = forms.ModelChoiceField(label=_("owner"), queryset=User.objects.none())
    product_line = forms.ModelChoiceField(
        label=_("product line"), queryset=ProductLine.objects.filter(is_active=True),
        required=False,
    )  # fmt: skip
    field_order = ["account", "title", "amount", "sign_date", "owner", "product_line"]

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = Account.objects.visible_to(actor)
        self.fields["owner"].queryset = assignable_owners(actor)
        self.fields["amount"].help_text = _("Leave empty to use the lines' sum.")


class ContractEditForm(SalesForm, forms.ModelForm):
    version = forms.IntegerField(widget=forms.HiddenInput)
    status = forms.ChoiceField(label=_("status"), choices=EDIT_STATUSES)

    class Meta:
        model = Contract
        fields = ["title", "amount", "sign_date", "start_date", "end_date", "status", "owner",
                  "product_line", "notes"]  # fmt: skip
        widgets = {
            "sign_date": forms.DateInput,
            "start_date": forms.DateInput,
            "end_date": forms.DateInput,
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        owners = assignable_owners(actor) | User.objects.filter(pk=self.instance.owner_id)
        self.fields["owner"].queryset = owners.distinct()
        self.fields["owner"].required = True
        self.fields["version"].initial = self.instance.version
        self.fields["amount"].help_text = _("With lines, the amount is their sum.")


class CancelForm(SalesForm, forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label=_("reason for cancelling"), max_length=300, required=False)
    confirm = forms.BooleanField(
        label=_("Yes, cancel this contract. It will no longer count as signed."), required=True
    )


class PaymentForm(SalesForm, forms.Form):
    """Record money received. The hidden key makes a double submit store one payment."""

    amount = forms.DecimalField(label=_("amount"), help_text=_("Negative for a refund."), **MONEY)
    paid_on = _date(_("paid on"))
    method = forms.ChoiceField(label=_("method"), choices=PaymentMethod.choices)
    plan = forms.ModelChoiceField(label=_("payment plan line"), queryset=PaymentPlan.objects.none(),
                                  required=False)  # fmt: skip
    reference = forms.CharField(label=_("reference"), max_length=100, required=False)
    note = forms.CharField(label=_("note"), max_length=300, required=False)
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100, required=False)

    def __init__(self, *args, contract, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = contract.plans.all()
        self.fields["plan"].label_from_instance = lambda p: f"{p.due_date} · {p.amount:,.2f}"
        if not self.is_bound:
            self.fields["idempotency_key"].initial = uuid.uuid4().hex
            self.fields["paid_on"].initial = timezone.localdate()


class PlanForm(SalesForm, forms.Form):
    due_date = _date(_("due date"))
    amount = forms.DecimalField(label=_("amount"), min_value=0.01, **MONEY)
    note = forms.CharField(label=_("note"), max_length=200, required=False)


class InvoiceForm(SalesForm, forms.Form):
    number = forms.CharField(label=_("invoice number"), max_length=40)
    issued_on = _date(_("date"))
    amount = forms.DecimalField(label=_("amount"), min_value=0.01, **MONEY)
    note = forms.CharField(label=_("note"), max_length=300, required=False)


class ShipmentForm(SalesForm, forms.Form):
    number = forms.CharField(label=_("shipment number"), max_length=40, required=False,
                             help_text=_("Leave empty to generate one."))  # fmt: skip
    shipped_on = _date(_("date"))
    status = forms.ChoiceField(label=_("status"), choices=ShipmentStatus.choices)
    items = forms.CharField(
        label=_("items"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class QuoteForm(SalesForm, forms.Form):
    account = forms.ModelChoiceField(label=_("account"), queryset=Account.objects.none())
    opportunity = forms.ModelChoiceField(
        label=_("opportunity"), queryset=Opportunity.objects.none(), required=False
    )
    title = forms.CharField(label=_("title"), max_length=200)
    quote_date = _date(_("date"), initial=timezone.localdate)
    valid_until = _date(_("valid until"), required=False)
    notes = forms.CharField(
        label=_("notes"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, actor, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = Account.objects.visible_to(actor)
        self.fields["opportunity"].queryset = Opportunity.objects.visible_to(actor).select_related(
            "account"
        )
        self.fields["opportunity"].label_from_instance = lambda o: f"{o.account} · {o.name}"
        if editing:
            del self.fields["account"], self.fields["quote_date"]
