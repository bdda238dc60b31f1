"""Helpers of the targets commands: the command line sees everything, like an admin."""

from dataclasses import dataclass

from django.core.management.base import CommandError

from loudou.analytics.periods import parse_period
from loudou.org.models import Team, User
from loudou.targets.models import TargetLevel
from loudou.targets.progress import Owner


@dataclass(frozen=True)
class CommandLine:
    """The command line's viewpoint: every record, as an admin."""

    is_authenticated: bool = True
    is_active: bool = True
    sees_everything: bool = True
    managed_team_path: str = ""
    team_id: None = None
    pk: None = None


def find_team(name: str) -> Team:
    qs = Team.objects.filter(pk=int(name)) if name.isdigit() else Team.objects.filter(name=name)
    team = qs.first()
    if team is None:
        raise CommandError(f"no team {name!r}")
    return team


def find_owner(text: str) -> Owner:
    """company, team:NAME (or id) or rep:USERNAME."""
    if text == "company":
        return Owner(TargetLevel.COMPANY)
    kind, _sep, name = text.partition(":")
    if kind == "team" and name:
        return Owner(TargetLevel.TEAM, team=find_team(name))
    if kind == "rep" and name:
        user = User.objects.filter(username=name).select_related("team").first()
        if user is None:
            raise CommandError(f"no user {name!r}")
        return Owner(TargetLevel.REP, user=user)
    raise CommandError("owner: company, team:NAME or rep:USERNAME")


def period(text: str):
    try:
        result = parse_period(text)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    if "W" in result.label:
        raise CommandError("use a month, quarter or year (2026-11, 2026Q4, 2026)")
    return result
