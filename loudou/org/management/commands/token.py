"""``loudou token create USERNAME`` prints a new API token; ``list`` and ``revoke`` too."""

from django.core.management.base import BaseCommand, CommandError

from loudou.org.models import ApiToken, User
from loudou.org.services import create_token, revoke_token


class Command(BaseCommand):
    help = "Manage API tokens: create USERNAME | list USERNAME | revoke HINT"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="print a new token for USERNAME")
        create.add_argument("username")
        create.add_argument("--name", default="", help="what the token is for")
        listing = sub.add_parser("list", help="list a user's tokens (hints only)")
        listing.add_argument("username")
        revoke = sub.add_parser("revoke", help="revoke the token whose hint is given")
        revoke.add_argument("hint")

    def handle(self, *args, action, **options):
        if action == "create":
            user = self._user(options["username"])
            _token, key = create_token(user, name=options["name"])
            self.stdout.write(key)
        elif action == "list":
            user = self._user(options["username"])
            for token in user.api_tokens.all():
                state = "revoked" if token.revoked_at else "active"
                self.stdout.write(f"{token.hint}…  {state:8} {token.name}")
        else:
            tokens = ApiToken.objects.filter(hint__startswith=options["hint"], revoked_at=None)
            if tokens.count() != 1:
                raise CommandError("The hint must match exactly one active token.")
            revoke_token(tokens.get())
            self.stdout.write("Revoked.")

    @staticmethod
    def _user(username):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if not user.is_active:
            raise CommandError(f"{username} is deactivated.")
        return user
