"""Benchmark: the performance list (issue 8) for 200 reps over a year.

    .venv/bin/python -m bench.targets --opportunities 100000 --reps 200 --db sqlite

For each database: an empty database, ``loudou generate --opportunities N --reps R
--years 1 --seed 8``, then a target per rep and month for the year (bulk insert) and one
standard per level; then the performance list for the whole year, per rep and per team,
and the year grid of the company, are timed in-process as an admin (the functions the
page, the API and the CLI call). Query counts are printed too: they do not depend on N.
"""

import json
import statistics
import sys
import time

from bench.common import bench_main, server_cpu, server_cpu_between, setup_django, timed


def timed_db(fn, *, runs: int, warmup: int = 1) -> dict:
    """:func:`bench.common.timed` plus ``db_median``: the median wall time spent inside
    the database driver's ``execute`` per call (on PostgreSQL the server's work and the
    round trips, which ``cpu_median`` leaves out; on SQLite part of ``cpu_median``),
    ``queries``, the number of queries of one call, and on PostgreSQL ``server_cpu_median``:
    the CPU time of the server process per call, which a busy machine does not inflate
    (so ``cpu_median + server_cpu_median`` is the whole work of a call)."""
    from django.db import connection

    per_call: list[tuple[float, int, float | None]] = []

    def call():
        spent, count = [0.0], [0]

        def wrapper(execute, sql, params, many, context):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                spent[0] += time.perf_counter() - started
                count[0] += 1

        before = server_cpu()
        with connection.execute_wrapper(wrapper):
            fn()
        server = server_cpu_between(before, server_cpu())
        server = None if server is None else server * 1000
        per_call.append((spent[0] * 1000, count[0], server))

    result = timed(call, runs=runs, warmup=warmup)
    measured = per_call[warmup:]
    result["db_median"] = round(statistics.median(ms for ms, _n, _s in measured), 1)
    result["queries"] = measured[-1][1]
    server = [s for _ms, _n, s in measured if s is not None]
    if server:
        result["server_cpu_median"] = round(statistics.median(server), 1)
    return result


def measure(args) -> None:
    setup_django()
    from django.core.management import call_command

    from bench.common import migrate_and_generate
    from loudou.org.models import User

    call_command("migrate", verbosity=0)
    populated = User.objects.exists()  # a kept database (``--child`` run again): measure it
    if not populated:
        migrate_and_generate(opportunities=args.opportunities, reps=args.reps, years=1, seed=8)

    from datetime import date
    from decimal import Decimal

    from django.utils import timezone

    from loudou.analytics.periods import containing
    from loudou.targets import performance
    from loudou.targets.models import Standard, Target
    from loudou.targets.progress import Owner
    from loudou.targets.views import grid_rows

    year = timezone.localdate().year
    reps = list(User.objects.filter(team__isnull=False, role="rep"))
    if not populated:
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

    def by_rep():
        return performance.build_report(admin, period, group="rep")

    def by_team():
        return performance.build_report(admin, period, group="team")

    def grid():
        return grid_rows(Owner("company"), year, editable=False)

    results = {
        "reps": len(reps),
        "performance_by_rep": timed_db(by_rep, runs=args.runs),
        "performance_by_team": timed_db(by_team, runs=args.runs),
        "year_grid_company": timed_db(grid, runs=args.runs),
    }
    print("RESULT " + json.dumps(results), flush=True)


def main(argv=None) -> int:
    options = {"opportunities": 100_000, "reps": 200, "runs": 5}
    header = "{opportunities:,} opportunities, {reps} reps"
    return bench_main("bench.targets", __doc__, options, measure, header, argv)


if __name__ == "__main__":
    sys.exit(main())
