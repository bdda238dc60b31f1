"""Organisation API: who am I, my colleagues, teams and regions."""

from datetime import date, datetime

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
    to_id: RowId | None = Field(None, description="Who receives the records.")
    pool_id: RowId | None = Field(None, description="Open leads go into this pool instead.")
    deactivate: bool = Field(False, description="Deactivate the leaving user afterwards.")
    left_on: date | None = Field(None, description="With deactivate; default today.")


class HandOverOut(Schema):
    id: int
    from_id: int = Field(..., alias="from_user_id")
    to_id: int | None = Field(None, alias="to_user_id")
    pool_name: str
    counts: dict[str, int]
    deactivated: bool
    by_id: int | None
    at: datetime


def _handover_user(request, user_id, field):
    user = User.objects.visible_to(request.auth).filter(pk=user_id).first()
    if user is None:
        raise ValidationFailed(_("No such user."), field=field)
    return user


@router.get("/handovers/preview", response=HandOverPreviewOut)
def handover_preview(request, from_id: RowId):
    """What a hand-over of ``from_id`` would move: counts per kind of record."""
    source = get_object_or_404(User.objects.visible_to(request.auth), pk=from_id)
    handover.check_allowed(request.auth, source)
    lines = handover.inventory(source)
    return {"from_id": source.pk, "lines": lines, "total": sum(line.count for line in lines)}


@router.post("/handovers", response={201: HandOverOut})
def create_handover(request, payload: HandOverIn):
    """Hand over everything ``from_id`` owns to ``to_id`` (open leads into ``pool_id``
    when given), in one transaction; 403 unless a manager of both or an admin."""
    from loudou.leads.models import PublicPool

    source = get_object_or_404(User.objects.visible_to(request.auth), pk=payload.from_id)
    handover.check_allowed(request.auth, source)
    to = _handover_user(request, payload.to_id, "to_id") if payload.to_id else None
    pool = None
    if payload.pool_id:
        pool = PublicPool.objects.filter(pk=payload.pool_id).first()
        if pool is None:
            raise ValidationFailed(_("No such pool."), field="pool_id")
    record = handover.hand_over(
        source, actor=request.auth, to=to, pool=pool, deactivate=payload.deactivate,
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
