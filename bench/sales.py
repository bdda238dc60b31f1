"""Benchmark: receivables and completed revenue at scale (issue 8).

    .venv/bin/python -m bench.sales --contracts 100000 --payments 300000 --db sqlite

For each database: an empty database, 20 reps, 2,000 accounts, N contracts and orders
signed over two years, each with a two-line payment plan, and M payments (some refunds)
bulk-inserted with the kept figures (received, covered, next due date) computed by the
same allocation the services use. Then, as an admin (who sees everything), timed
in-process: the receivables page, the receivables API (one page and the summary), the
contract list API, and ``completed_by_owner`` for a year on both bases.
"""

import json
import random
import sys
from datetime import date, timedelta
from decimal import Decimal

from bench.common import bench_main, setup_django
from bench.targets import timed_db as timed


def generate(contracts: int, payments: int, seed: int = 8) -> None:
    from django.core.management import call_command
    from django.db import connection, transaction

    from loudou.customers.models import Account
    from loudou.org.models import Role
    from loudou.org.services import create_user
    from loudou.sales.models import Contract, Payment, PaymentPlan
    from loudou.sales.services import allocate

    call_command("migrate", verbosity=0)
    if Contract.objects.exists():  # a kept database (``--child`` run again): measure it
        return
    rng = random.Random(seed)
    create_user("admin", password="bench-bench-bench", name="Admin", role=Role.ADMIN)
    reps = [
        create_user(f"rep{i}", password="bench-bench-bench", name=f"Rep {i}", role=Role.REP)
        for i in range(20)
    ]
    Account.objects.bulk_create(
        Account(name=f"客户{i:05d}", owner=reps[i % len(reps)]) for i in range(2000)
    )
    account_ids = list(Account.objects.values_list("pk", flat=True))
    from django.utils import timezone

    today = timezone.localdate()
    start = today - timedelta(days=730)
    per_contract = [0] * contracts
    for _ in range(payments):
        per_contract[rng.randrange(contracts)] += 1
    batch = 5000
    with transaction.atomic():
        for offset in range(0, contracts, batch):
            rows, plans, pays = [], [], []
            for index in range(offset, min(offset + batch, contracts)):
                order = rng.random() < 0.3
                amount = Decimal(rng.randint(10, 19_999 if order else 500_000)) * 100 / 100
                sign = start + timedelta(days=rng.randrange(730))
                rows.append(
                    Contract(
                        number=f"{'DD' if order else 'HT'}-B-{index:07d}",
                        kind="order" if order else "contract",
                        title=f"合同{index}",
                        account_id=rng.choice(account_ids),
                        owner=reps[index % len(reps)],
                        amount=amount,
                        sign_date=sign,
                        status="cancelled" if rng.random() < 0.03 else "active",
                    )
                )
            Contract.objects.bulk_create(rows)
            for contract, index in zip(rows, range(offset, offset + len(rows)), strict=True):
                half = (contract.amount / 2).quantize(Decimal("0.01"))
                first = PaymentPlan(
                    contract=contract, due_date=contract.sign_date + timedelta(days=30), amount=half
                )
                second = PaymentPlan(
                    contract=contract,
                    due_date=contract.sign_date + timedelta(days=120),
                    amount=contract.amount - half,
                )
                plans += [first, second]
                received = Decimal(0)
                for _ in range(per_contract[index]):
                    share = Decimal(rng.choice([10, 25, 50, -5])) / 100
                    value = (contract.amount * share).quantize(Decimal("0.01"))
                    if value < 0 and received + value < 0:
                        value = -value
                    received += value
                    pays.append(
                        Payment(
                            contract=contract,
                            amount=value,
                            paid_on=contract.sign_date + timedelta(days=rng.randrange(200)),
                            method="bank",
                        )
                    )
                contract._plans = (first, second)
                contract._received = received
            PaymentPlan.objects.bulk_create(plans)
            Payment.objects.bulk_create(pays)
            for contract in rows:
                first, second = contract._plans
                covered = allocate(
                    [
                        (first.pk, first.due_date, first.amount),
                        (second.pk, second.due_date, second.amount),
                    ],
                    [(None, contract._received)],
                )
                first.covered, second.covered = covered[first.pk], covered[second.pk]
                contract.received = contract._received
                contract.next_due_date = next(
                    (p.due_date for p in (first, second) if p.covered < p.amount), None
                )
            PaymentPlan.objects.bulk_update(plans, ["covered"])
            Contract.objects.bulk_update(rows, ["received", "next_due_date"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure(args) -> None:
    setup_django()
    import time

    started = time.monotonic()
    generate(args.contracts, args.payments)
    print(f"  generated in {time.monotonic() - started:.1f} s", flush=True)

    from django.test import Client
    from django.utils import timezone

    from loudou.org.models import User
    from loudou.org.services import create_token
    from loudou.sales import queries
    from loudou.sales.models import Contract, Payment

    admin = User.objects.get(username="admin")
    print(f"  {Contract.objects.count()} contracts, {Payment.objects.count()} payments", flush=True)
    client = Client()
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    _row, key = create_token(admin, name="bench")
    bearer = {"Authorization": f"Bearer {key}"}
    year = timezone.localdate().year
    start, end = date(year - 1, 1, 1), date(year, 1, 1)

    def get(url, **headers):
        def call():
            response = client.get(url, headers=headers)
            assert response.status_code == 200, (url, response.status_code)

        return call

    runs = args.runs
    results = {
        "receivables page": timed(get("/sales/receivables/"), runs=runs, warmup=1),
        "receivables API": timed(
            get("/api/v1/receivables?limit=50", **bearer), runs=runs, warmup=1
        ),
        "receivables summary API": timed(
            get("/api/v1/receivables/summary", **bearer), runs=runs, warmup=1
        ),
        "contracts API": timed(get("/api/v1/contracts?limit=50", **bearer), runs=runs, warmup=1),
        "completed signed": timed(
            lambda: queries.completed_by_owner(start, end, basis="signed"), runs=runs, warmup=1
        ),
        "completed collected": timed(
            lambda: queries.completed_by_owner(start, end, basis="collected"), runs=runs, warmup=1
        ),
    }
    print("RESULT " + json.dumps(results), flush=True)


def main(argv=None) -> int:
    options = {"contracts": 100_000, "payments": 300_000, "runs": 7}
    header = "{contracts:,} contracts, {payments:,} payments"
    return bench_main("bench.sales", __doc__, options, measure, header, argv)


if __name__ == "__main__":
    sys.exit(main())
