"""The lead list filters, shared by the list pages and the API."""

from typing import Literal

from django.db.models import Q
from ninja import Field, Schema

from loudou.customers.choices import Source
from loudou.pipeline.filters import RowId

from .choices import LeadStatus
from .normalize import normalize_phone

StatusValue = Literal[tuple(LeadStatus.values)]
SourceValue = Literal[tuple(Source.values)]


class LeadFilter(Schema):
    """What the lead lists can be narrowed by. ``apply`` takes a queryset already scoped
    with ``visible_to`` and never widens it."""

    q: str | None = Field(
        None, max_length=100, description="Part of the name, company, mobile or e-mail."
    )
    status: StatusValue | None = None
    source: SourceValue | None = None
    region: RowId | None = Field(None, description="This region or any region below it.")
    owner: RowId | None = None
    pool: RowId | None = None
    in_pool: bool | None = Field(None, description="true: pooled leads only; false: owned only.")
    industry: str | None = Field(None, max_length=100)
    recycle_warned: bool | None = Field(
        None, description="true: owned leads whose owner was warned they return to a pool."
    )

    def apply(self, qs):
        if self.q:
            match = (
                Q(name__icontains=self.q)
                | Q(company__icontains=self.q)
                | Q(email__icontains=self.q)
                | Q(mobile__icontains=self.q)
            )
            digits = normalize_phone(self.q)
            if len(digits) >= 4:
                match |= Q(mobile_key__contains=digits)
            qs = qs.filter(match)
        if self.status:
            qs = qs.filter(status=self.status)
        if self.source:
            qs = qs.filter(source=self.source)
        if self.region is not None:
            from loudou.org.models import Region

            path = Region.objects.filter(pk=self.region).values_list("path", flat=True).first()
            qs = qs.filter(region__path__startswith=path) if path else qs.none()
        if self.owner is not None:
            qs = qs.filter(owner_id=self.owner)
        if self.pool is not None:
            qs = qs.filter(pool_id=self.pool)
        if self.in_pool is not None:
            qs = qs.filter(pool__isnull=not self.in_pool)
        if self.industry:
            qs = qs.filter(industry=self.industry)
        if self.recycle_warned is not None:
            warned = Q(owner__isnull=False, recycle_warned_at__isnull=False)
            qs = qs.filter(warned) if self.recycle_warned else qs.exclude(warned)
        return qs
