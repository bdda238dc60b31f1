"""``loudou export DIR``: every account, contact, lead, opportunity and its stage history
in the native import layout (docs/import.md), for a backup or a move to another instance.
"""

from django.core.management.base import BaseCommand, CommandError

from loudou.imports.export import export_all
from loudou.org.models import Role, User


class Command(BaseCommand):
    help = "Export all data (native layout CSV files) into a folder."

    def add_arguments(self, parser):
        parser.add_argument("folder")
        parser.add_argument("--user", help="run as this admin (default: the first admin)")

    def handle(self, *args, folder, user, **options):
        admins = User.objects.filter(is_active=True, role=Role.ADMIN).order_by("pk")
        actor = admins.filter(username=user).first() if user else admins.first()
        if actor is None:
            raise CommandError("No such active administrator; give --user USERNAME.")
        for name, path in export_all(folder, actor=actor).items():
            self.stdout.write(f"{name}: {path}")
