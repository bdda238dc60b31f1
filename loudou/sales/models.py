"""Contracts, out-of-funnel orders, quotes, payment plans, payments (回款), invoices and
shipments (DOMAIN §8, §10).

A contract is a won deal's commitment; an *order* is a small sale recorded without an
opportunity (out-of-funnel, below ``LOUDOU_OUT_OF_FUNNEL_THRESHOLD``). Both are rows of
:class:`Contract`, told apart by ``kind``. Receivable = contract amount − Σ payments;
refunds are negative payments.

Two figures are kept by the services under the contract's row lock so that the
receivables pages need no scan of the payments (docs/sales.md, "Receivable allocation"):
``Contract.received`` (Σ payments) and ``PaymentPlan.covered`` (how much of a plan line
the payments cover), with ``Contract.next_due_date``, the due date of the earliest plan
line not fully covered. :func:`loudou.sales.services.recompute_contract` rebuilds them.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loudou.core.models import OwnedModel, TimeStampedModel, VersionedModel, VisibleQuerySet

from .choices import (
    SIGNED_STATUSES,
    ContractKind,
    ContractStatus,
    InvoiceStatus,
    PaymentMethod,
    QuoteStatus,
    ShipmentStatus,
)

ZERO = Decimal("0.00")
POSITIVE = [MinValueValidator(Decimal("0"))]


def money_field(verbose_name, **kwargs):
    kwargs.setdefault("default", ZERO)
    return models.DecimalField(verbose_name, max_digits=14, decimal_places=2, **kwargs)


# "No due date" as a sort key: the receivables list orders by it, then by the due date,
# which is NULLS LAST in a form an index can serve on SQLite too.
NO_DUE_DATE = models.ExpressionWrapper(
    models.Q(next_due_date__isnull=True), output_field=models.BooleanField()
)


class ContractQuerySet(VisibleQuerySet):
    def signed(self):
        """Active and completed: what counts as sold and may be owed."""
        return self.filter(status__in=SIGNED_STATUSES)

    def overdue(self, today=None):
        """Signed contracts with a plan line past its due date and not fully covered."""
        today = today or timezone.localdate()
        return self.signed().filter(next_due_date__lt=today)

    def with_receivable(self):
        return self.annotate(receivable_amount=models.F("amount") - models.F("received"))


class Contract(OwnedModel, VersionedModel):
    """A contract (from a won opportunity or an accepted quote) or an out-of-funnel order."""

    number = models.CharField(_("number"), max_length=30, unique=True, editable=False)
    kind = models.CharField(
        _("kind"), max_length=10, choices=ContractKind.choices, default=ContractKind.CONTRACT
    )
    title = models.CharField(_("title"), max_length=200)
    account = models.ForeignKey(
        "customers.Account",
        verbose_name=_("account"),
        on_delete=models.PROTECT,
        related_name="contracts",
    )
    # PROTECT: an opportunity with a contract is history that must not vanish.
    opportunity = models.ForeignKey(
        "pipeline.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="contracts",
    )
    product_line = models.ForeignKey(
        "pipeline.ProductLine",
        verbose_name=_("product line"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="contracts",
    )
    amount = money_field(_("amount"), validators=POSITIVE)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    sign_date = models.DateField(_("sign date"))
    start_date = models.DateField(_("start of term"), null=True, blank=True)
    end_date = models.DateField(_("end of term"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=ContractStatus.choices, default=ContractStatus.ACTIVE
    )
    notes = models.TextField(_("notes"), blank=True)
    cancel_reason = models.CharField(_("reason for cancelling"), max_length=300, blank=True)
    # Kept by the services under the contract's row lock (see the module docstring).
    received = money_field(_("received"), editable=False)
    next_due_date = models.DateField(_("next due date"), null=True, blank=True, editable=False)

    objects = ContractQuerySet.as_manager()

    class Meta:
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")
        ordering = ["-sign_date", "-pk"]
        indexes = [
            models.Index(fields=["owner", "sign_date"]),
            models.Index(fields=["kind", "sign_date"]),
            models.Index(fields=["status", "next_due_date"]),
            models.Index(fields=["account", "sign_date"]),
            # The receivables: only the contracts still owing (or holding a credit), in the
            # list's order (due date, no due date last, then newest) and covering the
            # totals, so a page reads 50 entries and the totals never touch the rows.
            # The condition compares two columns (no parameter), so SQLite can use it.
            models.Index(
                NO_DUE_DATE,
                models.F("next_due_date"),
                models.F("sign_date").desc(),
                models.F("id").desc(),
                models.F("status"),
                models.F("amount"),
                models.F("received"),
                name="contract_owing_idx",
                condition=~models.Q(amount=models.F("received")),
            ),  # fmt: skip
        ]

    def __str__(self):
        return f"{self.number} {self.title}"

    def get_absolute_url(self):
        return reverse("sales:contract", args=[self.pk])

    @property
    def receivable(self) -> Decimal:
        """Amount − Σ payments; negative is a credit (the customer paid too much)."""
        return self.amount - self.received

    @property
    def overdue_amount(self) -> Decimal | None:
        """Set on rows from :func:`loudou.sales.queries.with_overdue`."""
        cents = getattr(self, "overdue_cents", None)
        return None if cents is None else (Decimal(cents) / 100).quantize(Decimal("0.01"))

    @property
    def is_signed(self) -> bool:
        return self.status in SIGNED_STATUSES

    @property
    def is_cancelled(self) -> bool:
        return self.status == ContractStatus.CANCELLED

    def is_overdue(self, today=None) -> bool:
        today = today or timezone.localdate()
        return self.is_signed and self.next_due_date is not None and self.next_due_date < today


class ThroughContractQuerySet(models.QuerySet):
    """Rows that belong to a contract are visible exactly when their contract is."""

    def visible_to(self, user):
        return self.filter(contract__in=Contract.objects.visible_to(user).values("pk"))


class ContractLine(models.Model):
    """One product line item of a contract."""

    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), on_delete=models.CASCADE, related_name="lines"
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    product = models.CharField(_("product"), max_length=200)
    quantity = models.DecimalField(
        _("quantity"), max_digits=12, decimal_places=2, default=1, validators=POSITIVE
    )
    unit_price = money_field(_("unit price"), validators=POSITIVE)
    amount = money_field(_("amount"), validators=POSITIVE)

    objects = ThroughContractQuerySet.as_manager()

    class Meta:
        verbose_name = _("contract line")
        verbose_name_plural = _("contract lines")
        ordering = ["contract", "position", "pk"]

    def __str__(self):
        return f"{self.product} × {self.quantity}"


class PaymentPlan(models.Model):
    """One instalment of a contract's payment plan: an amount due by a date."""

    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), on_delete=models.CASCADE, related_name="plans"
    )
    due_date = models.DateField(_("due date"))
    amount = money_field(_("amount"), validators=POSITIVE)
    note = models.CharField(_("note"), max_length=200, blank=True)
    # How much of this line the payments cover (docs/sales.md); kept by the services.
    covered = money_field(_("covered"), editable=False)

    objects = ThroughContractQuerySet.as_manager()

    class Meta:
        verbose_name = _("payment plan line")
        verbose_name_plural = _("payment plan")
        ordering = ["contract", "due_date", "pk"]
        indexes = [
            models.Index(fields=["due_date"]),
            # The ageing of overdue amounts: only the lines not yet covered, read from
            # the index alone (the condition compares two columns: SQLite can use it).
            models.Index(
                fields=["due_date", "contract", "amount", "covered"],
                name="plan_uncovered_idx",
                condition=models.Q(covered__lt=models.F("amount")),
            ),
        ]

    def __str__(self):
        return f"{self.due_date} {self.amount}"

    @property
    def outstanding(self) -> Decimal:
        return self.amount - self.covered

    def is_overdue(self, today=None) -> bool:
        today = today or timezone.localdate()
        return self.due_date < today and self.covered < self.amount


class Payment(TimeStampedModel):
    """Money received against a contract (回款). A negative amount is a refund."""

    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), on_delete=models.PROTECT, related_name="payments"
    )
    plan = models.ForeignKey(
        PaymentPlan,
        verbose_name=_("payment plan line"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="payments",
    )
    amount = money_field(_("amount"), default=None)
    paid_on = models.DateField(_("paid on"))
    method = models.CharField(
        _("method"), max_length=10, choices=PaymentMethod.choices,
        default=PaymentMethod.BANK_TRANSFER,
    )  # fmt: skip
    reference = models.CharField(_("reference"), max_length=100, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    # A retried request carrying the same key is answered with this payment, never stored
    # twice; ``fingerprint`` tells a true retry from a different payment reusing the key.
    idempotency_key = models.CharField(
        _("idempotency key"), max_length=100, unique=True, null=True, blank=True, editable=False
    )
    fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = ThroughContractQuerySet.as_manager()

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-paid_on", "-pk"]
        indexes = [
            models.Index(fields=["paid_on"]),
            # money collected in a period, per contract (completed revenue, collected
            # basis): the payments of the period read from the index alone
            models.Index(fields=["paid_on", "contract", "amount"], name="payment_period_idx"),
        ]

    def __str__(self):
        return f"{self.paid_on} {self.amount}"

    @property
    def is_refund(self) -> bool:
        return self.amount < 0


class Invoice(TimeStampedModel):
    """An invoice issued against a contract (a simple record)."""

    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), on_delete=models.CASCADE, related_name="invoices"
    )
    number = models.CharField(_("invoice number"), max_length=40)
    issued_on = models.DateField(_("date"))
    amount = money_field(_("amount"), validators=POSITIVE)
    status = models.CharField(
        _("status"), max_length=10, choices=InvoiceStatus.choices, default=InvoiceStatus.ISSUED
    )
    note = models.CharField(_("note"), max_length=300, blank=True)

    objects = ThroughContractQuerySet.as_manager()

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-issued_on", "-pk"]

    def __str__(self):
        return self.number


class Shipment(TimeStampedModel):
    """A delivery made against a contract (a simple record)."""

    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), on_delete=models.CASCADE, related_name="shipments"
    )
    number = models.CharField(_("shipment number"), max_length=40)
    shipped_on = models.DateField(_("date"))
    items = models.TextField(_("items"), blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=ShipmentStatus.choices, default=ShipmentStatus.PENDING
    )
    note = models.CharField(_("note"), max_length=300, blank=True)

    objects = ThroughContractQuerySet.as_manager()

    class Meta:
        verbose_name = _("shipment")
        verbose_name_plural = _("shipments")
        ordering = ["-shipped_on", "-pk"]

    def __str__(self):
        return self.number


class Quote(OwnedModel, VersionedModel):
    """A priced offer to an account; accepted, it becomes a contract with the same lines."""

    number = models.CharField(_("number"), max_length=30, unique=True, editable=False)
    title = models.CharField(_("title"), max_length=200)
    account = models.ForeignKey(
        "customers.Account", verbose_name=_("account"), on_delete=models.PROTECT,
        related_name="quotes",
    )  # fmt: skip
    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="quotes",
    )  # fmt: skip
    product_line = models.ForeignKey(
        "pipeline.ProductLine", verbose_name=_("product line"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="quotes",
    )  # fmt: skip
    amount = money_field(_("amount"), validators=POSITIVE)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    quote_date = models.DateField(_("date"), default=timezone.localdate)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=QuoteStatus.choices, default=QuoteStatus.DRAFT
    )
    notes = models.TextField(_("notes"), blank=True)
    contract = models.OneToOneField(
        Contract, verbose_name=_("contract"), on_delete=models.SET_NULL, null=True,
        blank=True, related_name="quote", editable=False,
    )  # fmt: skip

    objects = VisibleQuerySet.as_manager()

    class Meta:
        verbose_name = _("quote")
        verbose_name_plural = _("quotes")
        ordering = ["-quote_date", "-pk"]
        indexes = [models.Index(fields=["owner", "quote_date"])]

    def __str__(self):
        return f"{self.number} {self.title}"

    def get_absolute_url(self):
        return reverse("sales:quote", args=[self.pk])


class QuoteLine(models.Model):
    """One line item of a quote."""

    quote = models.ForeignKey(
        Quote, verbose_name=_("quote"), on_delete=models.CASCADE, related_name="lines"
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    product = models.CharField(_("product"), max_length=200)
    quantity = models.DecimalField(
        _("quantity"), max_digits=12, decimal_places=2, default=1, validators=POSITIVE
    )
    unit_price = money_field(_("unit price"), validators=POSITIVE)
    amount = money_field(_("amount"), validators=POSITIVE)

    class Meta:
        verbose_name = _("quote line")
        verbose_name_plural = _("quote lines")
        ordering = ["quote", "position", "pk"]

    def __str__(self):
        return f"{self.product} × {self.quantity}"
