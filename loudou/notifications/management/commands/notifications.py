"""``loudou notifications deliver``: send the e-mail and webhook deliveries that are due
now (what the periodic job does every minute); ``loudou notifications status``: how
many deliveries are in each state."""

from django.core.management.base import BaseCommand
from django.db.models import Count

from loudou.notifications import delivery
from loudou.notifications.choices import DeliveryStatus
from loudou.notifications.models import Delivery


class Command(BaseCommand):
    help = "Notifications: deliver (send what is due now), status (deliveries per state)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        deliver = sub.add_parser("deliver", help="send every due delivery once")
        deliver.add_argument(
            "--limit", type=int, default=delivery.SWEEP_LIMIT, help="at most this many rows"
        )
        sub.add_parser("status", help="count the deliveries per state")

    def handle(self, *args, action, limit=None, **options):
        if action == "deliver":
            counts = delivery.retry_due(limit=max(1, limit))
            done = ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
            self.stdout.write(f"delivered: {done or 'nothing was due'}")
            return
        counts = dict(Delivery.objects.order_by().values_list("status").annotate(n=Count("pk")))
        for status in DeliveryStatus:
            self.stdout.write(f"{status.value:8} {counts.get(status.value, 0)}")
