"""The opportunity list filters, shared by the list page and the API."""

from calendar import monthrange
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from django.db.models import Q
from ninja import Field, Schema

from loudou.org.models import Team

# Sort keys offered to users → the ordering they stand for; ``pk`` breaks ties so that
# pages never overlap or skip a row.
SORTS = {
    "created_at": ("created_at", "pk"),
    "-created_at": ("-created_at", "-pk"),
    "name": ("name", "pk"),
    "-name": ("-name", "-pk"),
    "amount": ("amount", "pk"),
    "-amount": ("-amount", "-pk"),
    "probability": ("probability", "pk"),
    "-probability": ("-probability", "-pk"),
    "expected_close_date": ("expected_close_date", "pk"),
    "-expected_close_date": ("-expected_close_date", "-pk"),
    "stage_entered_at": ("stage_entered_at", "pk"),
    "-stage_entered_at": ("-stage_entered_at", "-pk"),
    "updated_at": ("updated_at", "pk"),
    "-updated_at": ("-updated_at", "-pk"),
}
DEFAULT_SORT = "-created_at"

SortKey = Literal[tuple(SORTS)]

# A row id: larger numbers cannot be ids, and SQLite cannot even compare them (a 500).
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class OpportunityFilter(Schema):
    """What the opportunity list can be narrowed and sorted by. ``apply`` takes a queryset
    that is already scoped with ``visible_to`` and never widens it."""

    q: str | None = Field(None, description="Part of the opportunity's or account's name.")
    pipeline: RowId | None = None
    stage: RowId | None = None
    status: Literal["open", "won", "lost"] | None = None
    owner: RowId | None = None
    team: RowId | None = Field(None, description="Owners in this team or any team below it.")
    product_line: RowId | None = None
    close_month: str | None = Field(
        None, pattern=r"^[1-9]\d{3}-(0[1-9]|1[0-2])$", description="Expected close month, YYYY-MM."
    )
    amount_min: Decimal | None = Field(None, ge=0)
    amount_max: Decimal | None = Field(None, ge=0)
    stale: bool | None = Field(
        None, description="true: only open opportunities that sat too long in their stage."
    )
    sort: SortKey | None = None

    def apply(self, qs):
        if self.q:
            qs = qs.filter(Q(name__icontains=self.q) | Q(account__name__icontains=self.q))
        if self.pipeline is not None:
            qs = qs.filter(pipeline_id=self.pipeline)
        if self.stage is not None:
            qs = qs.filter(stage_id=self.stage)
        if self.status:
            qs = qs.filter(status=self.status)
        if self.owner is not None:
            qs = qs.filter(owner_id=self.owner)
        if self.team is not None:
            path = Team.objects.filter(pk=self.team).values_list("path", flat=True).first()
            qs = qs.filter(owner__team__path__startswith=path) if path else qs.none()
        if self.product_line is not None:
            qs = qs.filter(product_line_id=self.product_line)
        if self.close_month:
            year, month = (int(part) for part in self.close_month.split("-"))
            first = date(year, month, 1)
            last = date(year, month, monthrange(year, month)[1])
            qs = qs.filter(expected_close_date__gte=first, expected_close_date__lte=last)
        if self.amount_min is not None:
            qs = qs.filter(amount__gte=self.amount_min)
        if self.amount_max is not None:
            qs = qs.filter(amount__lte=self.amount_max)
        if self.stale is True:
            qs = qs.stale()
        elif self.stale is False:
            qs = qs.exclude(pk__in=qs.model.objects.stale().values("pk"))
        return qs.order_by(*SORTS[self.sort or DEFAULT_SORT])
