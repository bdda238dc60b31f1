"""``loudou rules sweep [--rule ID ...] [--full] [--rebuild] [--at ISO] [--json]`` runs
the follow-up rules now; ``loudou rules list`` prints them."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware

from loudou.rules.models import FollowUpRule
from loudou.rules.sweep import sweep


class Command(BaseCommand):
    help = "Follow-up rules: sweep (find and settle breaches now) or list."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("sweep", help="run the rules once")
        run.add_argument("--rule", type=int, action="append", dest="rules", help="only this rule")
        run.add_argument("--full", action="store_true", help="look at every record")
        run.add_argument(
            "--rebuild", action="store_true", help="also recompute every follow-up state"
        )
        run.add_argument("--at", help="pretend it is this moment (ISO 8601)")
        run.add_argument("--json", action="store_true", help="print the result as JSON")
        sub.add_parser("list", help="print the rules")

    def handle(self, *args, action, **options):
        if action == "list":
            return self._list()
        now = None
        if options.get("at"):
            now = parse_datetime(options["at"])
            if now is None:
                raise CommandError("--at must be an ISO 8601 date and time.")
            if is_naive(now):
                now = make_aware(now)
        rules = options.get("rules")
        if rules and FollowUpRule.objects.filter(pk__in=rules).count() != len(set(rules)):
            raise CommandError("Unknown rule id; see `loudou rules list`.")
        quiet = options.get("json") or options.get("verbosity", 1) == 0
        run = sweep(
            now, rule_ids=rules, full=options["full"], rebuild=options["rebuild"],
            progress=None if quiet else lambda line: self.stdout.write("  " + line),
        )  # fmt: skip
        if options.get("json"):
            self.stdout.write(json.dumps({
                "run": run.pk, "mode": run.mode, "now": run.now.isoformat(),
                "opened": run.opened, "resolved": run.resolved, "counts": run.counts,
            }, ensure_ascii=False, indent=2))  # fmt: skip
            return None
        self.stdout.write(
            f"sweep #{run.pk} ({run.mode}) at {run.now:%Y-%m-%d %H:%M}: "
            f"{run.opened} breaches found, {run.resolved} settled "
            f"in {run.counts.get('seconds', 0):.2f} s"
        )
        return None

    def _list(self):
        for rule in FollowUpRule.objects.order_by("position", "pk"):
            state = "on " if rule.is_active else "off"
            amount = "" if rule.amount is None else f" N={rule.amount}"
            conditions = json.dumps(rule.conditions, ensure_ascii=False) if rule.conditions else ""
            self.stdout.write(
                f"{rule.pk:>4} [{state}] {rule.name} ({rule.applies_to}, {rule.requirement}"
                f"{amount}) {conditions}".rstrip()
            )
