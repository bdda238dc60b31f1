"""``loudou handover FROM [TO ...] [--split round_robin|region] [--kind LABEL=USER ...]
[--pool NAME] [--accounts-pool NAME] [--dry-run] [--deactivate]``: give everything user
FROM owns to user TO, or split it among several TOs (open leads and accounts into pools
when given)."""

from django.core.management.base import BaseCommand, CommandError

from loudou.core.exceptions import ServiceError
from loudou.org import handover
from loudou.org.models import User


class Command(BaseCommand):
    help = (
        "Hand over everything a user owns to another user, or split it among several "
        "(open leads and accounts optionally into pools)."
    )

    def add_arguments(self, parser):
        parser.add_argument("from_username")
        parser.add_argument(
            "to_usernames", nargs="*", help="receiver; several: the records are split"
        )
        parser.add_argument("--split", choices=handover.SPLIT_METHODS, default="round_robin",
                            help="with several receivers: in turn, or by region")  # fmt: skip
        parser.add_argument("--kind", action="append", default=[], metavar="LABEL=USER",
                            help="a receiver for one kind: customers.account=lina")  # fmt: skip
        parser.add_argument("--pool", help="name of the pool for the open leads")
        parser.add_argument("--accounts-pool", help="name of the pool for the accounts")
        parser.add_argument("--dry-run", action="store_true", help="show who gets what")
        parser.add_argument("--deactivate", action="store_true", help="deactivate FROM after")

    def handle(self, *args, from_username, to_usernames, split, kind, pool, accounts_pool,
               dry_run, deactivate, **options):  # fmt: skip
        source = self._user(from_username)
        people = [self._user(name) for name in to_usernames]
        by_kind = {}
        for item in kind:
            label, sep, name = item.partition("=")
            if not sep:
                raise CommandError(f"--kind wants LABEL=USER, not {item!r}.")
            by_kind[label.strip().lower()] = self._user(name.strip())
        options = {
            "to": people[0] if len(people) == 1 else None,
            "receivers": people if len(people) > 1 else [],
            "split": split,
            "by_kind": by_kind,
            "pool": self._pool(pool),
            "account_pool": self._pool(accounts_pool),
        }
        try:
            the_plan = handover.preview(source, **options)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        names = {u.pk: u.username for u in User.objects.all()}
        for share in the_plan.shares():
            to = names.get(share["to_id"]) if share["to_id"] else f"pool #{share['pool_id']}"
            self.stdout.write(f"{share['count']:>8}  {share['label']:<24} → {to}")
        if the_plan.unplaced:
            self.stdout.write(f"{the_plan.unplaced:>8}  records without a receiver")
        if dry_run:
            total = sum(s["count"] for s in the_plan.shares())
            self.stdout.write(f"dry run: {total} records would move")
            return
        try:
            record = handover.hand_over(source, deactivate=deactivate, **options)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"handed over: {record.total} records (hand-over #{record.pk})")

    @staticmethod
    def _user(username):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        return user

    @staticmethod
    def _pool(name):
        from loudou.leads.models import PublicPool

        if not name:
            return None
        pool = PublicPool.objects.filter(name=name).first()
        if pool is None:
            raise CommandError(f"No pool named {name!r}.")
        return pool
