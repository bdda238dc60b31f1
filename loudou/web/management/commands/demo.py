"""``loudou demo``: load the demo data once (idempotent); ``--reset`` wipes and reloads."""

from django.core.management import call_command
from django.core.management.base import BaseCommand

from loudou.web.demo import DEMO_PASSWORD, demo_exists, demo_logins, load_demo


class Command(BaseCommand):
    help = "Load the demo organisation and data (once). --reset erases ALL data first."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset", action="store_true", help="erase every row in the database, then load"
        )

    def handle(self, *args, reset, **options):
        if reset:
            call_command("flush", interactive=False, verbosity=0)
        elif demo_exists():
            self.stdout.write("The demo data is already loaded; nothing to do (--reset reloads).")
            return
        self.stdout.write("Loading the demo organisation and a year of sales history (~20 s)…")
        load_demo()
        self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        self.stdout.write(f"Logins (password {DEMO_PASSWORD}):")
        for username, label in demo_logins():
            self.stdout.write(f"  {username:<12} {label}")
