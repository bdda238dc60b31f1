"""``loudou performance --period 2026Q4 [--team NAME] [--group rep|team] [--format
table|csv|json]``: the performance list, the same figures as the page and the API."""

import csv
import json
import sys
from decimal import Decimal

from django.core.management.base import BaseCommand

from loudou.targets import performance
from loudou.targets.api import _row_out

from ._common import CommandLine, find_team, period


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    return value


class Command(BaseCommand):
    help = "The performance list of every rep (or team) for a period."

    def add_arguments(self, parser):
        parser.add_argument("--period", default="", help="2026-11, 2026Q4 or 2026 (default: "
                            "this month)")  # fmt: skip
        parser.add_argument("--team", help="team name or id (its whole subtree)")
        parser.add_argument("--group", choices=["rep", "team"], default="rep")
        parser.add_argument("--sort", default="", help="a column, e.g. signed or visits")
        parser.add_argument("--bottom", action="store_true", help="lowest first")
        parser.add_argument("--limit", type=int)
        parser.add_argument("--format", choices=["table", "csv", "json"], default="table")

    def handle(self, *args, **o):
        chosen = period(o["period"]) if o["period"] else performance.today_period("month")
        team = find_team(o["team"]) if o.get("team") else None
        report = performance.build_report(CommandLine(), chosen, group=o["group"], team=team)
        rows = report.rows
        if o["sort"]:
            rows = performance.sort_rows(rows, o["sort"], descending=not o["bottom"],
                                         limit=o["limit"])  # fmt: skip
        elif o["limit"]:
            rows = rows[: o["limit"]]
        data = [_row_out(r) for r in rows]
        columns = ["name", "team_id", "level", *performance.COLUMNS]
        if o["format"] == "json":
            payload = {"period": chosen.label, "group": o["group"], "rows": data}
            self.stdout.write(json.dumps(payload, ensure_ascii=False, default=_plain, indent=2))
            return
        if o["format"] == "csv":
            writer = csv.writer(self.stdout)
            writer.writerow(columns + ["standards_below"])
            for row in data:
                below = sum(1 for r in row["ratings"] if not r["meets"])
                writer.writerow([_plain(row[c]) for c in columns] + [below])
            return
        labels = performance.column_labels()
        self.stdout.write(f"{chosen.label} ({len(data)} rows)")
        header = ["name"] + [labels[c] for c in performance.COLUMNS]
        lines = [header]
        for row in data:
            cells = [row["name"]]
            for c in performance.COLUMNS:
                value = row[c]
                if value is None:
                    cells.append("—")
                elif c == "win_rate":
                    cells.append(f"{value * 100:.0f}%")
                else:
                    cells.append(str(value))
            lines.append(cells)
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
        for line in lines:
            self.stdout.write("  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)))
        sys.stdout.flush()
