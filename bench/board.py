"""Benchmark: the pipeline board and the 50-row opportunity API list (issue 3).

    .venv/bin/python -m bench.board --opportunities 100000 --db sqlite postgres

For each database: an empty database, ``loudou generate`` with N opportunities that are
all (nearly) open, then the server side of each request is timed in-process with
Django's test client as an admin who sees everything (the heaviest scope): the board page
(column totals), one lazy column (30 cards) and ``GET /api/v1/opportunities?limit=50``.
"""

import argparse
import json
import sys

from bench.common import database, run_child, setup_django, timed


def measure(args) -> None:
    setup_django()
    from django.test import Client

    from bench.common import migrate_and_generate
    from loudou.org.models import User
    from loudou.pipeline.models import Opportunity, Pipeline

    migrate_and_generate(opportunities=args.opportunities, seed=7, open_share=1.0)
    admin = User.objects.get(username="admin")
    client = Client()
    client.force_login(admin)
    pipeline = Pipeline.objects.get(template="dcba")
    stage = pipeline.open_stages().first()
    open_count = Opportunity.objects.filter(status="open").count()
    in_column = Opportunity.objects.filter(status="open", stage=stage).count()

    def get(url):
        def call():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        return call

    results = {
        "open_opportunities": open_count,
        "first_column_cards": in_column,
        "board_page": timed(get(f"/pipeline/board/{pipeline.pk}/"), runs=args.runs),
        "board_column": timed(
            get(f"/pipeline/board/{pipeline.pk}/column/{stage.pk}/"), runs=args.runs
        ),
        "api_list_50": timed(get("/api/v1/opportunities?limit=50&status=open"), runs=args.runs),
    }
    print("RESULT " + json.dumps(results), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        measure(args)
        return 0
    status = 0
    for kind in args.db:
        print(f"== {kind}: {args.opportunities:,} opportunities", flush=True)
        with database(kind) as url:
            child_args = ["--child", "--opportunities", str(args.opportunities)]
            status |= run_child("bench.board", url, [*child_args, "--runs", str(args.runs)])
    return status


if __name__ == "__main__":
    sys.exit(main())
