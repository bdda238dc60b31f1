"""``loudou generate --opportunities N --seed S [--leads M]``: a large synthetic data set
for benchmarks.

Writes into the configured database, which should be empty (use a throwaway database:
``LOUDOU_DATABASE_URL=sqlite:///var/bench.sqlite3 loudou migrate && loudou generate ...``).
With ``--leads M`` alone (no ``--opportunities``) it adds M leads to a data set generated
before (a copy of it: the leads are new rows, nothing else changes but the lead counts).
"""

import time
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from loudou.org.models import User
from loudou.testing.generate import generate, generate_leads


class Command(BaseCommand):
    help = "Generate a realistic organisation and N opportunities with years of history."

    def add_arguments(self, parser):
        parser.add_argument("--opportunities", type=int)
        parser.add_argument(
            "--leads", type=int,
            help="leads to write (default: as many as opportunities; 30%% of them converted "
            "into one, 10%% in public pools). Without --opportunities: add them to the "
            "data set already in the database",
        )  # fmt: skip
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

    def handle(self, *args, opportunities, seed, years, reps, open_share, now, leads=None,
               **options):  # fmt: skip
        started = time.monotonic()

        def progress(done, total, what="opportunities"):
            rate = done / max(time.monotonic() - started, 1e-6)
            self.stdout.write(f"\r{done:>10,}/{total:,} {what} ({rate:,.0f}/s)", ending="")
            self.stdout.flush()

        def lead_progress(done, total):
            progress(done, total, "leads")

        if opportunities is None:
            if leads is None or not User.objects.exists():
                raise CommandError("Give --opportunities N (or --leads M to add leads to a "
                                   "generated data set).")  # fmt: skip
            made = generate_leads(leads=leads, seed=seed, years=years, now=now,
                                  progress=lead_progress)  # fmt: skip
            self.stdout.write(self._leads_line(made, time.monotonic() - started))
            return
        if User.objects.exists():
            raise CommandError("The database is not empty; generate into a fresh database.")

        result = generate(
            opportunities=opportunities, seed=seed, years=years, reps=reps,
            open_share=open_share, progress=progress, now=now,
        )  # fmt: skip
        made = generate_leads(leads=opportunities if leads is None else leads, seed=seed,
                              years=years, now=now, progress=lead_progress)  # fmt: skip
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"\nGenerated {result.opportunities:,} opportunities ({result.open:,} open), "
            f"{result.stage_changes:,} stage changes, {result.accounts:,} accounts, "
            f"{result.users:,} users, {made.leads:,} leads in {elapsed:.1f} s. "
            "Password of every user: loudou-bench"
        )

    @staticmethod
    def _leads_line(made, elapsed) -> str:
        return (f"\nAdded {made.leads:,} leads ({made.converted:,} converted, {made.pooled:,} in "
                f"{made.pools} public pools) in {elapsed:.1f} s.")  # fmt: skip
