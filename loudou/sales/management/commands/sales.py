"""``loudou sales overdue [--user NAME] [--today YYYY-MM-DD] [--json]``: the overdue
receivables, oldest first, with the ageing totals."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date

from loudou.org.models import User
from loudou.sales import queries
from loudou.sales.models import Contract


class Command(BaseCommand):
    help = "Contracts and payments: list overdue receivables."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        overdue = sub.add_parser("overdue", help="overdue plan lines, oldest first")
        overdue.add_argument("--user", help="only what this user may see (default: all)")
        overdue.add_argument("--today", help="count overdue as of this day (YYYY-MM-DD)")
        overdue.add_argument("--limit", type=int, default=50, help="rows to list (default 50)")
        overdue.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, action, user=None, today=None, limit=50, json=False, **options):
        contracts = Contract.objects.all()
        if user:
            found = User.objects.filter(username=user).first()
            if found is None:
                raise CommandError(f"No user {user!r}.")
            contracts = Contract.objects.visible_to(found)
        day = None
        if today:
            day = parse_date(today)
            if day is None:
                raise CommandError("--today must be YYYY-MM-DD.")
        totals = queries.receivable_totals(contracts, day)
        lines = queries.overdue_plans(contracts, day)[: max(limit, 0)]
        rows = [
            {
                "contract": p.contract.number,
                "account": p.contract.account.name,
                "owner": str(p.contract.owner or ""),
                "due_date": p.due_date.isoformat(),
                "outstanding": str(p.outstanding),
            }
            for p in lines
        ]
        if json:
            data = {
                "overdue": str(totals["overdue"]),
                "overdue_contracts": totals["overdue_count"],
                "buckets": {k: str(v) for k, v in totals["buckets"].items()},
                "lines": rows,
            }
            self.stdout.write(_dumps(data))
            return
        for r in rows:
            self.stdout.write(
                f"{r['due_date']}  {r['contract']:<16} {r['outstanding']:>14}  {r['account']} "
                f"({r['owner']})"
            )
        buckets = ", ".join(f"{k}: {v}" for k, v in totals["buckets"].items())
        self.stdout.write(
            f"overdue {totals['overdue']} on {totals['overdue_count']} contracts ({buckets})"
        )


def _dumps(data) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
