"""Benchmark: the pool recycle sweep over 1,000,000 leads and accounts, and assigning
100,000 new leads through the assignment rules.

    .venv/bin/python -m bench.leads --leads 900000 --accounts 100000 --assign 100000 \
        --db sqlite postgres

For each database: an empty, migrated database; 100 reps in 4 regions; a pool per region
with a 30-day "no follow-up" rule for leads and a 60-day "no follow-up" rule for
accounts, both warning 3 days ahead; ``--leads`` owned open leads (one INSERT per 5,000
rows through the cursor), owned since a uniformly random moment of the last 40 days and
untouched since (so about a quarter are due and 7.5 % are inside the warning window);
``--accounts`` owned accounts created a uniformly random moment of the last 80 days ago
(a quarter due, 3.75 % to warn). Timed: a dry run; the first sweep (recycles and warns
the whole backlog at once: the day a rule is switched on); the same sweep again (finds
nothing: idempotent); and the hourly sweep an hour later (what the scheduler does every
hour once the backlog is gone: the records that became due or warnable in that hour).
Then ``--assign`` new unowned leads are inserted and given out by
``assignment.assign_many`` (round robin in two regions, least load in one, a pool for
the rest) — loading the rows, deciding, writing owners and history, notifying.
Each figure is wall and CPU seconds of this process; on PostgreSQL also the CPU seconds
of the server process that ran the statements (``server_cpu_s``, read from /proc).
"""

import json
import random
import sys
import time

from bench.common import bench_main, server_cpu, server_cpu_between, setup_django

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
        RecycleRule.objects.create(name=f"{region.name}客户60天未跟进", pool=pool,
                                   applies_to="accounts", kind="no_follow_up", days=60,
                                   warn_days_before=3)  # fmt: skip
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


def insert_accounts(n: int, *, users, seed: int) -> float:
    """Insert ``n`` owned accounts, created a random moment of the last 80 days."""
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from loudou.core.db import insert_rows
    from loudou.customers.models import Account

    rng = random.Random(seed)
    now = timezone.now()
    span = 80 * 24 * 3600
    started = time.monotonic()
    with transaction.atomic():
        for offset in range(0, n, 5000):
            rows = []
            for i in range(offset, min(offset + 5000, n)):
                owner = rng.choice(users)
                when = now - timedelta(seconds=rng.randrange(span))
                rows.append({"name": f"客户公司{i}", "name_key": f"客户公司{i}",
                             "owner_id": owner.pk, "region_id": owner.region_id,
                             "created_at": when, "updated_at": when, "version": 1})  # fmt: skip
            insert_rows(Account, rows)
    with connection.cursor() as cursor:
        table = Account._meta.db_table
        cursor.execute(f"ANALYZE {table}" if connection.vendor == "postgresql" else "ANALYZE")
    return time.monotonic() - started


def measure(args) -> None:
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from datetime import timedelta

    from django.db import connection
    from django.urls import reverse
    from django.utils import timezone

    from loudou.leads import assignment, services
    from loudou.leads.models import Lead, PoolEvent
    from loudou.notifications.models import Notification

    regions, users = build_org(args.reps)
    seconds = insert_leads(args.leads, regions=regions, users=users, seed=5, owned=True)
    print(f"  {args.leads:,} owned leads inserted in {seconds:.1f} s", flush=True)
    if args.accounts:
        seconds = insert_accounts(args.accounts, users=users, seed=7)
        print(f"  {args.accounts:,} owned accounts inserted in {seconds:.1f} s", flush=True)
    now = timezone.now()
    # Load the URL configuration (and the API schemas it imports) as a running worker
    # has: the sweep's notifications reverse() their links, and the first reverse() of
    # a process costs seconds that belong to start-up, not to the sweep.
    reverse("leads:leads")

    server = {}

    def clock(fn):
        started, cpu, before = time.perf_counter(), time.process_time(), server_cpu()
        result = fn()
        spent = server_cpu_between(before, server_cpu())
        if spent is not None:
            server[fn] = round(spent, 2)
        return result, round(time.perf_counter() - started, 2), round(time.process_time() - cpu, 2)

    runs = {
        "dry_run": lambda: services.sweep(now=now, dry_run=True),
        "first": lambda: services.sweep(now=now),
        "second": lambda: services.sweep(now=now),
        "hourly": lambda: services.sweep(now=now + timedelta(hours=1)),
    }
    dry, dry_s, dry_cpu = clock(runs["dry_run"])
    first, first_s, first_cpu = clock(runs["first"])
    second, second_s, second_cpu = clock(runs["second"])
    hourly, hourly_s, hourly_cpu = clock(runs["hourly"])
    print(f"  first sweep {first_s} s ({first_cpu} CPU, server {server.get(runs['first'])}): "
          f"recycled {first.recycled:,}, warned {first.warned:,}; hourly {hourly_s} s "
          f"({hourly_cpu} CPU, server {server.get(runs['hourly'])}): recycled "
          f"{hourly.recycled:,}, warned {hourly.warned:,}", flush=True)  # fmt: skip

    insert_leads(args.assign, regions=regions, users=users, seed=6, owned=False)
    new = Lead.objects.filter(owner__isnull=True, pool__isnull=True)
    decisions, assign_s, assign_cpu = clock(lambda: assignment.assign_many(new))
    results = {
        "leads": args.leads, "accounts": args.accounts, "vendor": connection.vendor,
        "reps": args.reps,
        "sweep_dry_run_s": dry_s, "sweep_dry_run_cpu_s": dry_cpu,
        "sweep_first_s": first_s, "sweep_first_cpu_s": first_cpu,
        "recycled": first.recycled, "warned": first.warned,
        "dry_run_counts": [dry.recycled, dry.warned],
        "sweep_second_s": second_s, "sweep_second_cpu_s": second_cpu,
        "second_changes": [second.recycled, second.warned],
        "sweep_hourly_s": hourly_s, "sweep_hourly_cpu_s": hourly_cpu,
        "hourly_changes": [hourly.recycled, hourly.warned],
        "accounts_recycled": sum(o.recycled for o in first.outcomes if o.applies_to == "accounts"),
        "recycle_events": PoolEvent.objects.filter(kind="recycle").count(),
        "notifications": Notification.objects.count(),
        "assigned": sum(1 for d in decisions if d.decided),
        "assign_s": assign_s, "assign_cpu_s": assign_cpu,
        "assign_per_s": round(len(decisions) / assign_s) if assign_s else None,
        "assign_per_cpu_s": round(len(decisions) / assign_cpu) if assign_cpu else None,
        "server_cpu_s": {name: server.get(fn) for name, fn in runs.items()},
    }  # fmt: skip
    print("RESULT " + json.dumps(results), flush=True)


def main(argv=None) -> int:
    options = {"leads": 900_000, "accounts": 100_000, "assign": 100_000, "reps": 100}
    header = "{leads:,} leads, {accounts:,} accounts, {assign:,} to assign"
    return bench_main("bench.leads", __doc__, options, measure, header, argv)


if __name__ == "__main__":
    sys.exit(main())
