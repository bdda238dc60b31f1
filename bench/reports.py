"""Benchmark: the funnel reports at scale (issue 4).

    .venv/bin/python -m bench.reports --opportunities 100000 1000000 --db sqlite postgres

For each database and size: an empty database, ``loudou generate --opportunities N
--seed 5`` (three years of history), then the funnel, per-rep, forecast and reverse
reports are timed in-process (the report functions the CLI, API and pages call), as an
admin who sees everything (the whole pipeline) and as a manager of a team (a filtered
scope, read through the opportunities), plus lead conversion by source and the breakdown
by region. The Monte Carlo of the forecast runs 2,000 simulations.
"""

import argparse
import json
import sys
from decimal import Decimal

from bench.common import database, run_child, setup_django, timed


def measure(args) -> None:
    setup_django()
    from bench.common import migrate_and_generate

    migrate_and_generate(opportunities=args.opportunities, seed=5)

    from django.utils import timezone

    from loudou.analytics import reports
    from loudou.analytics.periods import containing
    from loudou.analytics.queries import Scope
    from loudou.org.models import User
    from loudou.pipeline.models import Pipeline

    admin = User.objects.get(username="admin")
    pipeline = Pipeline.objects.get(template="dcba")
    scope = Scope(user=admin, pipeline=pipeline)
    quarter = containing("quarter", timezone.localdate())
    manager = User.objects.filter(role="manager").order_by("pk").first()
    team_scope = Scope(user=manager, pipeline=pipeline) if manager else None
    results = {
        "funnel": timed(lambda: reports.funnel_report(scope), runs=args.runs, warmup=1),
        "reps": timed(lambda: reports.reps_report(scope), runs=args.runs, warmup=1),
        "forecast": timed(
            lambda: reports.forecast_report(scope, quarter, target=Decimal(10**8)),
            runs=args.runs,
            warmup=1,
        ),  # fmt: skip
        "reverse": timed(
            lambda: reports.reverse_report(scope, Decimal(10**8)), runs=args.runs, warmup=1
        ),
        "leads": timed(lambda: reports.leads_report(scope), runs=args.runs, warmup=1),
        "breakdown": timed(
            lambda: reports.breakdown_report(scope, "region", quarter), runs=args.runs, warmup=1
        ),
    }
    if team_scope is not None:
        results["funnel (manager)"] = timed(
            lambda: reports.funnel_report(team_scope), runs=args.runs, warmup=1
        )
        results["forecast (manager)"] = timed(
            lambda: reports.forecast_report(team_scope, quarter, target=Decimal(10**8)),
            runs=args.runs, warmup=1,
        )  # fmt: skip
    print("RESULT " + json.dumps(results), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", type=int, nargs="+", default=[100_000])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.opportunities = args.opportunities[0]
        measure(args)
        return 0
    status = 0
    for size in args.opportunities:
        for kind in args.db:
            print(f"== {kind}: {size:,} opportunities", flush=True)
            with database(kind) as url:
                child = ["--child", "--opportunities", str(size), "--runs", str(args.runs)]
                status |= run_child("bench.reports", url, child)
    return status


if __name__ == "__main__":
    sys.exit(main())
