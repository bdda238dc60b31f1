"""Organisation API: who am I, my colleagues, teams and regions."""

from datetime import date, datetime
from typing import Literal

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status

from loudou.api.pagination import LimitOffsetPagination, paginate
from loudou.core.exceptions import NotPermitted, ValidationFailed
from loudou.pipeline.filters import RowId

from . import handover
from .models import HandOver, Region, Team, User

router = Router(tags=["organisation"])


class TeamOut(Schema):
    id: int
    name: str
    parent_id: int | None
    depth: int


class RegionOut(Schema):
    id: int
    name: str
    code: str
    parent_id: int | None
    depth: int


class UserOut(Schema):
    id: int
    username: str
    name: str
    role: str
    team_id: int | None
    region_id: int | None
    level: str
    hire_date: date | None
    left_on: date | None
    is_active: bool


class MeOut(UserOut):
    email: str
    language: str
    team: TeamOut | None
    region: RegionOut | None
    sees_everything: bool


@router.get("/me", response=MeOut, summary="The authenticated user")
def me(request):
    user = request.auth
    return {
        **{f: getattr(user, f) for f in UserOut.model_fields},
        "name": str(user),
        "email": user.email,
        "language": user.language,
        "team": user.team,
        "region": user.region,
        "sees_everything": user.sees_everything,
    }


@router.get("/users", response=list[UserOut], summary="Colleagues you may see")
@paginate(LimitOffsetPagination)
def list_users(request, role: str | None = None, team: int | None = None):
    qs = User.objects.visible_to(request.auth).order_by("username")
    if role:
        qs = qs.filter(role=role)
    if team is not None:
        qs = qs.filter(team_id=team)
    return qs


@router.get("/users/{user_id}", response=UserOut)
def get_user(request, user_id: int):
    return get_object_or_404(User.objects.visible_to(request.auth), pk=user_id)


@router.get("/teams", response=list[TeamOut])
def list_teams(request):
    return Team.objects.order_by("path")


@router.get("/regions", response=list[RegionOut])
def list_regions(request):
    return Region.objects.order_by("path")


# --- hand-over ---------------------------------------------------------------------------


class HandOverLineOut(Schema):
    label: str
    name: str
    count: int


class HandOverPreviewOut(Schema):
    from_id: int
    lines: list[HandOverLineOut]
    total: int


class HandOverIn(Schema):
    from_id: RowId
    to_id: RowId | None = Field(None, description="One person receives the records.")
    receiver_ids: list[RowId] = Field(
        default_factory=list, description="Or split them among these people."
    )
    split: Literal["round_robin", "region"] = Field(
        "round_robin", description="In turn, or by region (each receiver's region first)."
    )
    by_kind: dict[str, RowId] = Field(
        default_factory=dict,
        description='A receiver per kind of record, e.g. {"customers.account": 7}.',
    )
    pool_id: RowId | None = Field(None, description="Open leads go into this pool instead.")
    account_pool_id: RowId | None = Field(None, description="Accounts go into this pool.")
    deactivate: bool = Field(False, description="Deactivate the leaving user afterwards.")
    left_on: date | None = Field(None, description="With deactivate; default today.")


class ShareOut(Schema):
    label: str
    to_id: int | None
    pool_id: int | None
    count: int


class HandOverOut(Schema):
    id: int
    from_id: int = Field(..., alias="from_user_id")
    to_id: int | None = Field(None, alias="to_user_id")
    pool_name: str
    counts: dict[str, int]
    shares: list[ShareOut]
    deactivated: bool
    by_id: int | None
    at: datetime


class HandOverPlanOut(Schema):
    from_id: int
    shares: list[ShareOut]
    total: int


def _handover_user(request, user_id, field):
    user = User.objects.visible_to(request.auth).filter(pk=user_id).first()
    if user is None:
        raise ValidationFailed(_("No such user."), field=field)
    return user


def _pool(pool_id, field):
    from loudou.leads.models import PublicPool

    if not pool_id:
        return None
    pool = PublicPool.objects.filter(pk=pool_id).first()
    if pool is None:
        raise ValidationFailed(_("No such pool."), field=field)
    return pool


def _handover_options(request, payload: HandOverIn):
    """The leaving user (404 outside the caller's scope, 403 when not allowed) and the
    hand-over's keyword arguments."""
    source = get_object_or_404(User.objects.visible_to(request.auth), pk=payload.from_id)
    handover.check_allowed(request.auth, source)
    options = {
        "to": _handover_user(request, payload.to_id, "to_id") if payload.to_id else None,
        "receivers": [_handover_user(request, pk, "receiver_ids") for pk in payload.receiver_ids],
        "split": payload.split,
        "by_kind": {
            label: _handover_user(request, pk, "by_kind") for label, pk in payload.by_kind.items()
        },
        "pool": _pool(payload.pool_id, "pool_id"),
        "account_pool": _pool(payload.account_pool_id, "account_pool_id"),
    }
    return source, options


@router.get("/handovers/preview", response=HandOverPreviewOut)
def handover_preview(request, from_id: RowId):
    """What a hand-over of ``from_id`` would move: counts per kind of record."""
    source = get_object_or_404(User.objects.visible_to(request.auth), pk=from_id)
    handover.check_allowed(request.auth, source)
    lines = handover.inventory(source)
    return {"from_id": source.pk, "lines": lines, "total": sum(line.count for line in lines)}


@router.post("/handovers/plan", response=HandOverPlanOut)
def handover_plan(request, payload: HandOverIn):
    """Who would receive what (``shares``) with these receivers, pools and split —
    nothing is written. Refusals as for the hand-over itself."""
    source, options = _handover_options(request, payload)
    handover.check_allowed(
        request.auth, source, [options["to"], *options["receivers"], *options["by_kind"].values()]
    )
    the_plan = handover.preview(source, **options)
    if the_plan.unplaced:
        raise ValidationFailed(
            _("Choose a receiver for the %(n)d records that cannot go into a pool.")
            % {"n": the_plan.unplaced},
            field="to_id",
        )
    shares = the_plan.shares()
    return {"from_id": source.pk, "shares": shares, "total": sum(s["count"] for s in shares)}


@router.post("/handovers", response={201: HandOverOut})
def create_handover(request, payload: HandOverIn):
    """Hand over everything ``from_id`` owns — to ``to_id``, or split among
    ``receiver_ids`` (``split``: round_robin or region; ``by_kind`` receivers per kind),
    open leads into ``pool_id`` and accounts into ``account_pool_id`` — in one
    transaction; 403 unless a manager of all of them or an admin."""
    source, options = _handover_options(request, payload)
    record = handover.hand_over(
        source, actor=request.auth, **options, deactivate=payload.deactivate,
        left_on=payload.left_on,
    )  # fmt: skip
    return Status(201, record)


@router.get("/handovers", response=list[HandOverOut])
@paginate(LimitOffsetPagination)
def list_handovers(request):
    """Hand-overs of people the caller sees (managers and admins)."""
    if not (request.auth.sees_everything or request.auth.managed_team_path):
        raise NotPermitted()
    qs = HandOver.objects.all()
    if not request.auth.sees_everything:
        qs = qs.filter(from_user__in=User.objects.visible_to(request.auth))
    return qs.order_by("-at", "-pk")
