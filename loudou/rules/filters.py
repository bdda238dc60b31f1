"""The breach list filters, shared by the breaches page, its downloads and the API."""

from datetime import date, datetime, time, timedelta
from typing import Literal

from django.utils import timezone
from ninja import Field, Schema

from loudou.pipeline.filters import RowId

from .models import Requirement

StateValue = Literal["open", "resolved", "late", "all"]
RequirementValue = Literal[tuple(Requirement.values)]
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


class BreachFilter(Schema):
    """What the breach lists can be narrowed by. ``apply`` takes a queryset already
    scoped with ``visible_to`` and never widens it."""

    state: StateValue = Field(
        "open", description="open (default), resolved, late (due and not met in time), all."
    )
    rule: RowId | None = None
    requirement: RequirementValue | None = None
    owner: RowId | None = Field(None, description="The rep responsible.")
    due_from: date | None = Field(None, ge=FIRST_DAY, le=LAST_DAY, description="Local day.")
    due_to: date | None = Field(None, ge=FIRST_DAY, le=LAST_DAY, description="Local day, included.")

    def apply(self, qs):
        if self.state == "open":
            qs = qs.filter(resolved_at__isnull=True)
        elif self.state == "resolved":
            qs = qs.filter(resolved_at__isnull=False)
        elif self.state == "late":
            qs = qs.late()
        if self.rule is not None:
            qs = qs.filter(rule_id=self.rule)
        if self.requirement:
            qs = qs.filter(rule__requirement=self.requirement)
        if self.owner is not None:
            qs = qs.filter(owner_id=self.owner)
        if self.due_from is not None:
            qs = qs.filter(due_at__gte=_midnight(self.due_from))
        if self.due_to is not None:
            qs = qs.filter(due_at__lt=_midnight(self.due_to + timedelta(days=1)))
        return qs
