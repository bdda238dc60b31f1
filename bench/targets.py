"""Benchmark: the performance list (issue 8) for 200 reps over a year.

    .venv/bin/python -m bench.targets --opportunities 100000 --reps 200 --db sqlite

For each database: an empty database, ``loudou generate --opportunities N --reps R
--years 1 --seed 8``, then a target per rep and month for the year (bulk insert) and one
standard per level; then the performance list for the whole year, per rep and per team,
and the year grid of the company, are timed in-process as an admin (the functions the
page, the API and the CLI call). Query counts are printed too: they do not depend on N.
"""

import json
import sys

from bench.common import bench_main, setup_django, timed


def measure(args) -> None:
    setup_django()
    from bench.common import migrate_and_generate

    migrate_and_generate(opportunities=args.opportunities, reps=args.reps, years=1, seed=8)

    from datetime import date
    from decimal import Decimal

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from loudou.analytics.periods import containing
    from loudou.org.models import User
    from loudou.targets import performance
    from loudou.targets.models import Standard, Target
    from loudou.targets.progress import Owner
    from loudou.targets.views import grid_rows

    year = timezone.localdate().year
    reps = list(User.objects.filter(team__isnull=False, role="rep"))
    Target.objects.bulk_create(
        Target(level="rep", user=r, measure="signed", period="month", start=date(year, m, 1),
               target=Decimal(100000), stretch=Decimal(120000), challenge=Decimal(150000))
        for r in reps for m in range(1, 13)
    )  # fmt: skip
    for level in ("trainee", "junior", "senior"):
        Standard.objects.create(measure="visits", period="month", level=level, minimum=20)
    Standard.objects.create(measure="won_count", period="quarter", minimum=2)
    admin = User.objects.get(username="admin")
    period = containing("year", timezone.localdate())

    def count(fn):
        with CaptureQueriesContext(connection) as ctx:
            fn()
        return len(ctx.captured_queries)

    def by_rep():
        return performance.build_report(admin, period, group="rep")

    def by_team():
        return performance.build_report(admin, period, group="team")

    def grid():
        return grid_rows(Owner("company"), year, editable=False)

    results = {
        "reps": len(reps),
        "performance_by_rep": {**timed(by_rep, runs=args.runs, warmup=1), "queries": count(by_rep)},
        "performance_by_team": {**timed(by_team, runs=args.runs, warmup=1),
                                "queries": count(by_team)},
        "year_grid_company": {**timed(grid, runs=args.runs, warmup=1), "queries": count(grid)},
    }  # fmt: skip
    print("RESULT " + json.dumps(results), flush=True)


def main(argv=None) -> int:
    options = {"opportunities": 100_000, "reps": 200, "runs": 5}
    header = "{opportunities:,} opportunities, {reps} reps"
    return bench_main("bench.targets", __doc__, options, measure, header, argv)


if __name__ == "__main__":
    sys.exit(main())
