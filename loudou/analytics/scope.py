"""Building a report Scope from request or command-line parameters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Q

from loudou.org.models import Team, User
from loudou.pipeline.models import Pipeline

from .queries import Scope


@dataclass(frozen=True)
class Everyone:
    """The command line's viewpoint: every record (like an admin)."""

    is_authenticated: bool = True
    is_active: bool = True
    sees_everything: bool = True
    managed_team_path: str = ""
    pk: None = None


class ScopeError(ValueError):
    """A parameter names something that does not exist or is not visible."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def find_pipeline(value: str | int | None) -> Pipeline:
    """A pipeline by id or by its Chinese or English name (case-insensitive); without a
    value, the first one."""
    qs = Pipeline.objects.filter(is_archived=False)
    if value in (None, ""):
        pipeline = qs.first()
    elif str(value).isdigit():
        pipeline = Pipeline.objects.filter(pk=int(value)).first()
    else:
        pipeline = Pipeline.objects.filter(Q(name__iexact=value) | Q(name_en__iexact=value)).first()
    if pipeline is None:
        raise ScopeError(f"no pipeline {value!r}", "pipeline")
    return pipeline


def build_scope(
    user, *, pipeline=None, date_from: date | None = None, date_to: date | None = None,
    team: str | int | None = None, owner: str | int | None = None,
    product_line: int | None = None,
) -> Scope:  # fmt: skip
    """Resolve names and ids; a team or owner the user may not see is an error."""
    scope = Scope(user=user, pipeline=find_pipeline(pipeline), created_from=date_from,
                  created_to=date_to, product_line_id=product_line)  # fmt: skip
    if team not in (None, ""):
        found = Team.objects.filter(pk=int(team)) if str(team).isdigit() else None
        found = found if found is not None else Team.objects.filter(name=team)
        scope.team = found.first()
        if scope.team is None:
            raise ScopeError(f"no team {team!r}", "team")
    if owner not in (None, ""):
        users = User.objects.all() if isinstance(user, Everyone) else User.objects.visible_to(user)
        key = {"pk": int(owner)} if str(owner).isdigit() else {"username": owner}
        found = users.filter(**key).first()
        if found is None:
            raise ScopeError(f"no user {owner!r}", "owner")
        scope.owner_id = found.pk
    return scope
