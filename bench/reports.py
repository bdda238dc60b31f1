"""Benchmark: the funnel reports at scale (issue 4).

    .venv/bin/python -m bench.reports --opportunities 100000 1000000 --db sqlite postgres
    .venv/bin/python -m bench.reports --url sqlite:////tmp/big.sqlite3 --runs 7

``--url`` measures a database that already holds a generated data set (migrated to the
current schema first; the maintained summaries are rebuilt and that rebuild is timed), so
that several versions of the code can be measured on the same data.

For each database and size: an empty database, ``loudou generate --opportunities N
--seed 5`` (three years of history), then the funnel, per-rep, forecast and reverse
reports are timed in-process (the report functions the CLI, API and pages call), as an
admin who sees everything (the whole pipeline) and as a manager of a team (a filtered
scope, read through the opportunities), plus lead conversion by source, the breakdown of
the quarter by each dimension and the dashboard's headline. The Monte Carlo of the
forecast runs 2,000 simulations.
"""

import argparse
import json
import sys
from decimal import Decimal

from bench.common import database, run_child, setup_django, timed


def _rebuild() -> None:
    """Bring the maintained summaries up to date, timed (code before them has none)."""
    import time

    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    try:
        from loudou.pipeline import summaries
    except ImportError:
        return
    started, cpu = time.perf_counter(), time.process_time()
    summaries.ensure_fresh()
    print(f"  summaries rebuilt in {time.perf_counter() - started:.1f} s "
          f"({time.process_time() - cpu:.1f} s CPU)", flush=True)  # fmt: skip


def measure(args) -> None:
    setup_django()
    from bench.common import migrate_and_generate

    if args.existing:
        _rebuild()
    else:
        migrate_and_generate(opportunities=args.opportunities, seed=5)

    from django.utils import timezone

    from loudou.analytics import reports
    from loudou.analytics.periods import containing
    from loudou.analytics.queries import Scope
    from loudou.analytics.views import dashboard_summary
    from loudou.org.models import User
    from loudou.pipeline.models import Pipeline

    if args.every:
        _every(args.runs, args.only)
        return
    admin = User.objects.get(username="admin")
    pipeline = Pipeline.objects.get(template="dcba")
    scope = Scope(user=admin, pipeline=pipeline)
    quarter = containing("quarter", timezone.localdate())
    manager = User.objects.filter(role="manager").order_by("pk").first()
    team_scope = Scope(user=manager, pipeline=pipeline) if manager else None
    rep = User.objects.filter(role="rep").order_by("pk").first()
    rep_scope = Scope(user=rep, pipeline=pipeline) if rep else None
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
        **{
            ("breakdown" if dim == "region" else f"breakdown ({dim})"): timed(
                lambda dim=dim: reports.breakdown_report(scope, dim, quarter),
                runs=args.runs,
                warmup=1,
            )
            for dim in reports.DIMENSIONS
        },  # fmt: skip
        "dashboard": timed(lambda: dashboard_summary(admin), runs=args.runs, warmup=1),
    }
    if team_scope is not None:
        results["funnel (manager)"] = timed(
            lambda: reports.funnel_report(team_scope), runs=args.runs, warmup=1
        )
        results["forecast (manager)"] = timed(
            lambda: reports.forecast_report(team_scope, quarter, target=Decimal(10**8)),
            runs=args.runs, warmup=1,
        )  # fmt: skip
        results["reps (manager)"] = timed(
            lambda: reports.reps_report(team_scope), runs=args.runs, warmup=1
        )
        results["dashboard (manager)"] = timed(
            lambda: dashboard_summary(manager), runs=args.runs, warmup=1
        )
    if rep_scope is not None:
        results["funnel (rep)"] = timed(
            lambda: reports.funnel_report(rep_scope), runs=args.runs, warmup=1
        )
        results["forecast (rep)"] = timed(
            lambda: reports.forecast_report(rep_scope, quarter, target=Decimal(10**8)),
            runs=args.runs, warmup=1,
        )  # fmt: skip
    if not args.no_backtest:
        results["backtest (4 quarters)"] = timed(
            lambda: reports.backtest(scope, reports.last_periods("quarter", 4), runs=1000),
            runs=max(1, args.runs // 3), warmup=0,
        )  # fmt: skip
    for name, row in results.items():
        print(f"  {name:26} median {row['median']:8.1f} ms  p95 {row['p95']:8.1f}  "
              f"cpu {row['cpu_median']:8.1f}", flush=True)  # fmt: skip
    print("RESULT " + json.dumps(results), flush=True)


def _every(runs: int, only: str | None = None) -> None:
    """Every report the analytics pages and API serve (funnel, per rep, forecast,
    reverse, lead conversion by source, the quarter's and last year's breakdown by each
    dimension, the dashboard's headline) as the admin, the first manager and the first
    rep: median wall and CPU of this process, and on PostgreSQL the server backend's CPU
    (parallel workers' not included), each over ``runs`` calls after one warm-up.
    ``only``: a regular expression that "report, viewer" must match."""
    import re
    import statistics
    import time

    from django.utils import timezone

    from bench.common import server_cpu, server_cpu_between
    from loudou.analytics import reports
    from loudou.analytics.periods import containing
    from loudou.analytics.queries import Scope
    from loudou.analytics.views import dashboard_summary
    from loudou.org.models import User
    from loudou.pipeline.models import Pipeline

    pipeline = Pipeline.objects.get(template="dcba")
    quarter = containing("quarter", timezone.localdate())
    last_year = containing("year", timezone.localdate()).previous()
    viewers = [("admin", User.objects.get(username="admin")),
               ("manager", User.objects.filter(role="manager").order_by("pk").first()),
               ("rep", User.objects.filter(role="rep").order_by("pk").first())]  # fmt: skip
    for who, user in viewers:
        scope = Scope(user=user, pipeline=pipeline)
        todo = {
            "funnel": lambda scope=scope: reports.funnel_report(scope),
            "per rep": lambda scope=scope: reports.reps_report(scope),
            "forecast": lambda scope=scope: reports.forecast_report(scope, quarter,
                                                                    target=Decimal(10**8)),
            "reverse": lambda scope=scope: reports.reverse_report(scope, Decimal(10**8)),
            "lead conversion": lambda scope=scope: reports.leads_report(scope),
            **{f"breakdown {dim}": (lambda scope=scope, dim=dim:
                                    reports.breakdown_report(scope, dim, quarter))
               for dim in reports.DIMENSIONS},
            **{f"breakdown {dim} (year)": (lambda scope=scope, dim=dim:
                                           reports.breakdown_report(scope, dim, last_year))
               for dim in reports.DIMENSIONS},
            "dashboard": lambda user=user: dashboard_summary(user),
        }  # fmt: skip
        for name, fn in todo.items():
            if only and not re.search(only, f"{name}, {who}"):
                continue
            fn()
            wall, cpu, server = [], [], []
            for _ in range(runs):
                s0, c0, w0 = server_cpu(), time.process_time(), time.perf_counter()
                fn()
                wall.append((time.perf_counter() - w0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                spent = server_cpu_between(s0, server_cpu())
                server.append((spent or 0) * 1000)
            m = statistics.median
            print(f"  {name + ', ' + who:28} wall {m(wall):7.1f} ms  cpu {m(cpu):7.1f}  "
                  f"server {m(server):7.1f}", flush=True)  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", type=int, nargs="+", default=[100_000])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--url", help="measure this database (already generated)")
    parser.add_argument("--no-backtest", action="store_true",
                        help="leave out the backtest (a minute or more at 1,000,000)")  # fmt: skip
    parser.add_argument("--every", action="store_true",
                        help="every report as the admin, a manager and a rep, with the "
                        "PostgreSQL server's CPU")  # fmt: skip
    parser.add_argument("--only", help="with --every: only the reports whose 'report, viewer' "
                        "matches this regular expression")  # fmt: skip
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--existing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.opportunities = args.opportunities[0]
        measure(args)
        return 0
    if args.url:
        print(f"== {args.url}", flush=True)
        child = ["--child", "--existing", "--runs", str(args.runs)]
        child += ["--no-backtest"] if args.no_backtest else []
        child += ["--every"] if args.every else []
        child += ["--only", args.only] if args.only else []
        return run_child("bench.reports", args.url, child)
    status = 0
    for size in args.opportunities:
        for kind in args.db:
            print(f"== {kind}: {size:,} opportunities", flush=True)
            with database(kind) as url:
                child = ["--child", "--opportunities", str(size), "--runs", str(args.runs)]
                child += ["--no-backtest"] if args.no_backtest else []
                child += ["--every"] if args.every else []
                status |= run_child("bench.reports", url, child)
    return status


if __name__ == "__main__":
    sys.exit(main())
