"""Organisation API: who am I, my colleagues, teams and regions."""

from datetime import date

from django.shortcuts import get_object_or_404
from ninja import Router, Schema

from loudou.api.pagination import LimitOffsetPagination, paginate

from .models import Region, Team, User

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
