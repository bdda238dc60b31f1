"""Pipelines, stages and opportunities API.

Every opportunity lookup goes through ``visible_to``: one outside the caller's scope
answers 404, exactly like one that does not exist, and nothing is changed. Pipelines,
stages, lost reasons and product lines are readable by every signed-in user; only an
admin changes pipelines and stages (403 otherwise). Money and percentages are decimal
strings ("1200.00"), never floats.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from loudou.api.pagination import LimitOffsetPagination, paginate
from loudou.core.exceptions import NotPermitted, ValidationFailed
from loudou.customers.models import Account, Contact
from loudou.org.models import assignable_owners

from . import services
from .choices import ChecklistMode
from .filters import OpportunityFilter, RowId
from .models import LostReason, Opportunity, Pipeline, ProductLine, Stage, StageChange
from .templates import TEMPLATES

router = Router(tags=["pipeline"])

TemplateKey = Literal[tuple(TEMPLATES)]
ChecklistModeValue = Literal[tuple(ChecklistMode.values)]


# --- schemas --------------------------------------------------------------------------


class Ref(Schema):
    id: int
    name: str


class UserRef(Schema):
    id: int
    name: str

    @staticmethod
    def resolve_name(obj) -> str:
        return str(obj)


class StageRef(Schema):
    id: int
    name: str
    name_en: str
    kind: str
    position: int


class StageOut(Schema):
    id: int
    pipeline_id: int
    code: str
    name: str
    name_en: str
    position: int
    kind: str
    default_probability: Decimal
    guidance: str
    checklist: list[str]
    stale_after_days: int | None
    is_archived: bool


class PipelineOut(Schema):
    id: int
    name: str
    name_en: str
    template: str
    product_line_id: int | None
    checklist_mode: str
    learn_win_rates: bool
    position: int
    is_archived: bool
    stages: list[StageOut] = Field(..., description="Every stage, archived ones too, in order.")

    @staticmethod
    def resolve_stages(obj):
        return obj.stages.all()


class PipelineIn(Schema):
    template: TemplateKey
    name: str | None = Field(None, min_length=1, max_length=100)
    name_en: str | None = Field(None, max_length=100)
    product_line_id: RowId | None = None
    checklist_mode: ChecklistModeValue = ChecklistMode.STRICT.value
    learn_win_rates: bool = False


class PipelinePatch(Schema):
    name: str = Field(None, min_length=1, max_length=100)
    name_en: str = Field(None, max_length=100)
    product_line_id: RowId | None = None
    checklist_mode: ChecklistModeValue = None
    learn_win_rates: bool = None
    is_archived: bool = None


class StageIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    name_en: str = Field("", max_length=100)
    code: str = Field("", max_length=20)
    default_probability: Decimal = Field(Decimal(0), ge=0, le=100, max_digits=5, decimal_places=2)
    guidance: str = ""
    checklist: list[str] = Field(default_factory=list)
    stale_after_days: int | None = Field(None, ge=1, le=3650)
    after_id: RowId | None = Field(
        None, description="Insert after this open stage (default: after the last open one)."
    )


class StagePatch(Schema):
    name: str = Field(None, min_length=1, max_length=100)
    name_en: str = Field(None, max_length=100)
    code: str = Field(None, max_length=20)
    default_probability: Decimal = Field(
        None,
        ge=0,
        le=100,
        max_digits=5,
        decimal_places=2,
        description="Reaches the open opportunities in the stage whose probability follows "
        "the stage, never one set by hand.",
    )
    guidance: str = None
    checklist: list[str] = None
    stale_after_days: int | None = Field(None, ge=1, le=3650)


class ReorderIn(Schema):
    stage_ids: list[RowId] = Field(..., description="Every open stage of the pipeline, once.")


class OpportunityOut(Schema):
    id: int
    name: str
    account: Ref
    owner: UserRef | None
    pipeline_id: int
    stage: StageRef
    furthest_stage_id: int
    status: str
    amount: Decimal
    currency: str
    probability: Decimal
    probability_manual: bool
    weighted_amount: Decimal
    expected_close_date: date | None
    product_line_id: int | None
    source: str
    competitors: str
    next_step: str
    next_step_date: date | None
    lost_reason_id: int | None
    lost_note: str
    checklist_done: dict[str, list[str]]
    stage_entered_at: datetime
    closed_at: datetime | None
    is_stale: bool
    contact_ids: list[int]
    description: str
    version: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_contact_ids(obj) -> list[int]:
        return [contact.pk for contact in obj.contacts.all()]


class OpportunityIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    account_id: RowId
    pipeline_id: RowId
    stage_id: RowId | None = Field(None, description="An open stage; default: the first one.")
    amount: Decimal = Field(Decimal(0), ge=0, max_digits=14, decimal_places=2)
    currency: str = Field(None, min_length=3, max_length=3)
    probability: Decimal = Field(
        None,
        ge=0,
        le=100,
        max_digits=5,
        decimal_places=2,
        description="Your own estimate, kept from then on; leave out to follow the stage.",
    )
    expected_close_date: date | None = None
    product_line_id: RowId | None = None
    source: str = Field("", max_length=20)
    competitors: str = Field("", max_length=300)
    next_step: str = Field("", max_length=300)
    next_step_date: date | None = None
    description: str = ""
    owner_id: RowId | None = Field(None, description="Default: you.")
    contact_ids: list[RowId] = Field(default_factory=list)


class OpportunityPatch(Schema):
    version: int = Field(..., ge=1, description="The version you last read (optimistic lock).")
    name: str = Field(None, min_length=1, max_length=200)
    account_id: RowId = None
    amount: Decimal = Field(None, ge=0, max_digits=14, decimal_places=2)
    currency: str = Field(None, min_length=3, max_length=3)
    probability: Decimal = Field(
        None,
        ge=0,
        le=100,
        max_digits=5,
        decimal_places=2,
        description="Your own estimate: kept even when the stage's default changes.",
    )
    probability_follow_stage: bool = Field(
        None, description="true: drop your own estimate and follow the stage's win rate again."
    )
    expected_close_date: date | None = None
    product_line_id: RowId | None = None
    source: str = Field(None, max_length=20)
    competitors: str = Field(None, max_length=300)
    next_step: str = Field(None, max_length=300)
    next_step_date: date | None = None
    description: str = None
    owner_id: RowId = None
    contact_ids: list[RowId] = None


class MoveIn(Schema):
    stage: RowId = Field(..., description="The id of an open stage of the same pipeline.")
    version: int = Field(..., ge=1)
    checklist: list[str] = Field(
        default_factory=list, description="Items of the current stage ticked with the move."
    )
    note: str = Field("", max_length=300)


class WinIn(Schema):
    version: int = Field(..., ge=1)
    checklist: list[str] = Field(default_factory=list)
    note: str = Field("", max_length=300)


class LoseIn(Schema):
    version: int = Field(..., ge=1)
    reason_id: RowId
    note: str = Field("", max_length=300)


class ReopenIn(Schema):
    version: int = Field(..., ge=1)
    note: str = Field("", max_length=300)


class TickIn(Schema):
    version: int = Field(..., ge=1)
    items: list[str]


class StageChangeOut(Schema):
    id: int
    kind: str
    from_stage: Ref | None
    to_stage: Ref
    changed_at: datetime
    changed_by: UserRef | None
    amount: Decimal
    probability: Decimal
    note: str


class LostReasonOut(Schema):
    id: int
    name: str
    name_en: str
    position: int
    is_active: bool


class ProductLineOut(Schema):
    id: int
    code: str
    name: str
    name_en: str
    is_active: bool


# --- helpers --------------------------------------------------------------------------


def _require_admin(request) -> None:
    if not request.auth.is_admin:
        raise NotPermitted(_("Only an administrator may change pipelines."), code="forbidden")


def _pipelines():
    ordered = Stage.objects.order_by("position", "pk")
    return Pipeline.objects.prefetch_related(Prefetch("stages", queryset=ordered))


def _product_line(product_line_id):
    if product_line_id is None:
        return None
    line = ProductLine.objects.filter(pk=product_line_id).first()
    if line is None:
        raise ValidationFailed(_("Unknown product line."), field="product_line_id")
    return line


def _opportunities(request):
    return (
        Opportunity.objects.visible_to(request.auth)
        .select_related("account", "owner", "stage")
        .prefetch_related("contacts")
    )


def _get_opportunity(request, opportunity_id: int) -> Opportunity:
    return get_object_or_404(Opportunity.objects.visible_to(request.auth), pk=opportunity_id)


def _reread(request, opp: Opportunity) -> Opportunity:
    """The opportunity as stored, so that every answer shows the same decimals."""
    return _opportunities(request).get(pk=opp.pk)


def _opportunity_data(request, payload: dict) -> dict:
    """Resolve the ids in an opportunity payload to objects the caller may use."""
    data = dict(payload)
    if "account_id" in data:
        account_id = data.pop("account_id")
        data["account"] = Account.objects.visible_to(request.auth).filter(pk=account_id).first()
        if data["account"] is None:
            raise ValidationFailed(_("Unknown account."), field="account_id")
    if "owner_id" in data:
        owner_id = data.pop("owner_id")
        if owner_id is None:
            data["owner"] = request.auth
        else:
            data["owner"] = assignable_owners(request.auth).filter(pk=owner_id).first()
            if data["owner"] is None:
                raise ValidationFailed(
                    _("You cannot give this record to that user."), field="owner_id"
                )
    if "product_line_id" in data:
        data["product_line"] = _product_line(data.pop("product_line_id"))
    if "contact_ids" in data:
        ids = set(data.pop("contact_ids"))
        contacts = list(Contact.objects.visible_to(request.auth).filter(pk__in=ids))
        if len(contacts) != len(ids):
            raise ValidationFailed(_("Unknown contact."), field="contact_ids")
        data["contacts"] = contacts
    return data


# --- pipelines and stages -------------------------------------------------------------


@router.get("/pipelines", response=list[PipelineOut])
def list_pipelines(request, archived: bool = False):
    """Pipelines with their stages; archived pipelines only with ``archived=true``."""
    qs = _pipelines()
    if not archived:
        qs = qs.filter(is_archived=False)
    return qs.order_by("position", "pk")


@router.post("/pipelines", response={201: PipelineOut})
def create_pipeline(request, payload: PipelineIn):
    """Create a pipeline from one of the four templates (admin only)."""
    _require_admin(request)
    data = payload.model_dump()
    data["product_line"] = _product_line(data.pop("product_line_id"))
    pipeline = services.create_pipeline_from_template(data.pop("template"), **data)
    return Status(201, _pipelines().get(pk=pipeline.pk))


@router.get("/pipelines/{pipeline_id}", response=PipelineOut)
def get_pipeline(request, pipeline_id: RowId):
    return get_object_or_404(_pipelines(), pk=pipeline_id)


@router.patch("/pipelines/{pipeline_id}", response=PipelineOut)
def update_pipeline(request, pipeline_id: RowId, payload: PipelinePatch):
    """Rename, change the checklist mode or learning switch, or archive (admin only)."""
    _require_admin(request)
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    data = payload.model_dump(exclude_unset=True)
    if "product_line_id" in data:
        data["product_line"] = _product_line(data.pop("product_line_id"))
    services.update_pipeline(pipeline, **data)
    return _pipelines().get(pk=pipeline.pk)


@router.get("/pipelines/{pipeline_id}/stages", response=list[StageOut])
def list_stages(request, pipeline_id: RowId, archived: bool = False):
    """The pipeline's stages in order; archived ones only with ``archived=true``."""
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    qs = pipeline.stages.order_by("position", "pk")
    return qs if archived else qs.filter(is_archived=False)


@router.post("/pipelines/{pipeline_id}/stages", response={201: StageOut})
def add_stage(request, pipeline_id: RowId, payload: StageIn):
    """Insert an open stage (admin only)."""
    _require_admin(request)
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    data = payload.model_dump()
    after_id = data.pop("after_id")
    after = None
    if after_id is not None:
        after = pipeline.stages.filter(pk=after_id).first()
        if after is None:
            raise ValidationFailed(_("Choose an open stage of this pipeline."), field="after_id")
    stage = services.add_stage(pipeline, after=after, **data)
    return Status(201, Stage.objects.get(pk=stage.pk))


@router.post("/pipelines/{pipeline_id}/stages/reorder", response=list[StageOut])
def reorder_stages(request, pipeline_id: RowId, payload: ReorderIn):
    """Put the open stages in a new order; won and lost stay last (admin only)."""
    _require_admin(request)
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    services.reorder_stages(pipeline, payload.stage_ids)
    return pipeline.stages.order_by("position", "pk")


@router.patch("/stages/{stage_id}", response=StageOut)
def update_stage(request, stage_id: RowId, payload: StagePatch):
    """Change a stage (admin only)."""
    _require_admin(request)
    stage = get_object_or_404(Stage, pk=stage_id)
    services.update_stage(stage, **payload.model_dump(exclude_unset=True))
    return Stage.objects.get(pk=stage.pk)


@router.post("/stages/{stage_id}/archive", response=StageOut)
def archive_stage(request, stage_id: RowId):
    """Hide a stage from new work; 409 while open opportunities sit in it (admin only)."""
    _require_admin(request)
    stage = get_object_or_404(Stage, pk=stage_id)
    services.archive_stage(stage)
    return Stage.objects.get(pk=stage.pk)


# --- opportunities --------------------------------------------------------------------


@router.get("/opportunities", response=list[OpportunityOut])
@paginate(LimitOffsetPagination)
def list_opportunities(request, filters: Query[OpportunityFilter]):
    return filters.apply(_opportunities(request))


@router.post("/opportunities", response={201: OpportunityOut})
def create_opportunity(request, payload: OpportunityIn):
    data = payload.model_dump(exclude_unset=True)
    data.setdefault("owner_id", None)
    pipeline_id, stage_id = data.pop("pipeline_id"), data.pop("stage_id", None)
    pipeline = Pipeline.objects.filter(pk=pipeline_id, is_archived=False).first()
    if pipeline is None:
        raise ValidationFailed(_("Unknown pipeline."), field="pipeline_id")
    stage = None
    if stage_id is not None:
        stage = Stage.objects.filter(pk=stage_id).first()
        if stage is None:
            raise ValidationFailed(_("Choose an open stage of this pipeline."), field="stage_id")
    data = _opportunity_data(request, data)
    opp = services.create_opportunity(actor=request.auth, pipeline=pipeline, stage=stage, **data)
    return Status(201, _reread(request, opp))


@router.get("/opportunities/{opportunity_id}", response=OpportunityOut)
def get_opportunity(request, opportunity_id: RowId):
    return get_object_or_404(_opportunities(request), pk=opportunity_id)


@router.patch("/opportunities/{opportunity_id}", response=OpportunityOut)
def update_opportunity(request, opportunity_id: RowId, payload: OpportunityPatch):
    """Change fields, not the stage (use move/won/lost/reopen). A probability given here
    is kept as the rep's own estimate; ``probability_follow_stage`` undoes that."""
    opp = _get_opportunity(request, opportunity_id)
    data = payload.model_dump(exclude_unset=True)
    version = data.pop("version")
    # Echoing the current owner, account or contacts back is not a change, so a
    # collaborator may send the record as read even where they could not assign them.
    if "owner_id" in data and data["owner_id"] == opp.owner_id:
        del data["owner_id"]
    if "account_id" in data and data["account_id"] == opp.account_id:
        del data["account_id"]
    if "contact_ids" in data and set(data["contact_ids"]) == {c.pk for c in opp.contacts.all()}:
        del data["contact_ids"]
    follow = data.pop("probability_follow_stage", None)
    if follow and "probability" in data:
        raise ValidationFailed(
            _("Either give a probability or follow the stage, not both."), field="probability"
        )
    if follow:
        data["probability"] = "default"
    data = _opportunity_data(request, data)
    opp = services.update_opportunity(opp, actor=request.auth, version=version, **data)
    return _reread(request, opp)


@router.post("/opportunities/{opportunity_id}/move", response=OpportunityOut)
def move_opportunity(request, opportunity_id: RowId, payload: MoveIn):
    """Move to another open stage. 409: stale version or closed; 422: the checklist of a
    strict pipeline is not done, or the stage is not an open stage of this pipeline."""
    opp = _get_opportunity(request, opportunity_id)
    stage = Stage.objects.filter(pk=payload.stage).first()
    if stage is None:
        raise ValidationFailed(_("Choose an open stage of this pipeline."), field="stage")
    opp = services.move_opportunity(
        opp,
        stage,
        actor=request.auth,
        version=payload.version,
        checklist=payload.checklist,
        note=payload.note,
    )
    return _reread(request, opp)


@router.post("/opportunities/{opportunity_id}/won", response=OpportunityOut)
def win_opportunity(request, opportunity_id: RowId, payload: WinIn):
    opp = _get_opportunity(request, opportunity_id)
    opp = services.win_opportunity(
        opp,
        actor=request.auth,
        version=payload.version,
        checklist=payload.checklist,
        note=payload.note,
    )
    return _reread(request, opp)


@router.post("/opportunities/{opportunity_id}/lost", response=OpportunityOut)
def lose_opportunity(request, opportunity_id: RowId, payload: LoseIn):
    opp = _get_opportunity(request, opportunity_id)
    reason = LostReason.objects.filter(pk=payload.reason_id).first()
    opp = services.lose_opportunity(
        opp, reason, actor=request.auth, version=payload.version, note=payload.note
    )
    return _reread(request, opp)


@router.post("/opportunities/{opportunity_id}/reopen", response=OpportunityOut)
def reopen_opportunity(request, opportunity_id: RowId, payload: ReopenIn):
    opp = _get_opportunity(request, opportunity_id)
    opp = services.reopen_opportunity(
        opp, actor=request.auth, version=payload.version, note=payload.note
    )
    return _reread(request, opp)


@router.post("/opportunities/{opportunity_id}/checklist", response=OpportunityOut)
def tick_checklist(request, opportunity_id: RowId, payload: TickIn):
    """Tick items of the current stage's checklist."""
    opp = _get_opportunity(request, opportunity_id)
    opp = services.tick_checklist(opp, payload.items, actor=request.auth, version=payload.version)
    return _reread(request, opp)


@router.get("/opportunities/{opportunity_id}/history", response=list[StageChangeOut])
def opportunity_history(request, opportunity_id: RowId):
    """Every stage change, oldest first, with the amount and probability at that time."""
    opp = _get_opportunity(request, opportunity_id)
    return (
        StageChange.objects.filter(opportunity=opp)
        .select_related("from_stage", "to_stage", "changed_by")
        .order_by("changed_at", "pk")
    )


# --- reference lists ------------------------------------------------------------------


@router.get("/lost-reasons", response=list[LostReasonOut])
def list_lost_reasons(request, include_inactive: bool = False):
    qs = LostReason.objects.order_by("position", "pk")
    return qs if include_inactive else qs.filter(is_active=True)


@router.get("/product-lines", response=list[ProductLineOut])
def list_product_lines(request, include_inactive: bool = False):
    qs = ProductLine.objects.order_by("name", "pk")
    return qs if include_inactive else qs.filter(is_active=True)
