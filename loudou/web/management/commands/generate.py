"""``loudou generate --opportunities N --seed S``: a large synthetic data set for benchmarks.

Writes into the configured database, which should be empty (use a throwaway database:
``LOUDOU_DATABASE_URL=sqlite:///var/bench.sqlite3 loudou migrate && loudou generate ...``).
"""

import time
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from loudou.org.models import User
from loudou.testing.generate import generate


class Command(BaseCommand):
    help = "Generate a realistic organisation and N opportunities with years of history."

    def add_arguments(self, parser):
        parser.add_argument("--opportunities", type=int, required=True)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--years", type=int, default=3)
        parser.add_argument("--reps", type=int, help="number of reps (default: scales with N)")
        parser.add_argument(
            "--open-share", type=float, help="force this share of opportunities to be open"
        )
        parser.add_argument(
            "--now", type=datetime.fromisoformat,
            help="pretend today is this moment (ISO, e.g. 2026-06-30T12:00+08:00), for "
            "identical data sets",
        )  # fmt: skip

    def handle(self, *args, opportunities, seed, years, reps, open_share, now, **options):
        if User.objects.exists():
            raise CommandError("The database is not empty; generate into a fresh database.")
        started = time.monotonic()

        def progress(done, total):
            rate = done / max(time.monotonic() - started, 1e-6)
            self.stdout.write(f"\r{done:>10,}/{total:,} opportunities ({rate:,.0f}/s)", ending="")
            self.stdout.flush()

        result = generate(
            opportunities=opportunities, seed=seed, years=years, reps=reps,
            open_share=open_share, progress=progress, now=now,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"\nGenerated {result.opportunities:,} opportunities ({result.open:,} open), "
            f"{result.stage_changes:,} stage changes, {result.accounts:,} accounts, "
            f"{result.users:,} users in {elapsed:.1f} s. Password of every user: loudou-bench"
        )
