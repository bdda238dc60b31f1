"""``loudou targets show|set``: read a year's targets with progress, or set one.

    loudou targets show --owner company|team:NAME|rep:USERNAME [--year 2026]
                        [--measure signed] [--format table|json]
    loudou targets set --owner rep:zhangwei --measure signed --period 2026Q4
                       --target 500000 [--stretch 600000] [--challenge 750000] [--as admin]

``set`` goes through the same service as the page and the API, acting as ``--as`` (by
default the first administrator), and overwrites an existing target for the same key.
"""

import json
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from loudou.core.exceptions import ServiceError
from loudou.org.models import Role, User
from loudou.targets import services
from loudou.targets.models import Measure
from loudou.targets.views import grid_rows

from ._common import find_owner, period


def _plain(value):
    return str(value) if isinstance(value, Decimal) else value


class Command(BaseCommand):
    help = "Show a year's targets with progress, or set a target."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        show = sub.add_parser("show")
        show.add_argument("--owner", default="company")
        show.add_argument("--year", type=int, default=None)
        show.add_argument("--measure", choices=Measure.values)
        show.add_argument("--format", choices=["table", "json"], default="table")
        put = sub.add_parser("set")
        put.add_argument("--owner", required=True)
        put.add_argument("--measure", choices=Measure.values, required=True)
        put.add_argument("--period", required=True, help="2026-11, 2026Q4 or 2026")
        put.add_argument("--target", required=True)
        put.add_argument("--stretch")
        put.add_argument("--challenge")
        put.add_argument("--as", dest="actor", help="username (default: an administrator)")

    def handle(self, *args, action, **o):
        if action == "show":
            return self.show(**o)
        return self.set(**o)

    def show(self, **o):
        owner = find_owner(o["owner"])
        year = o["year"] or timezone.localdate().year
        if not 1900 <= year <= 2999:
            raise CommandError("year out of range")
        measures = [o["measure"]] if o.get("measure") else Measure.values
        lines = grid_rows(owner, year, editable=False)
        out = []
        for line in lines:
            for cell in line["cells"]:
                if cell["measure"] not in measures:
                    continue
                direct, rolled = cell["direct"], cell["rolled"]
                out.append({
                    "period": line["label"], "measure": cell["measure"],
                    "set": direct.target if direct else None,
                    "rolled_up": rolled.target if rolled else None,
                    "stretch": cell["tiers"].stretch if cell["tiers"] else None,
                    "challenge": cell["tiers"].challenge if cell["tiers"] else None,
                    "actual": cell["actual"], "percent": cell["percent"], "tier": cell["tier"],
                })  # fmt: skip
        if o["format"] == "json":
            self.stdout.write(json.dumps({"owner": owner.key, "year": year, "rows": out},
                                         ensure_ascii=False, default=_plain, indent=2))  # fmt: skip
            return
        self.stdout.write(f"{owner.name} · {year}")
        head = ("period", "measure", "set", "rolled_up", "actual", "percent", "tier")
        self.stdout.write("  ".join(h.ljust(18) for h in head))
        for row in out:
            pct = f"{row['percent'] * 100:.0f}%" if row["percent"] is not None else "—"
            cells = [row["period"], row["measure"], row["set"], row["rolled_up"], row["actual"],
                     pct, row["tier"] or ""]  # fmt: skip
            self.stdout.write("  ".join(str("—" if c is None else c).ljust(18) for c in cells))

    def set(self, **o):
        owner = find_owner(o["owner"])
        chosen = period(o["period"])
        kind = services.period_kind(chosen.start, chosen.end)
        actor = self.actor(o.get("actor"))
        try:
            row = services.set_target(
                actor, level=owner.level, team=owner.team, user=owner.user,
                measure=o["measure"], period=kind, start=chosen.start, target=o["target"],
                stretch=o.get("stretch"), challenge=o.get("challenge"), replace=True,
            )  # fmt: skip
        except ServiceError as exc:
            raise CommandError(f"{exc.field or 'refused'}: {exc.message}") from exc
        tiers = services.target_value(measure=o["measure"], start=chosen.start, end=chosen.end,
                                      user=owner.user, team=owner.team)  # fmt: skip
        self.stdout.write(f"{owner.name} · {row.get_measure_display()} · {row.period_label}: "
                          f"{row.target} (version {row.version}); resolves to {tiers.target} "
                          f"({tiers.source})")  # fmt: skip

    def actor(self, username):
        qs = User.objects.filter(is_active=True)
        if username:
            user = qs.filter(username=username).first()
            if user is None:
                raise CommandError(f"no user {username!r}")
            return user
        user = qs.filter(Q(role=Role.ADMIN) | Q(is_superuser=True)).order_by("pk").first()
        if user is None:
            raise CommandError("no administrator: pass --as USERNAME")
        return user
