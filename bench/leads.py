"""Benchmark: the pool recycle sweep over 1,000,000 leads, and assigning 100,000 new
leads through the assignment rules.

    .venv/bin/python -m bench.leads --leads 1000000 --assign 100000 --db sqlite

For each database: an empty, migrated database; 100 reps in 4 regions; a pool per region
with a 30-day "no follow-up" rule warning 3 days ahead; ``--leads`` owned open leads
(one INSERT per 5,000 rows through the cursor), owned since a uniformly random moment of
the last 40 days and untouched since (so about a quarter are due and a tenth of the rest
are inside the warning window). Timed: the first sweep (recycles and warns the backlog),
the second sweep at the same moment (finds nothing: the idempotent steady state), and a
dry run. Then ``--assign`` new unowned leads are inserted and given out by
``assignment.assign_many`` (round robin in two regions, least load in one, a pool for
the rest) — loading the rows, deciding, writing owners and history, notifying.
"""

import json
import random
import sys
import time

from bench.common import bench_main, setup_django

REGIONS = ("华东区", "华南区", "华北区", "西部区")


def build_org(reps: int):
    from loudou.leads.models import AssignmentRule, PublicPool, RecycleRule
    from loudou.org.models import Region, Role, Team, User

    team = Team.objects.create(name="销售部")
    regions = [Region.objects.create(name=name) for name in REGIONS]
    users = User.objects.bulk_create(
        User(username=f"rep{i}", name=f"rep{i}", role=Role.REP, team=team,
             region=regions[i % len(regions)], password="!")
        for i in range(reps)
    )  # fmt: skip
    pools = []
    for region in regions:
        pool = PublicPool.objects.create(name=f"{region.name}公海", reclaim_block_days=7)
        pool.regions.set([region])
        RecycleRule.objects.create(name=f"{region.name}30天未跟进", pool=pool,
                                   kind="no_follow_up", days=30, warn_days_before=3)  # fmt: skip
        pools.append(pool)
    by_region = {r.pk: [u for u in users if u.region_id == r.pk] for r in regions}
    for i, (region, method) in enumerate(
        zip(regions[:3], ("round_robin", "round_robin", "least_open_load"), strict=True)
    ):
        rule = AssignmentRule.objects.create(position=i, name=f"r{i}", region=region,
                                             method=method)  # fmt: skip
        rule.reps.set(by_region[region.pk])
    AssignmentRule.objects.create(position=9, name="rest", method="pool", pool=pools[3])
    return regions, users


def insert_leads(n: int, *, regions, users, seed: int, owned: bool) -> float:
    """Insert ``n`` leads through the cursor; owned ones are owned since a random moment
    of the last 40 days and untouched since. Returns the seconds it took."""
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from loudou.leads.models import Lead

    rng = random.Random(seed)
    now = timezone.now()
    span = 40 * 24 * 3600
    columns = [
        "created_at", "updated_at", "version", "name", "company", "title", "mobile", "phone",
        "email", "wechat", "source", "industry", "status", "disqualified_reason", "notes",
        "mobile_key", "email_key", "company_key", "region_id", "owner_id", "owned_since",
    ]  # fmt: skip
    adapt = connection.ops.adapt_datetimefield_value
    table = Lead._meta.db_table
    batch = 5000
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        for offset in range(0, n, batch):
            rows = []
            for i in range(offset, min(offset + batch, n)):
                owner = rng.choice(users) if owned else None
                region = owner.region_id if owner else rng.choice(regions).pk
                when = now - timedelta(seconds=rng.randrange(span)) if owned else now
                mobile = f"139{i:08d}"
                rows.append((
                    adapt(when), adapt(when), 1, f"客户{i}", f"公司{i}", "", mobile, "", "", "",
                    "website", "制造", "new", "", "", mobile, "", f"公司{i}", region,
                    owner.pk if owner else None, adapt(when) if owned else None,
                ))  # fmt: skip
            placeholders = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(rows))
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES {placeholders}",
                [v for row in rows for v in row],
            )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}" if connection.vendor == "postgresql" else "ANALYZE")
    return time.monotonic() - started


def measure(args) -> None:
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from django.utils import timezone

    from loudou.leads import assignment, services
    from loudou.leads.models import Lead, PoolEvent
    from loudou.notifications.models import Notification

    regions, users = build_org(args.reps)
    seconds = insert_leads(args.leads, regions=regions, users=users, seed=5, owned=True)
    print(f"  {args.leads:,} owned leads inserted in {seconds:.1f} s", flush=True)
    now = timezone.now()

    def clock(fn):
        started, cpu = time.perf_counter(), time.process_time()
        result = fn()
        return result, round(time.perf_counter() - started, 2), round(time.process_time() - cpu, 2)

    dry, dry_s, dry_cpu = clock(lambda: services.sweep(now=now, dry_run=True))
    first, first_s, first_cpu = clock(lambda: services.sweep(now=now))
    second, second_s, second_cpu = clock(lambda: services.sweep(now=now))
    print(f"  first sweep {first_s} s: recycled {first.recycled:,}, warned {first.warned:,}",
          flush=True)  # fmt: skip

    insert_leads(args.assign, regions=regions, users=users, seed=6, owned=False)
    new = Lead.objects.filter(owner__isnull=True, pool__isnull=True)
    decisions, assign_s, assign_cpu = clock(lambda: assignment.assign_many(new))
    results = {
        "leads": args.leads,
        "reps": args.reps,
        "sweep_dry_run_s": dry_s, "sweep_dry_run_cpu_s": dry_cpu,
        "sweep_first_s": first_s, "sweep_first_cpu_s": first_cpu,
        "recycled": first.recycled, "warned": first.warned,
        "dry_run_counts": [dry.recycled, dry.warned],
        "sweep_second_s": second_s, "sweep_second_cpu_s": second_cpu,
        "second_changes": [second.recycled, second.warned],
        "recycle_events": PoolEvent.objects.filter(kind="recycle").count(),
        "notifications": Notification.objects.count(),
        "assigned": sum(1 for d in decisions if d.decided),
        "assign_s": assign_s, "assign_cpu_s": assign_cpu,
        "assign_per_s": round(len(decisions) / assign_s) if assign_s else None,
    }  # fmt: skip
    print("RESULT " + json.dumps(results), flush=True)


def main(argv=None) -> int:
    options = {"leads": 1_000_000, "assign": 100_000, "reps": 100}
    header = "{leads:,} leads, {assign:,} to assign"
    return bench_main("bench.leads", __doc__, options, measure, header, argv)


if __name__ == "__main__":
    sys.exit(main())
