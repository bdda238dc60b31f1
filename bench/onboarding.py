"""Benchmark: the onboarding team view (issue 8).

    .venv/bin/python -m bench.onboarding --reps 200 --activities 500000 --db sqlite postgres

For each database: an empty database; 200 reps hired over the last 400 days (every band, training
to graduated), 20 accounts and 10 opportunities each, a year quota each, and a year of
activities (bulk-inserted: the benchmark measures reading, not writing). Then the team
view an admin sees (``queries.team_summary``: every rep's band, weeks and goals) is timed
in-process, with its number of queries.
"""

import json
import random
import sys
import time
from datetime import timedelta
from decimal import Decimal

from bench.common import bench_main, setup_django
from bench.targets import timed_db as timed


def populate(args) -> None:
    from django.core.management import call_command
    from django.utils import timezone

    from loudou.activities.models import Activity
    from loudou.customers.models import Account
    from loudou.org.models import Role, Team, User
    from loudou.pipeline.models import Opportunity
    from loudou.pipeline.services import create_pipeline_from_template
    from loudou.targets.models import Target

    call_command("migrate", verbosity=0)
    if User.objects.filter(username="admin").exists():  # a kept database: measure it again
        return
    rng = random.Random(8)
    started = time.monotonic()
    today = timezone.localdate()
    team = Team.objects.create(name="Bench")
    User.objects.create(username="admin", role=Role.ADMIN, name="admin")
    reps = User.objects.bulk_create(
        User(username=f"rep{i}", name=f"rep{i}", role=Role.REP, team=team,
             hire_date=today - timedelta(days=rng.randrange(0, 400)))
        for i in range(args.reps)
    )  # fmt: skip
    reps = list(User.objects.filter(role=Role.REP))
    pipeline = create_pipeline_from_template("dcba")
    stages = list(pipeline.open_stages())
    accounts = Account.objects.bulk_create(
        Account(name=f"acc {r.pk}-{i}", owner=r, created_by=r) for r in reps for i in range(20)
    )
    by_owner = {}
    for a in Account.objects.all():
        by_owner.setdefault(a.owner_id, []).append(a)
    opps = []
    for r in reps:
        for i in range(10):
            stage = rng.choice(stages)
            won = rng.random() < 0.2
            opps.append(Opportunity(
                name=f"opp {r.pk}-{i}", account=rng.choice(by_owner[r.pk]), owner=r,
                pipeline=pipeline, stage=stage, furthest_stage=stage,
                status="won" if won else "open", amount=Decimal(rng.randrange(10, 500) * 1000),
                probability=100 if won else stage.default_probability,
                closed_at=timezone.now() - timedelta(days=rng.randrange(0, 200)) if won else None,
            ))  # fmt: skip
    Opportunity.objects.bulk_create(opps, batch_size=1000)
    Target.objects.bulk_create(
        Target(level="rep", user=r, measure="signed", period="year",
               start=today.replace(month=1, day=1), target=Decimal(2_000_000))
        for r in reps
    )  # fmt: skip
    kinds = ["call", "visit", "email", "wechat", "meeting", "research", "other"]
    purposes = ["prospecting", "follow_up", "service", "other"]
    now = timezone.now()
    batch = []
    for n in range(args.activities):
        r = reps[n % len(reps)]
        batch.append(Activity(
            owner=r, created_by=r, kind=rng.choice(kinds), purpose=rng.choice(purposes),
            occurred_at=now - timedelta(minutes=rng.randrange(0, 365 * 24 * 60)),
            duration_minutes=rng.choice([None, 15, 30, 60, 120]),
            account=rng.choice(by_owner[r.pk]),
        ))  # fmt: skip
        if len(batch) == 5000:
            Activity.objects.bulk_create(batch)
            batch = []
    Activity.objects.bulk_create(batch)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    took = time.monotonic() - started
    print(f"  generated {len(reps)} reps, {len(accounts)} accounts, {len(opps)} opportunities,"
          f" {args.activities} activities in {took:.1f} s", flush=True)  # fmt: skip


def measure(args) -> None:
    setup_django()
    populate(args)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from loudou.onboarding import queries
    from loudou.org.models import User

    admin = User.objects.get(username="admin")
    with CaptureQueriesContext(connection) as captured:
        summary = queries.team_summary(admin)
    results = {
        "team_view": timed(lambda: queries.team_summary(admin), runs=args.runs, warmup=1),
        "queries": len(captured.captured_queries),
        "onboarding": len(summary["onboarding"]),
        "graduated": len(summary["graduated"]),
        "one_rep": timed(
            lambda: queries.roadmap(User.objects.filter(role="rep").first()),
            runs=args.runs,
            warmup=1,
        ),  # fmt: skip
    }
    print("RESULT " + json.dumps(results), flush=True)


def main(argv=None) -> int:
    options = {"reps": 200, "activities": 500_000, "runs": 10}
    header = "{reps} reps, {activities:,} activities"
    return bench_main("bench.onboarding", __doc__, options, measure, header, argv)


if __name__ == "__main__":
    sys.exit(main())
