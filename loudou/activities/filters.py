"""The activity list filters, shared by the list page, its downloads and the API."""

from datetime import date, timedelta
from typing import Literal

from django.db.models import Q
from ninja import Field, Schema

from loudou.analytics.periods import local_midnight
from loudou.pipeline.filters import RowId

from .choices import Kind, Outcome, Purpose

KindValue = Literal[tuple(Kind.values)]
OutcomeValue = Literal[tuple(Outcome.values)]
PurposeValue = Literal[tuple(Purpose.values)]
LinkedValue = Literal["lead", "account", "contact", "opportunity"]
ScopeValue = Literal["mine", "team"]

# Dates a calendar can hold; outside, date arithmetic overflows.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


class ActivityFilter(Schema):
    """What the activity lists can be narrowed by. ``apply`` takes a queryset already
    scoped with ``visible_to`` and never widens it."""

    scope: ScopeValue | None = Field(
        None, description="mine: activities I did; team: done by the colleagues I see."
    )
    kind: KindValue | None = None
    outcome: OutcomeValue | None = None
    purpose: PurposeValue | None = None
    owner: RowId | None = None
    date_from: date | None = Field(
        None, ge=FIRST_DAY, le=LAST_DAY, description="Local day, included."
    )
    date_to: date | None = Field(
        None, ge=FIRST_DAY, le=LAST_DAY, description="Local day, included."
    )
    linked: LinkedValue | None = Field(
        None, description="Only activities linked to this kind of record."
    )
    lead: RowId | None = None
    account: RowId | None = None
    contact: RowId | None = None
    opportunity: RowId | None = None
    gave_something: bool | None = None

    def apply(self, qs, user=None):
        if self.scope == "mine" and user is not None:
            qs = qs.filter(owner=user)
        elif self.scope == "team" and user is not None:
            from loudou.org.models import User

            qs = qs.filter(owner__in=User.objects.visible_to(user).values("pk"))
        for name in ("kind", "outcome", "purpose", "gave_something"):
            value = getattr(self, name)
            if value is not None:
                qs = qs.filter(**{name: value})
        for name in ("owner", "lead", "account", "contact", "opportunity"):
            value = getattr(self, name)
            if value is not None:
                qs = qs.filter(**{f"{name}_id": value})
        if self.linked:
            qs = qs.filter(~Q(**{f"{self.linked}__isnull": True}))
        if self.date_from:
            qs = qs.filter(occurred_at__gte=local_midnight(self.date_from))
        if self.date_to:
            qs = qs.filter(occurred_at__lt=local_midnight(self.date_to + timedelta(days=1)))
        return qs
