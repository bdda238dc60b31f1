"""``loudou roadmap [--user NAME | --team NAME] [--format table|json] [--today DATE]``:
the onboarding roadmap of one person, or the team view of a team's subtree (default:
every active rep), with the same numbers as the pages and the API."""

import json
from datetime import date
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from loudou.onboarding import queries
from loudou.org.models import Role, Team, User


def _date(text):
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {text}") from exc


def _plain(value):
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _n(value, unit=""):
    if value is None:
        return "—"
    value = Decimal(value)
    text = f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.1f}"
    return f"{text}{' h' if unit == 'h' else unit}"


def _threshold(row):
    if row.get("value_max") is not None:
        return f"{_n(row['value'])}–{_n(row['value_max'], row['unit'])}"
    return f"≥ {_n(row['value'], row['unit'])}"


class Command(BaseCommand):
    help = "Onboarding roadmap: one person (--user) or a team's reps (--team, default all)."

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group()
        who.add_argument("--user", help="username or id")
        who.add_argument("--team", help="team name or id (its whole subtree)")
        parser.add_argument("--format", choices=["table", "json"], default="table")
        parser.add_argument("--today", type=_date, help="as of this day (default: today)")

    def handle(self, *args, user=None, team=None, format="table", today=None, **options):
        if user:
            key = Q(pk=int(user)) if user.isdigit() else Q(username=user)
            person = User.objects.filter(key).first()
            if person is None:
                raise CommandError(f"no user {user!r}")
            p = queries.roadmap(person, today)
            if format == "json":
                self.stdout.write(json.dumps(_plain({"user": person.username, **p}),
                                             ensure_ascii=False, indent=2))  # fmt: skip
            else:
                self._one(person, p)
            return
        reps = User.objects.filter(role=Role.REP, is_active=True, left_on__isnull=True)
        if team:
            found = Team.objects.filter(pk=int(team)) if team.isdigit() else Team.objects.none()
            found = found.first() or Team.objects.filter(name=team).first()
            if found is None:
                raise CommandError(f"no team {team!r}")
            reps = reps.filter(team__path__startswith=found.path)
        rows = queries.roadmaps(reps.order_by("hire_date", "username"), today)
        if format == "json":
            data = [{"user": r.username, "status": p["status"], "hire_date": p["hire_date"],
                     "band": p["band"], "week": p["week"], "behind_count": p["behind_count"],
                     "behind": [b["metric"] for b in p["behind"]]}
                    for r, p in rows]  # fmt: skip
            self.stdout.write(json.dumps(_plain(data), ensure_ascii=False, indent=2))
            return
        self.stdout.write(f"{'user':<16}{'status':<14}{'hired':<12}{'band':<16}{'week':>5}"
                          f"{'behind':>8}")  # fmt: skip
        for r, p in rows:
            self.stdout.write(
                f"{r.username:<16}{p['status']:<14}{str(p['hire_date'] or '—'):<12}"
                f"{(p['band'] or '—'):<16}{str(p['week'] or '—'):>5}{p['behind_count']:>8}"
            )

    def _one(self, person, p):
        out = self.stdout.write
        out(f"{person.username} ({person}) · {p['status']}")
        if p["hire_date"]:
            out(f"hired {p['hire_date']} · week {p['week']} · band {p['band'] or '—'}"
                + (f" ({p['band_start']} – {p['band_end']})" if p["band"] else ""))  # fmt: skip
        for w in p["weekly"]:
            cells = "  ".join(
                f"{c['week']:%m-%d}:{_n(c['actual'], w['unit'])}"
                + ("!" if c["status"] == "behind" else "")
                for c in w["cells"]
            )
            out(f"  weekly {w['metric']:<24}{_threshold(w):<10} {cells}")
        for g in p["goals"]:
            actual = "no quota set" if g["status"] == "no_quota" else _n(g["actual"], g["unit"])
            out(f"  goal   {g['metric']:<24}{_threshold(g):<10} {actual} ({g['status']})")
        out(f"behind: {p['behind_count']}")
