"""Benchmark: the activity list API and the per-owner counts over 1,000,000 activities.

    .venv/bin/python -m bench.activities --activities 1000000 --db sqlite

For each database: an empty database, ``loudou generate --opportunities N --reps R
--years 1 --seed 9``, then ``--activities`` activities over the last twelve months, each
by the owner of a random opportunity, on it and its account (one INSERT per 5,000 rows
through the database cursor: the ORM would spend an hour on objects). Timed in-process:
``GET /api/v1/activities?limit=50`` as an admin, a manager and a rep (the visibility
gate differs), the same list filtered (visits in one month), and ``counts_by_owner`` /
``minutes_by_owner`` / ``visits_by_week`` for a month and for the year, all owners.

The visibility gate is also timed on its own (the count and the newest 50): a rep's
both ways on the same data — ``Activity.objects.visible_to`` (a rep's ids through one
index-driven SELECT per way of seeing an activity, UNION ALL) against the single WHERE
with an OR of the conditions that managers keep (``_or_scope`` below, to compare) — and
a manager's.
"""

import json
import random
import sys
import time

from bench.common import bench_main, setup_django, timed

KINDS = (
    ["call"] * 40
    + ["wechat"] * 20
    + ["visit"] * 15
    + ["email"] * 12
    + ["meeting"] * 8
    + ["research"] * 5
)
OUTCOMES = {"call": ["reached", "not_reached", "left_message"], "wechat": ["reached"],
            "visit": ["visited", "cancelled"], "email": ["reached"], "meeting": ["meeting_held"],
            "research": [""]}  # fmt: skip


def insert_activities(n: int, seed: int) -> float:
    """Insert ``n`` activities in bulk; return the seconds it took."""
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from loudou.activities.models import Activity
    from loudou.pipeline.models import Opportunity

    rng = random.Random(seed)
    opps = list(Opportunity.objects.values_list("pk", "account_id", "owner_id"))
    now = timezone.now()
    year = 365 * 24 * 3600
    columns = [
        "created_at", "updated_at", "version", "owner_id", "created_by_id", "kind", "purpose",
        "outcome", "occurred_at", "duration_minutes", "gave_something", "gave_what", "notes",
        "opportunity_id", "account_id",
    ]  # fmt: skip
    table = Activity._meta.db_table
    batch = 5000
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        for offset in range(0, n, batch):
            rows = []
            for _ in range(min(batch, n - offset)):
                opp, account, owner = rng.choice(opps)
                kind = rng.choice(KINDS)
                when = now - timedelta(seconds=rng.randrange(year))
                minutes = rng.randint(2, 120) if kind in ("call", "visit", "meeting") else None
                rows.append((
                    now, now, 1, owner, owner, kind, "follow_up", rng.choice(OUTCOMES[kind]),
                    when, minutes, rng.random() < 0.4, "", "", opp, account,
                ))  # fmt: skip
            placeholders = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(rows))
            values = [
                connection.ops.adapt_datetimefield_value(v) if hasattr(v, "tzinfo") else v
                for row in rows
                for v in row
            ]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES {placeholders}", values
            )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return time.monotonic() - started


def _or_scope(user):
    """A rep's visibility condition as it was before the UNION form (commit 9b18af6):
    one OR of the conditions, evaluated on every row (a manager's still is)."""
    from django.db.models import Q

    from loudou.activities.models import Activity
    from loudou.customers.models import Account
    from loudou.leads.models import Lead
    from loudou.org.models import User
    from loudou.pipeline.models import Opportunity

    if user.managed_team_path:
        team = User.objects.filter(team__path__startswith=user.managed_team_path)
        scope = Q(owner_id=user.pk) | Q(owner_id__in=team.values("pk"))
    else:
        scope = Q(owner_id=user.pk)
    shared = Activity.shared_with.through.objects.filter(user=user)
    scope |= Q(pk__in=shared.values("activity_id"))
    scope |= (
        Q(account_id__in=Account.objects.visible_to(user).values("pk"))
        | Q(opportunity_id__in=Opportunity.objects.visible_to(user).values("pk"))
        | Q(lead_id__in=Lead.objects.visible_to(user).values("pk"))
    )
    return Activity.objects.filter(scope)


def measure(args) -> None:
    setup_django()
    from bench.common import migrate_and_generate

    migrate_and_generate(opportunities=args.opportunities, reps=args.reps, years=1, seed=9)

    from datetime import timedelta

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from loudou.activities import queries
    from loudou.activities.models import Activity
    from loudou.org.models import User

    seconds = insert_activities(args.activities, seed=9)
    print(f"  {Activity.objects.count():,} activities inserted in {seconds:.1f} s", flush=True)

    today = timezone.localdate()
    month_start, year_start = today - timedelta(days=30), today - timedelta(days=365)
    end = today + timedelta(days=1)
    admin = User.objects.get(username="admin")
    manager = User.objects.filter(role="manager", team__parent__isnull=False).first()
    rep = User.objects.filter(role="rep").first()

    def get(user, url):
        client = Client()
        client.force_login(user)

        def call():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        return call

    def count(fn):
        with CaptureQueriesContext(connection) as ctx:
            fn()
        return len(ctx.captured_queries)

    month_filter = f"kind=visit&date_from={month_start}&date_to={today}"
    runs = args.runs
    results = {
        "activities": args.activities,
        "owners": User.objects.filter(pk__in=Activity.objects.values("owner_id")).count(),
        "api_list_50_admin": timed(get(admin, "/api/v1/activities?limit=50"), runs=runs),
        "api_list_50_manager": timed(get(manager, "/api/v1/activities?limit=50"), runs=runs),
        "api_list_50_rep": timed(get(rep, "/api/v1/activities?limit=50"), runs=runs),
        "api_list_50_admin_visits_month": timed(
            get(admin, f"/api/v1/activities?limit=50&{month_filter}"), runs=runs
        ),
        "list_page_rep": timed(get(rep, "/activities/?scope=mine"), runs=runs),
        "counts_by_owner_month": timed(
            lambda: queries.counts_by_owner(month_start, end), runs=runs, warmup=1
        ),
        "counts_by_owner_year": timed(
            lambda: queries.counts_by_owner(year_start, end), runs=runs, warmup=1
        ),
        "counts_by_owner_year_visits": timed(
            lambda: queries.counts_by_owner(year_start, end, kinds=["visit"]), runs=runs, warmup=1
        ),
        "minutes_by_owner_year": timed(
            lambda: queries.minutes_by_owner(year_start, end), runs=runs, warmup=1
        ),
        "visits_by_week_year": timed(
            lambda: queries.visits_by_week(year_start, end), runs=runs, warmup=1
        ),
        "counts_by_owner_queries": count(lambda: queries.counts_by_owner(year_start, end)),
    }
    newest = ("-occurred_at", "-pk")
    union, ors = Activity.objects.visible_to(rep), _or_scope(rep)
    assert union.count() == ors.count()
    mine = Activity.objects.visible_to(manager)
    results.update({
        "visible_rep": union.count(),
        "count_rep_or_before": timed(ors.count, runs=runs, warmup=1),
        "count_rep_union": timed(union.count, runs=runs, warmup=1),
        "newest50_rep_or_before": timed(
            lambda: list(ors.order_by(*newest)[:50]), runs=runs, warmup=1
        ),
        "newest50_rep_union": timed(
            lambda: list(union.order_by(*newest)[:50]), runs=runs, warmup=1
        ),
        "visible_manager": mine.count(),
        "count_manager": timed(mine.count, runs=runs, warmup=1),
        "newest50_manager": timed(lambda: list(mine.order_by(*newest)[:50]), runs=runs, warmup=1),
    })  # fmt: skip
    print("RESULT " + json.dumps(results), flush=True)


def main(argv=None) -> int:
    options = {"activities": 1_000_000, "opportunities": 20_000, "reps": 100, "runs": 10}
    header = "{activities:,} activities"
    return bench_main("bench.activities", __doc__, options, measure, header, argv)


if __name__ == "__main__":
    sys.exit(main())
