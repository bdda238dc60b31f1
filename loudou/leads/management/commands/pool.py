"""``loudou pool sweep [--dry-run] [--at ISO]``: run the auto-recycle rules now."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware

from loudou.leads import services


class Command(BaseCommand):
    help = "Public pools: sweep (return neglected leads to their pools and warn owners)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sweep = sub.add_parser("sweep", help="run the recycle rules once")
        sweep.add_argument("--dry-run", action="store_true", help="count, change nothing")
        sweep.add_argument("--at", help="pretend it is this moment (ISO 8601)")
        sweep.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, action, dry_run=False, at=None, json=False, **options):
        now = None
        if at:
            now = parse_datetime(at)
            if now is None:
                raise CommandError("--at must be an ISO 8601 date and time.")
            if is_naive(now):
                now = make_aware(now)
        result = services.sweep(now=now, dry_run=dry_run)
        if json:
            self.stdout.write(_dumps(result.as_dict()))
            return
        verb = "would recycle" if dry_run else "recycled"
        for o in result.outcomes:
            self.stdout.write(
                f"{o.rule} [{o.kind} {o.days}d → {o.pool}]: {verb} {o.recycled}, warned {o.warned}"
            )
        self.stdout.write(f"total: {verb} {result.recycled}, warned {result.warned}")


def _dumps(data) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
