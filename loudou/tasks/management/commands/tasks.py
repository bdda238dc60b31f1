"""``loudou tasks remind [--at ISO]``: send the reminders that are due now."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware

from loudou.tasks import services


class Command(BaseCommand):
    help = "Tasks: remind (notify the assignees of tasks whose reminder time has come)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        remind = sub.add_parser("remind", help="send the due reminders once")
        remind.add_argument("--at", help="pretend it is this moment (ISO 8601)")

    def handle(self, *args, action, at=None, **options):
        now = None
        if at:
            now = parse_datetime(at)
            if now is None:
                raise CommandError("--at must be an ISO 8601 date and time.")
            if is_naive(now):
                now = make_aware(now)
        count = services.send_due_reminders(now=now)
        self.stdout.write(f"reminded {count} tasks")
