"""Follow-up rules and breaches API.

Rules are company policy: managers and admins read them, only admins create and change
them (403 otherwise); every write takes the ``version`` last read (409 when stale).
Breaches are scoped like owned records: a rep sees their own, a manager their team
subtree's, an admin all; one outside the scope answers 404 like one that does not exist.
"""

from datetime import datetime
from typing import Literal

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from loudou.activities.choices import Kind, Outcome
from loudou.api.pagination import LimitOffsetPagination, paginate
from loudou.core.exceptions import NotPermitted
from loudou.customers.choices import Grade, Source
from loudou.leads.choices import OPEN_STATUSES
from loudou.pipeline.filters import RowId

from . import queries, services
from .filters import BreachFilter
from .models import AppliesTo, FollowUpRule, Requirement

router = Router(tags=["rules"])

KindValue = Literal[tuple(Kind.values)]
AppliesValue = Literal[tuple(AppliesTo.values)]
RequirementValue = Literal[tuple(Requirement.values)]
Version = Field(..., ge=1, le=2**31, description="The version you last read (409 when stale).")


class Conditions(Schema):
    """Which records a rule applies to, and the parameters of some requirements."""

    lead_statuses: list[Literal[tuple(str(s) for s in OPEN_STATUSES)]] | None = None
    sources: list[Literal[tuple(Source.values)]] | None = None
    grades: list[Literal[tuple(Grade.values)]] | None = Field(
        None, description='Account grades: "", D, C, B, A, won.'
    )
    pipelines: list[RowId] | None = Field(None, max_length=200)
    stages: list[RowId] | None = Field(None, max_length=500)
    activity_kinds: list[KindValue] | None = None
    outcomes: list[Literal[tuple(Outcome.values)]] | None = None
    task_kinds: list[KindValue] | None = Field(None, description="task_on_outcome: tasks made.")
    occasions: list[Literal["birthday", "anniversary"]] | None = None
    task_kind: KindValue | None = Field(None, description="The task a breach creates.")


class RuleIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    name_en: str = Field("", max_length=200)
    is_active: bool = True
    position: int = Field(0, ge=0, le=2**31 - 1)
    applies_to: AppliesValue
    requirement: RequirementValue
    amount: int | None = Field(
        None,
        ge=0,
        le=100_000,
        description="Hours, days or contacts, per requirement (payment_overdue: days of "
        "grace after the due date, default 0).",
    )
    conditions: Conditions = Field(default_factory=Conditions)
    use_working_hours: bool = False
    remind_owner: bool = True
    tell_manager: bool = False
    create_task: bool = False
    return_to_pool: bool = False


class RulePatch(Schema):
    version: int = Version
    name: str = Field(None, min_length=1, max_length=200)
    name_en: str = Field(None, max_length=200)
    is_active: bool = None
    position: int = Field(None, ge=0, le=2**31 - 1)
    applies_to: AppliesValue = None
    requirement: RequirementValue = None
    amount: int | None = Field(None, ge=0, le=100_000)
    conditions: Conditions = None
    use_working_hours: bool = None
    remind_owner: bool = None
    tell_manager: bool = None
    create_task: bool = None
    return_to_pool: bool = None


class RuleOut(Schema):
    id: int
    name: str
    name_en: str
    is_active: bool
    position: int
    applies_to: str
    requirement: str
    amount: int | None
    conditions: dict
    use_working_hours: bool
    remind_owner: bool
    tell_manager: bool
    create_task: bool
    return_to_pool: bool
    version: int
    created_at: datetime
    updated_at: datetime


class SweepIn(Schema):
    full: bool = Field(False, description="Look at every record, not only what changed.")
    rule_ids: list[RowId] | None = Field(None, max_length=100, description="Only these rules.")


class SweepOut(Schema):
    id: int
    mode: str
    now: datetime
    opened: int
    resolved: int
    counts: dict


class BreachOut(Schema):
    id: int
    rule_id: int
    rule: str
    requirement: str
    owner_id: int
    subject_type: str
    subject_id: int | None
    subject: str
    url: str
    lead_id: int | None
    account_id: int | None
    opportunity_id: int | None
    contact_id: int | None
    due_at: datetime
    basis_at: datetime | None
    opened_at: datetime
    resolved_at: datetime | None
    resolution: str

    @staticmethod
    def resolve_rule(obj):
        return str(obj.rule)

    @staticmethod
    def resolve_requirement(obj):
        return obj.rule.requirement

    @staticmethod
    def resolve_subject_type(obj):
        if obj.opportunity_id:
            return "opportunity"
        if obj.lead_id:
            return "lead"
        return "contact" if obj.contact_id else "account"

    @staticmethod
    def resolve_subject_id(obj):
        subject = obj.subject
        return subject.pk if subject is not None else None

    @staticmethod
    def resolve_subject(obj):
        subject = obj.subject
        return str(subject) if subject is not None else ""

    @staticmethod
    def resolve_url(obj):
        return obj.get_absolute_url()


class OwnerCount(Schema):
    owner_id: int
    name: str
    open: int
    total: int


class RuleCount(Schema):
    rule_id: int
    rule: str
    open: int
    total: int


class BreachCounts(Schema):
    per_owner: list[OwnerCount]
    per_rule: list[RuleCount]


def _readers_only(user) -> None:
    if not (user.sees_everything or user.managed_team_path):
        raise NotPermitted(_("Only managers and administrators see the follow-up rules."))


def _rule_data(payload: Schema, *, partial: bool) -> dict:
    data = payload.model_dump(exclude_unset=partial)
    data.pop("version", None)
    if "conditions" in data:
        conditions = data["conditions"] or {}
        data["conditions"] = {k: v for k, v in conditions.items() if v is not None}
    return data


@router.get("/rules", response=list[RuleOut])
def list_rules(request):
    """Every follow-up rule in order (managers and admins)."""
    _readers_only(request.auth)
    return FollowUpRule.objects.order_by("position", "pk")


@router.post("/rules", response={201: RuleOut})
def create_rule(request, payload: RuleIn):
    """Add a rule (admins)."""
    rule = services.create_rule(actor=request.auth, **_rule_data(payload, partial=False))
    return Status(201, rule)


@router.post("/rules/sweep", response=SweepOut)
def sweep_now(request, payload: SweepIn):
    """Run the sweep now (admins); it also runs every five minutes in the background."""
    return services.run_sweep(actor=request.auth, full=payload.full, rule_ids=payload.rule_ids)


@router.get("/rules/{rule_id}", response=RuleOut)
def get_rule(request, rule_id: RowId):
    _readers_only(request.auth)
    return get_object_or_404(FollowUpRule, pk=rule_id)


@router.patch("/rules/{rule_id}", response=RuleOut)
def update_rule(request, rule_id: RowId, payload: RulePatch):
    """Change a rule (admins); 409 on a stale version. Switching it off settles its open
    breaches."""
    rule = get_object_or_404(FollowUpRule, pk=rule_id)
    data = _rule_data(payload, partial=True)
    for name in ("name", "is_active", "applies_to", "requirement", "conditions", "position"):
        if name in data and data[name] is None:
            data.pop(name)
    return services.update_rule(rule, actor=request.auth, version=payload.version, **data)


@router.get("/breaches", response=list[BreachOut])
@paginate(LimitOffsetPagination)
def list_breaches(request, filters: Query[BreachFilter]):
    """Breaches the caller may see (own / team / all), soonest due first; open ones by
    default."""
    qs = filters.apply(queries.visible(request.auth))
    return queries.with_related(qs).order_by("due_at", "pk")


@router.get("/breaches/counts", response=BreachCounts)
def breach_counts(request, filters: Query[BreachFilter]):
    """Open and total breaches per rep and per rule, with the list's filters."""
    qs = filters.apply(queries.visible(request.auth))
    per_rule = [
        {**row, "rule": str(row["rule"])} for row in queries.counts_per_rule(qs)
    ]  # fmt: skip
    return {"per_owner": queries.counts_per_owner(qs), "per_rule": per_rule}


@router.get("/breaches/{breach_id}", response=BreachOut)
def get_breach(request, breach_id: RowId):
    return get_object_or_404(queries.with_related(queries.visible(request.auth)), pk=breach_id)
