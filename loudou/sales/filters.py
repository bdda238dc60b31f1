"""List filters of contracts, quotes and receivables, shared by the pages and the API.
``apply`` takes a queryset already scoped with ``visible_to`` and never widens it."""

from datetime import date
from typing import Literal

from django.db.models import Q
from django.utils import timezone
from ninja import Field, Schema

from loudou.pipeline.filters import RowId

from .choices import ContractKind, ContractStatus, QuoteStatus

ContractSort = Literal["sign_date", "-sign_date", "amount", "-amount", "number", "-number"]
CONTRACT_SORTS = {
    "sign_date": ("sign_date", "pk"),
    "-sign_date": ("-sign_date", "-pk"),
    "amount": ("amount", "pk"),
    "-amount": ("-amount", "-pk"),
    "number": ("number",),
    "-number": ("-number",),
}
# Dates a user can mean; beyond them SQLite and PostgreSQL disagree on comparisons.
Day = date


def _text(qs, text, *fields):
    condition = Q()
    for field in fields:
        condition |= Q(**{f"{field}__icontains": text})
    return qs.filter(condition)


class ContractFilter(Schema):
    """What the contract list can be narrowed by."""

    q: str | None = Field(None, max_length=100, description="Part of the number, title or account.")
    status: Literal[tuple(ContractStatus.values)] | None = None
    kind: Literal[tuple(ContractKind.values)] | None = None
    owner: RowId | None = None
    account: RowId | None = None
    opportunity: RowId | None = None
    product_line: RowId | None = None
    signed_from: Day | None = Field(None, description="Signed on or after this day.")
    signed_to: Day | None = Field(None, description="Signed on or before this day.")
    overdue: bool | None = Field(
        None, description="true: only signed contracts with a plan line past due and unpaid."
    )
    sort: ContractSort | None = None

    def apply(self, qs):
        if self.q:
            qs = _text(qs, self.q, "number", "title", "account__name")
        if self.status:
            qs = qs.filter(status=self.status)
        if self.kind:
            qs = qs.filter(kind=self.kind)
        for field in ("owner", "account", "opportunity", "product_line"):
            value = getattr(self, field)
            if value is not None:
                qs = qs.filter(**{f"{field}_id": value})
        if self.signed_from:
            qs = qs.filter(sign_date__gte=self.signed_from)
        if self.signed_to:
            qs = qs.filter(sign_date__lte=self.signed_to)
        if self.overdue is True:
            qs = qs.overdue()
        elif self.overdue is False:
            qs = qs.exclude(pk__in=qs.model.objects.overdue().values("pk"))
        return qs.order_by(*CONTRACT_SORTS[self.sort or "-sign_date"])


class ReceivableFilter(Schema):
    """What the receivables list can be narrowed by (signed contracts only)."""

    q: str | None = Field(None, max_length=100, description="Part of the number, title or account.")
    owner: RowId | None = None
    account: RowId | None = None
    kind: Literal[tuple(ContractKind.values)] | None = None
    overdue: bool | None = Field(None, description="true: only overdue receivables.")

    def apply(self, qs):
        if self.q:
            qs = _text(qs, self.q, "number", "title", "account__name")
        for field in ("owner", "account"):
            value = getattr(self, field)
            if value is not None:
                qs = qs.filter(**{f"{field}_id": value})
        if self.kind:
            qs = qs.filter(kind=self.kind)
        if self.overdue is True:
            qs = qs.filter(next_due_date__lt=timezone.localdate())
        elif self.overdue is False:
            qs = qs.exclude(next_due_date__lt=timezone.localdate())
        return qs


class QuoteFilter(Schema):
    """What the quote list can be narrowed by."""

    q: str | None = Field(None, max_length=100, description="Part of the number, title or account.")
    status: Literal[tuple(QuoteStatus.values)] | None = None
    owner: RowId | None = None
    account: RowId | None = None
    opportunity: RowId | None = None

    def apply(self, qs):
        if self.q:
            qs = _text(qs, self.q, "number", "title", "account__name")
        if self.status:
            qs = qs.filter(status=self.status)
        for field in ("owner", "account", "opportunity"):
            value = getattr(self, field)
            if value is not None:
                qs = qs.filter(**{f"{field}_id": value})
        return qs.order_by("-quote_date", "-pk")
