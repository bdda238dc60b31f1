"""Benchmark: the follow-up rule sweep over 100,000 × scale accounts and as many
opportunities with 1,000,000 × scale activities (``--scale 10``: 1,000,000 and
10,000,000).

    .venv/bin/python -m bench.rules_sweep --scale 1 --db sqlite postgres
    .venv/bin/python -m bench.rules_sweep --scale 10 --db postgres

For each database: an empty, migrated database with the shipped rules; 200 reps in 4
teams with a manager each; the D/C/B/A pipeline; ``100,000 × scale`` owned accounts
(grades D/C/B/A/成交/none in turn, one in fifty with a revisit interval, one in five
hundred with a company anniversary this week), one opportunity each (70 % open, in the
four open stages, entered up to 90 days ago), ``scale × 10,000`` leads that arrived in the
last 30 days, ``scale × 50,000`` contacts (birthdays spread over the year) and
``1,000,000 × scale`` activities on the opportunities and their accounts, spread over the
last year (10 per account: most accounts were contacted in the last month). Rows are
written by ``INSERT … SELECT`` over a recursive series, in the database, so a 10,000,000
row table loads in minutes. Timed:

1. the **first sweep**: rebuilds the follow-up state from every activity, evaluates every
   rule over every record and acts on the whole backlog (reminders, manager notices, a
   task per revisit and greeting breach) — the day the rules are switched on;
2. a **full sweep** just after (every record and open breach again, nothing new: the
   run of ``--full``, a rebuild, or a rolling check that fell behind);
3. an **incremental sweep** five minutes later after 1,000 new activities written in bulk
   (the five-minute run: the state of the touched records, the time windows);
4. the **hourly sweeps** an hour and two hours after the full one (mode "full", but they
   read only what changed — records saved, follow-up state edited, rules whose settings
   changed — and one slice of 24 of every record and open breach each, the rolling check
   that replaced the daily run over everything; step 2 is now for the first run and
   ``--full``).

``--reuse URL`` measures against an existing database instead of a fresh one (built at
the first use, then reused: the rules' tables, rule tasks, notifications and the
benchmark's own activities are emptied before measuring), so that the 1,000,000 scale is
built once (about an hour) and measured many times:

    .venv/bin/python -m bench.rules_sweep --scale 10 --reuse postgres://…/bench
"""

import json
import os
import sys
import time

from bench.common import bench_main, server_cpu, server_cpu_between, setup_django

SECONDS_PER_YEAR = 365 * 86400


def _ago(seconds_expr: str) -> str:
    """SQL for "now minus ``seconds_expr`` seconds" as a timestamp, per database."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return f"(now() - ({seconds_expr}) * interval '1 second')"
    return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ({seconds_expr}) || ' seconds')"


def _date_ago(days_expr: str) -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        return f"(current_date - ({days_expr})::int)"
    return f"date('now', '-' || ({days_expr}) || ' days')"


def insert_series(model, n: int, exprs: dict, start_id: int) -> None:
    """INSERT ``n`` rows into ``model`` computed in SQL from ``i`` (1..n); ids are
    ``start_id + i``; columns without an expression get the field's default."""
    from django.db import connection

    from loudou.core.db import _adapter

    quote = connection.ops.quote_name
    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        columns.append(quote(field.column))
        if field.primary_key:
            values.append(f"({start_id} + i)")
        elif field.column in exprs:
            # a literal % must be doubled next to %s placeholders (both drivers)
            values.append(exprs[field.column].replace("%", "%%"))
        else:
            default = field.get_default()
            adapt = _adapter(field)
            values.append("%s")
            params.append(adapt(default) if adapt and default is not None else default)
    sql = (
        f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) "
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM s"
    )
    if connection.vendor == "postgresql":
        # PostgreSQL: the series from generate_series is much faster than recursion.
        sql = (
            f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} FROM generate_series(1::bigint, {n}) AS s(i)"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT MAX(id) FROM "
                f"{quote(model._meta.db_table)}))",
                [model._meta.db_table],
            )


def build(scale: int) -> dict:
    from django.db import connection, transaction

    from loudou.activities.models import Activity
    from loudou.customers.models import Account, Contact
    from loudou.leads.models import Lead
    from loudou.org.models import Role, Team, User
    from loudou.pipeline import services
    from loudou.pipeline.models import Opportunity

    accounts, activities = 100_000 * scale, 1_000_000 * scale
    leads, contacts = 10_000 * scale, 50_000 * scale
    started = time.monotonic()
    with transaction.atomic():
        teams = [Team.objects.create(name=f"销售{t}部") for t in range(4)]
        for t, team in enumerate(teams):
            User.objects.create(username=f"mgr{t}", name=f"经理{t}", role=Role.MANAGER,
                                team=team, password="!")  # fmt: skip
        reps = User.objects.bulk_create(
            User(username=f"rep{i}", name=f"rep{i}", role=Role.REP, team=teams[i % 4],
                 password="!")
            for i in range(200)
        )  # fmt: skip
        first_rep = min(r.pk for r in reps)
        pipeline = services.create_pipeline_from_template("dcba")
        stages = list(pipeline.open_stages())
        won = pipeline.terminal("won")
        lost = pipeline.terminal("lost")
        owner = f"({first_rep} + (i % 200))"
        grades = "CASE i % 6 WHEN 0 THEN 'D' WHEN 1 THEN 'C' WHEN 2 THEN 'B' WHEN 3 THEN 'A' " \
                 "WHEN 4 THEN 'won' ELSE '' END"  # fmt: skip
        revisit = "CASE WHEN i % 50 = 0 THEN CASE (i / 50) % 4 WHEN 0 THEN '20' WHEN 1 " \
                  "THEN '40' WHEN 2 THEN '60' ELSE '80' END ELSE '' END"  # fmt: skip
        insert_series(Account, accounts, {
            "owner_id": owner, "created_by_id": owner, "name": "'客户' || i",
            "grade": grades, "revisit_class": revisit,
            "created_at": _ago("86400 * (400 + i % 400)"),
            "updated_at": _ago("86400"),
            "founded_on": f"CASE WHEN i % 500 = 0 THEN {_date_ago('(i / 500) % 7 - 3 + 365 * 10')} "
                          "ELSE NULL END",
        }, start_id=0)  # fmt: skip
        stage_case = (
            "CASE i % 4 " + " ".join(f"WHEN {k} THEN {s.pk}" for k, s in enumerate(stages)) + " END"
        )
        status = "CASE WHEN i % 10 < 7 THEN 'open' WHEN i % 10 < 9 THEN 'lost' ELSE 'won' END"
        insert_series(Opportunity, accounts, {
            "owner_id": owner, "created_by_id": owner, "name": "'商机' || i", "account_id": "i",
            "pipeline_id": str(pipeline.pk),
            "stage_id": f"CASE WHEN i % 10 < 7 THEN {stage_case} WHEN i % 10 < 9 THEN "
                        f"{stages[0].pk} ELSE {won.pk} END",
            "furthest_stage_id": stage_case, "status": status,
            "stage_entered_at": _ago("86400 * ((i * 13) % 90) + i % 86400"),
            "created_at": _ago("86400 * (100 + i % 300)"),
            "updated_at": _ago("3600"),
            "closed_at": f"CASE WHEN i % 10 >= 7 THEN {_ago('86400 * (i % 90)')} ELSE NULL END",
        }, start_id=0)  # fmt: skip
        del lost
        insert_series(Lead, leads, {
            "owner_id": owner, "created_by_id": owner, "name": "'线索' || i",
            "created_at": _ago("(i * 7919) % (30 * 86400)"),
            "owned_since": _ago("(i * 7919) % (30 * 86400)"),
            "updated_at": _ago("60"),
        }, start_id=0)  # fmt: skip
        insert_series(Contact, contacts, {
            "account_id": f"1 + (i * 2) % {accounts}", "name": "'联系人' || i",
            "birthday": _date_ago("i % 365 + 365 * 35"),
            "created_at": _ago("86400"), "updated_at": _ago("86400"),
        }, start_id=0)  # fmt: skip
        kinds = "CASE i % 10 WHEN 0 THEN 'visit' WHEN 1 THEN 'wechat' WHEN 2 THEN 'email' " \
                "WHEN 3 THEN 'research' ELSE 'call' END"  # fmt: skip
        outcomes = "CASE i % 10 WHEN 0 THEN 'visited' WHEN 3 THEN '' WHEN 4 THEN " \
                   "'not_reached' ELSE 'reached' END"  # fmt: skip
        account_of = f"(1 + (i * 7) % {accounts})"
        insert_series(Activity, activities, {
            "owner_id": f"({first_rep} + ({account_of} % 200))",
            "created_by_id": f"({first_rep} + ({account_of} % 200))",
            "kind": kinds, "purpose": "'follow_up'", "outcome": outcomes,
            "occurred_at": _ago(f"(i * 7919) % {SECONDS_PER_YEAR} + 3 * 86400"),
            "account_id": account_of, "opportunity_id": account_of,
            "created_at": _ago("86400"), "updated_at": _ago("86400"),
        }, start_id=0)  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"accounts": accounts, "activities": activities, "leads": leads,
            "contacts": contacts, "seconds": round(time.monotonic() - started, 1)}  # fmt: skip


def reset(scale: int) -> dict:
    """Empty what a measurement writes, keeping the built records (``--reuse``)."""
    from django.db import connection

    from loudou.activities.models import Activity
    from loudou.notifications.models import Notification
    from loudou.rules.models import (
        AccountFollowUp,
        Breach,
        LeadFollowUp,
        OpportunityFollowUp,
        SweepRun,
    )
    from loudou.tasks.models import Task

    tables = [m._meta.db_table for m in (Breach, SweepRun, LeadFollowUp, AccountFollowUp,
                                          OpportunityFollowUp, Notification, Task)]  # fmt: skip
    tables.append(Task.assignees.through._meta.db_table)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(quote(t) for t in tables)} CASCADE")
        else:
            for table in reversed(tables):
                cursor.execute(f"DELETE FROM {quote(table)}")
    # the built activities have the ids 1 .. 1,000,000 × scale
    Activity.objects.filter(pk__gt=1_000_000 * scale).delete()
    return {"reused": True, "accounts": 100_000 * scale, "activities": 1_000_000 * scale}


def measure(args) -> None:
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from loudou.activities.models import Activity
    from loudou.notifications.models import Notification
    from loudou.rules.models import Breach
    from loudou.rules.sweep import sweep
    from loudou.tasks.models import Task

    if getattr(args, "reuse", False) and Activity.objects.exists():
        built = reset(args.scale)
    else:
        built = build(args.scale)
    print(f"  built {built}", flush=True)

    def timed_sweep(label, **kwargs):
        server = server_cpu()
        started, cpu = time.perf_counter(), time.process_time()
        run = sweep(**kwargs)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        server = server_cpu_between(server, server_cpu()) or 0.0
        slowest = sorted(
            ((v.get("seconds", 0), k) for k, v in run.counts["rules"].items()), reverse=True
        )[:3]
        part = run.counts.get("slice")
        where = f", slice {part['index']} of {part['of']}" if part else ""
        print(f"  {label}: {run.mode}{' (every record)' if run.exhaustive else ''}{where}, "
              f"{wall:.2f} s (cpu {cpu:.2f}, server cpu {server:.2f}), opened {run.opened}, "
              f"resolved {run.resolved}, "
              f"slowest rules {slowest}, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        return {"mode": run.mode, "exhaustive": run.exhaustive, "slice": part and part["index"],
                "seconds": round(wall, 2),
                "cpu": round(cpu, 2), "server_cpu": round(server, 2), "opened": run.opened,
                "resolved": run.resolved}  # fmt: skip

    now = timezone.now()
    results = {"built": built}
    results["first"] = timed_sweep("first sweep", now=now)
    results["breaches"] = Breach.objects.count()
    results["notifications"] = Notification.objects.count()
    results["tasks"] = Task.objects.count()
    results["full"] = timed_sweep("full sweep", now=now + timedelta(seconds=1), full=True)
    # 1,000 new activities in bulk (no event), on the records of the most overdue breaches
    accounts = list(
        Breach.objects.open().filter(account__isnull=False, opportunity__isnull=True)
        .values_list("account_id", "owner_id")[:1000]
    )  # fmt: skip
    later = now + timedelta(minutes=5)
    Activity.objects.bulk_create([
        Activity(owner_id=owner, created_by_id=owner, kind="call", purpose="follow_up",
                 outcome="reached", occurred_at=now, account_id=account)
        for account, owner in (accounts[k % len(accounts)] for k in range(1000))
    ])  # fmt: skip
    results["incremental"] = timed_sweep("incremental sweep", now=later)
    results["hourly"] = timed_sweep("hourly sweep", now=now + timedelta(hours=1, seconds=2))
    results["hourly_next"] = timed_sweep(
        "hourly sweep, next slice", now=now + timedelta(hours=2, seconds=3)
    )
    results["vendor"] = connection.vendor
    print(json.dumps(results), flush=True)


def reuse_main(argv) -> int:
    """``--reuse URL [--scale N]``: measure in this process against the database at URL."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--reuse", required=True)
    args = parser.parse_args(argv)
    os.environ["LOUDOU_DATABASE_URL"] = args.reuse
    measure(args)
    return 0


if __name__ == "__main__":
    if "--reuse" in sys.argv:
        sys.exit(reuse_main(sys.argv[1:]))
    sys.exit(
        bench_main(
            "bench.rules_sweep",
            __doc__.splitlines()[0],
            {"scale": 1},
            measure,
            "scale {scale}: {scale}00,000 accounts and opportunities, {scale},000,000 activities",
        )
    )
