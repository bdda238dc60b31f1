"""Leads, public pools and assignment rules API.

Every lead lookup goes through ``Lead.objects.visible_to``: own / team subtree / shared,
plus the pooled leads of the pools the caller may see. A lead outside that scope answers
404 exactly like one that does not exist. A refused claim is a 409 whose ``code`` says
why: ``taken``, ``limit``, ``blocked`` or ``region``.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from loudou.api.pagination import LimitOffsetPagination, paginate
from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.customers.models import Account
from loudou.org.models import Region, Team, User, assignable_owners
from loudou.pipeline.filters import RowId
from loudou.pipeline.models import Pipeline, ProductLine, Stage

from . import assignment, services
from .dedupe import find_duplicates
from .filters import LeadFilter, SourceValue
from .models import AssignmentRule, Lead, PoolEvent, PublicPool

router = Router(tags=["leads"])

EditableStatus = services.EDITABLE_STATUSES


# --- schemas --------------------------------------------------------------------------


class LeadIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    company: str = Field("", max_length=200)
    title: str = Field("", max_length=100)
    mobile: str = Field("", max_length=30)
    phone: str = Field("", max_length=60)
    email: str = Field("", max_length=254)
    wechat: str = Field("", max_length=60)
    source: SourceValue | None = None
    region_id: RowId | None = None
    industry: str = Field("", max_length=100)
    product_interest_id: RowId | None = None
    notes: str = Field("", max_length=10_000)
    owner_id: RowId | None = Field(
        None, description="Give the lead to this user. With neither owner nor pool the "
        "assignment rules decide (and the caller owns it when no rule does)."
    )  # fmt: skip
    pool_id: RowId | None = Field(None, description="Put the lead straight into this pool.")


class LeadPatch(Schema):
    version: int = Field(..., ge=1, le=2**31, description="The version you last read.")
    name: str = Field(None, min_length=1, max_length=100)
    company: str = Field(None, max_length=200)
    title: str = Field(None, max_length=100)
    mobile: str = Field(None, max_length=30)
    phone: str = Field(None, max_length=60)
    email: str = Field(None, max_length=254)
    wechat: str = Field(None, max_length=60)
    source: SourceValue | None = None
    region_id: RowId | None = None
    industry: str = Field(None, max_length=100)
    product_interest_id: RowId | None = None
    notes: str = Field(None, max_length=10_000)
    status: str = Field(None, description="new, contacted or qualified.")


class LeadOut(Schema):
    id: int
    name: str
    company: str
    title: str
    mobile: str
    phone: str
    email: str
    wechat: str
    source: str
    region_id: int | None
    industry: str
    product_interest_id: int | None
    status: str
    disqualified_reason: str
    notes: str
    owner_id: int | None
    pool_id: int | None
    last_owner_id: int | None
    claim_blocked_until: datetime | None
    recycle_warned_at: datetime | None = Field(
        None, description="When the owner was warned the lead returns to a pool soon."
    )
    owned_since: datetime | None
    converted_account_id: int | None
    converted_contact_id: int | None
    converted_opportunity_id: int | None
    converted_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class RefOut(Schema):
    id: int
    name: str

    @staticmethod
    def resolve_name(obj) -> str:
        return str(obj)


class DuplicatesOut(Schema):
    leads: list[RefOut]
    accounts: list[RefOut]
    contacts: list[RefOut]
    hidden: int = Field(..., description="Matches that belong to records you cannot see.")


class LeadCreatedOut(LeadOut):
    duplicates: DuplicatesOut


class ReasonIn(Schema):
    reason: str = Field(..., min_length=1, max_length=300)


class ReleaseIn(ReasonIn):
    pool_id: RowId | None = Field(None, description="Default: the pool it came from.")


class DisqualifyIn(ReasonIn):
    version: int | None = Field(None, ge=1, le=2**31)


class ContactFields(Schema):
    name: str = Field(None, min_length=1, max_length=100)
    title: str = Field(None, max_length=100)
    mobile: str = Field(None, max_length=30)
    phone: str = Field(None, max_length=60)
    email: str = Field(None, max_length=254)
    wechat: str = Field(None, max_length=60)


class ConvertIn(Schema):
    version: int | None = Field(None, ge=1, le=2**31)
    account_id: RowId | None = Field(
        None, description="Attach to this existing account instead of creating one."
    )
    contact: ContactFields | None = None
    create_opportunity: bool = True
    pipeline_id: RowId | None = None
    stage_id: RowId | None = None
    amount: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    opportunity_name: str = Field("", max_length=200)
    expected_close_date: date | None = None


class PoolOut(Schema):
    id: int
    name: str
    region_ids: list[int]
    team_ids: list[int]
    daily_claim_limit: int
    max_owned: int
    reclaim_block_days: int
    no_follow_up_days: int | None
    not_converted_days: int | None
    warn_days_before: int
    is_active: bool

    @staticmethod
    def resolve_region_ids(obj) -> list[int]:
        return sorted(r.pk for r in obj.regions.all())

    @staticmethod
    def resolve_team_ids(obj) -> list[int]:
        return sorted(t.pk for t in obj.teams.all())


class PoolIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    region_ids: list[RowId] = Field(default_factory=list, max_length=1000)
    team_ids: list[RowId] = Field(default_factory=list, max_length=1000)
    daily_claim_limit: int = Field(20, ge=0, le=100_000)
    max_owned: int = Field(200, ge=0, le=1_000_000)
    reclaim_block_days: int = Field(7, ge=0, le=3650)
    no_follow_up_days: int | None = Field(None, ge=1, le=3650)
    not_converted_days: int | None = Field(None, ge=1, le=3650)
    warn_days_before: int = Field(3, ge=0, le=3650)


class PoolEventOut(Schema):
    id: int
    kind: str
    pool_id: int | None
    by_id: int | None
    owner_id: int | None
    at: datetime
    reason: str


class AssignmentRuleOut(Schema):
    id: int
    position: int
    name: str
    active: bool
    region_id: int | None
    industry: str
    source: str
    product_interest_id: int | None
    method: str
    rep_ids: list[int]
    fixed_rep_id: int | None
    pool_id: int | None
    capacity: int | None

    @staticmethod
    def resolve_rep_ids(obj) -> list[int]:
        return sorted(u.pk for u in obj.reps.all())


class PreviewIn(Schema):
    region_id: RowId | None = None
    industry: str = Field("", max_length=100)
    source: SourceValue | None = None
    product_interest_id: RowId | None = None


class PreviewOut(Schema):
    rule_id: int | None
    rule: str | None
    owner_id: int | None
    owner: str | None
    pool_id: int | None
    pool: str | None


# --- helpers --------------------------------------------------------------------------


def _leads(request):
    return Lead.objects.visible_to(request.auth)


def _get_lead(request, lead_id) -> Lead:
    return get_object_or_404(_leads(request), pk=lead_id)


def _resolve(data: dict) -> dict:
    """Turn ``region_id`` and ``product_interest_id`` into rows; unknown ids are 422."""
    if "region_id" in data:
        region_id = data.pop("region_id")
        data["region"] = None
        if region_id is not None:
            data["region"] = Region.objects.filter(pk=region_id).first()
            if data["region"] is None:
                raise ValidationFailed(_("Unknown region."), field="region_id")
    if "product_interest_id" in data:
        product_id = data.pop("product_interest_id")
        data["product_interest"] = None
        if product_id is not None:
            data["product_interest"] = ProductLine.objects.filter(pk=product_id).first()
            if data["product_interest"] is None:
                raise ValidationFailed(_("Unknown product line."), field="product_interest_id")
    if "source" in data and data["source"] is None:
        data["source"] = ""
    return data


def _pool_for(request, pool_id) -> PublicPool:
    pool = PublicPool.objects.visible_to(request.auth).filter(pk=pool_id).first()
    if pool is None:
        raise ValidationFailed(_("Unknown pool."), field="pool_id")
    return pool


def _duplicates_out(duplicates):
    return {
        "leads": duplicates.leads,
        "accounts": duplicates.accounts,
        "contacts": duplicates.contacts,
        "hidden": duplicates.hidden,
    }


def _require_admin(request):
    if not request.auth.sees_everything:
        raise NotPermitted(_("Only an administrator may do this."))


# --- leads ----------------------------------------------------------------------------


@router.get("/leads", response=list[LeadOut])
@paginate(LimitOffsetPagination)
def list_leads(request, filters: Query[LeadFilter]):
    return filters.apply(_leads(request)).order_by("-created_at", "-pk")


@router.post("/leads", response={201: LeadCreatedOut})
def create_lead(request, payload: LeadIn):
    """Create a lead. The answer lists possible duplicates (a warning: the lead is
    saved). Without ``owner_id`` or ``pool_id`` the assignment rules decide."""
    data = _resolve(payload.model_dump())
    owner_id, pool_id = data.pop("owner_id"), data.pop("pool_id")
    owner = pool = None
    if owner_id is not None and pool_id is not None:
        raise ValidationFailed(_("A lead is either owned or in a pool, not both."), field="pool_id")
    if owner_id is not None:
        owner = assignable_owners(request.auth).filter(pk=owner_id).first()
        if owner is None:
            raise ValidationFailed(_("You cannot give this record to that user."), field="owner_id")
    if pool_id is not None:
        pool = _pool_for(request, pool_id)
    lead, duplicates = services.create_lead(actor=request.auth, owner=owner, pool=pool, **data)
    out = LeadOut.from_orm(lead).model_dump()
    return Status(201, {**out, "duplicates": _duplicates_out(duplicates)})


@router.get("/leads/{lead_id}", response=LeadOut)
def get_lead(request, lead_id: RowId):
    return _get_lead(request, lead_id)


@router.patch("/leads/{lead_id}", response=LeadOut)
def update_lead(request, lead_id: RowId, payload: LeadPatch):
    """Change fields (not owner, pool or final status). 409 on a stale version."""
    lead = _get_lead(request, lead_id)
    data = payload.model_dump(exclude_unset=True)
    version = data.pop("version")
    if "status" in data and data["status"] not in EditableStatus:
        raise ValidationFailed(_("Use convert or disqualify to close a lead."), field="status")
    data = _resolve(data)
    return services.update_lead(lead, actor=request.auth, version=version, **data)


@router.post(
    "/leads/{lead_id}/claim",
    response=LeadOut,
    openapi_extra={"responses": {"409": {"description": "taken, limit, blocked or region"}}},
)
def claim_lead(request, lead_id: RowId):
    """Claim a pooled lead. 409 with ``code`` taken / limit / blocked / region. A lead
    another rep took a moment ago is a 409 "taken", not a 404, for anyone who could see
    it in its pool."""
    lead = _leads(request).filter(pk=lead_id).first()
    if lead is None:
        pools = PublicPool.objects.visible_to(request.auth)
        if PoolEvent.objects.filter(lead_id=lead_id, pool__in=pools).exists():
            raise Conflict(_("Someone else has already taken this lead."), code="taken")
        raise Http404
    return services.claim_lead(lead, rep=request.auth)


@router.post("/leads/{lead_id}/release", response=LeadOut)
def release_lead(request, lead_id: RowId, payload: ReleaseIn):
    """Give the lead back to a pool; the reason is required."""
    lead = _get_lead(request, lead_id)
    pool = _pool_for(request, payload.pool_id) if payload.pool_id is not None else None
    return services.release_lead(lead, rep=request.auth, reason=payload.reason, pool=pool)


@router.post("/leads/{lead_id}/disqualify", response=LeadOut)
def disqualify_lead(request, lead_id: RowId, payload: DisqualifyIn):
    lead = _get_lead(request, lead_id)
    return services.disqualify_lead(
        lead, actor=request.auth, reason=payload.reason, version=payload.version
    )


@router.post("/leads/{lead_id}/convert", response=LeadOut)
def convert_lead(request, lead_id: RowId, payload: ConvertIn):
    """Convert into account + contact + opportunity (or attach to ``account_id``)."""
    lead = _get_lead(request, lead_id)
    account = None
    if payload.account_id is not None:
        account = Account.objects.visible_to(request.auth).filter(pk=payload.account_id).first()
        if account is None:
            raise ValidationFailed(_("Unknown account."), field="account_id")
    pipeline = stage = None
    if payload.create_opportunity:
        if payload.pipeline_id is None:
            raise ValidationFailed(_("Choose a pipeline for the opportunity."), field="pipeline_id")
        pipeline = Pipeline.objects.filter(pk=payload.pipeline_id, is_archived=False).first()
        if pipeline is None:
            raise ValidationFailed(_("Unknown pipeline."), field="pipeline_id")
        if payload.stage_id is not None:
            stage = Stage.objects.filter(pk=payload.stage_id, pipeline=pipeline).first()
            if stage is None:
                raise ValidationFailed(
                    _("Choose an open stage of this pipeline."), field="stage_id"
                )
    contact = payload.contact.model_dump(exclude_unset=True) if payload.contact else None
    return services.convert_lead(
        lead, actor=request.auth, version=payload.version, account=account, contact=contact,
        create_opportunity=payload.create_opportunity, pipeline=pipeline, stage=stage,
        amount=payload.amount, opportunity_name=payload.opportunity_name,
        expected_close_date=payload.expected_close_date,
    )  # fmt: skip


@router.get("/leads/{lead_id}/duplicates", response=DuplicatesOut)
def lead_duplicates(request, lead_id: RowId):
    """Possible duplicates among the leads, accounts and contacts you may see."""
    lead = _get_lead(request, lead_id)
    return _duplicates_out(find_duplicates(lead, user=request.auth))


@router.get("/leads/{lead_id}/history", response=list[PoolEventOut])
def lead_history(request, lead_id: RowId):
    """Created, claimed, released, assigned, converted: oldest first."""
    lead = _get_lead(request, lead_id)
    return PoolEvent.objects.filter(lead=lead).order_by("at", "pk")


# --- pools ----------------------------------------------------------------------------


@router.get("/pools", response=list[PoolOut])
def list_pools(request):
    """The pools you may see and claim from."""
    return PublicPool.objects.visible_to(request.auth).prefetch_related("regions", "teams")


@router.post("/pools", response={201: PoolOut})
def create_pool(request, payload: PoolIn):
    """Create a pool (admin only)."""
    _require_admin(request)
    data = payload.model_dump()
    region_ids, team_ids = set(data.pop("region_ids")), set(data.pop("team_ids"))
    regions = list(Region.objects.filter(pk__in=region_ids))
    if len(regions) != len(region_ids):
        raise ValidationFailed(_("Unknown region."), field="region_ids")
    teams = list(Team.objects.filter(pk__in=team_ids))
    if len(teams) != len(team_ids):
        raise ValidationFailed(_("Unknown team."), field="team_ids")
    pool = services.create_pool(actor=request.auth, regions=regions, teams=teams, **data)
    return Status(201, pool)


@router.get("/pools/{pool_id}", response=PoolOut)
def get_pool(request, pool_id: RowId):
    return get_object_or_404(PublicPool.objects.visible_to(request.auth), pk=pool_id)


# --- assignment rules -----------------------------------------------------------------


def _require_rule_reader(request):
    if not (request.auth.sees_everything or request.auth.is_manager):
        raise NotPermitted(_("Only managers and administrators see the assignment rules."))


@router.get("/assignment-rules", response=list[AssignmentRuleOut])
def list_rules(request):
    """The ordered assignment rules (managers and admins)."""
    _require_rule_reader(request)
    return AssignmentRule.objects.order_by("position", "pk").prefetch_related("reps")


@router.post("/assignment-rules/preview", response=PreviewOut)
def preview_rules(request, payload: PreviewIn):
    """Who would receive a lead with these fields; nothing is written."""
    _require_rule_reader(request)
    data = _resolve(payload.model_dump())
    decision = assignment.preview(data)
    owner: User | None = decision.owner
    return {
        "rule_id": decision.rule.pk if decision.rule else None,
        "rule": decision.rule.name if decision.rule else None,
        "owner_id": owner.pk if owner else None,
        "owner": str(owner) if owner else None,
        "pool_id": decision.pool.pk if decision.pool else None,
        "pool": decision.pool.name if decision.pool else None,
    }


# --- merge duplicates -----------------------------------------------------------------

MergeModel = Literal["lead", "account", "contact"]


class MergeIn(Schema):
    model: MergeModel
    keep_id: RowId = Field(..., description="The record that stays.")
    lose_id: RowId = Field(..., description="The record merged into it and removed.")
    take: list[str] = Field(
        [], max_length=100, description="Fields whose value comes from the removed record."
    )


class MergeOut(Schema):
    id: int
    model: str
    kept_id: int
    merged_id: int
    fields_taken: list[str]
    moved: dict[str, int]
    at: datetime


class MergeCandidateOut(Schema):
    id: int
    label: str


@router.post("/merges", response={201: MergeOut})
def merge_records(request, payload: MergeIn):
    """Merge two leads, accounts or contacts: every linked row moves to ``keep_id``, the
    other record is removed and kept as JSON in the merge record. 403 when either record
    is outside the caller's scope."""
    from . import merge

    record = merge.merge(
        payload.model, payload.keep_id, payload.lose_id, actor=request.auth, take=payload.take
    )
    return Status(201, record)


@router.get("/merges/candidates", response=list[MergeCandidateOut])
def merge_candidates(request, model: MergeModel, record_id: RowId):
    """Possible duplicates of one lead, account or contact, within the caller's scope."""
    from . import merge

    target = merge.model_for(model)
    obj = get_object_or_404(target.objects.visible_to(request.auth), pk=record_id)
    return [{"id": c.pk, "label": str(c)} for c in merge.candidates(obj, request.auth)]


# --- pooled accounts ------------------------------------------------------------------


class PooledAccountOut(Schema):
    id: int
    name: str
    owner_id: int | None
    pool_id: int | None
    last_owner_id: int | None
    claim_blocked_until: datetime | None
    version: int


def _get_account(request, account_id) -> Account:
    return get_object_or_404(Account.objects.visible_to(request.auth), pk=account_id)


@router.post(
    "/accounts/{account_id}/claim",
    response={200: PooledAccountOut},
    summary="Claim a pooled account (409 with code taken, limit, blocked or region)",
)
def claim_account(request, account_id: RowId):
    """Take a pooled account, under the pool's rules (as for leads)."""
    return services.claim_account(_get_account(request, account_id), rep=request.auth)


@router.post("/accounts/{account_id}/release", response=PooledAccountOut)
def release_account(request, account_id: RowId, payload: ReleaseIn):
    """Put an owned account into a pool with a reason."""
    account = _get_account(request, account_id)
    pool = _pool_for(request, payload.pool_id) if payload.pool_id else None
    return services.release_account(account, rep=request.auth, reason=payload.reason, pool=pool)


class PooledAccountIn(Schema):
    name: str
    industry: str = ""
    region_id: RowId | None = None
    source: str = ""
    phone: str = ""
    address: str = ""
    notes: str = ""


@router.post("/pools/{pool_id}/accounts", response={201: PooledAccountOut})
def create_pooled_account(request, pool_id: RowId, payload: PooledAccountIn):
    """Create an account straight into a pool (managers and administrators)."""
    pool = get_object_or_404(PublicPool.objects.visible_to(request.auth), pk=pool_id)
    data = payload.dict()
    region_id = data.pop("region_id")
    if region_id is not None:
        data["region"] = Region.objects.filter(pk=region_id).first()
        if data["region"] is None:
            raise ValidationFailed(_("No such region."), field="region_id")
    return Status(201, services.create_pooled_account(actor=request.auth, pool=pool, **data))


@router.get("/accounts/{account_id}/pool-history", response=list[PoolEventOut])
def account_pool_history(request, account_id: RowId):
    """An account's pool history, oldest first: created into a pool, claimed, released,
    warned, recycled, handed over."""
    account = _get_account(request, account_id)
    return PoolEvent.objects.filter(account=account).order_by("at", "pk")


@router.get("/pools/{pool_id}/accounts", response=list[PooledAccountOut])
@paginate(LimitOffsetPagination)
def pooled_accounts(request, pool_id: RowId):
    """The accounts waiting in a pool the caller may see."""
    pool = get_object_or_404(PublicPool.objects.visible_to(request.auth), pk=pool_id)
    return Account.objects.filter(pool=pool).order_by("name", "pk")
