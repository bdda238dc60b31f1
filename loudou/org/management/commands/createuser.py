"""``loudou createuser USERNAME --role rep|manager|admin [--team T] [--region R]``."""

import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from loudou.org.models import Region, Role, Team
from loudou.org.services import create_user


class Command(BaseCommand):
    help = "Create a Loudou user with a role, team and region."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=Role.values, default=Role.REP)
        parser.add_argument("--name", default="", help="full name shown in the app")
        parser.add_argument("--email", default="")
        parser.add_argument("--team", help="team name")
        parser.add_argument("--region", help="region name")
        parser.add_argument(
            "--password", help="password (asked for when omitted and a terminal is attached)"
        )

    def handle(self, *args, username, role, name, email, team, region, password, **options):
        team_obj = self._lookup(Team, team, "team")
        region_obj = self._lookup(Region, region, "region")
        if password is None and options.get("interactive", True) and self.stdin_isatty():
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The passwords differ.")
        try:
            user = create_user(
                username, password=password, name=name, role=role, team=team_obj,
                region=region_obj, email=email,
            )  # fmt: skip
        except ValidationError as exc:
            errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(errors) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Created {user.username} ({user.get_role_display()}).")
        )

    @staticmethod
    def stdin_isatty():
        import sys

        return sys.stdin.isatty()

    @staticmethod
    def _lookup(model, name, label):
        if not name:
            return None
        obj = model.objects.filter(name=name).first()
        if obj is None:
            raise CommandError(f"No {label} named {name!r}.")
        return obj
