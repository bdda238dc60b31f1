"""``loudou handover FROM TO [--pool NAME] [--dry-run] [--deactivate]``: give everything
user FROM owns to user TO (open leads into pool NAME when given)."""

from django.core.management.base import BaseCommand, CommandError

from loudou.core.exceptions import ServiceError
from loudou.org import handover
from loudou.org.models import User


class Command(BaseCommand):
    help = "Hand over everything a user owns to another user (open leads optionally to a pool)."

    def add_arguments(self, parser):
        parser.add_argument("from_username")
        parser.add_argument("to_username", nargs="?", help="receiver (omit with --pool only)")
        parser.add_argument("--pool", help="name of the pool for the open leads")
        parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
        parser.add_argument("--deactivate", action="store_true", help="deactivate FROM after")

    def handle(self, *args, from_username, to_username, pool, dry_run, deactivate, **options):
        from loudou.leads.models import PublicPool

        source = self._user(from_username)
        to = self._user(to_username) if to_username else None
        target = None
        if pool:
            target = PublicPool.objects.filter(name=pool).first()
            if target is None:
                raise CommandError(f"No pool named {pool!r}.")
        lines = handover.inventory(source)
        for line in lines:
            if line.count:
                self.stdout.write(f"{line.count:>8}  {line.label}")
        if dry_run:
            self.stdout.write(f"dry run: {sum(line.count for line in lines)} records would move")
            return
        try:
            record = handover.hand_over(source, to=to, pool=target, deactivate=deactivate)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"handed over: {record.total} records (hand-over #{record.pk})")

    @staticmethod
    def _user(username):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        return user
