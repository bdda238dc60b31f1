"""Two workers sweeping at the same moment, each with its own database connection: every
breach is stored once, every person told once, every task made once (issue 6, item 8)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from loudou.activities.models import Activity
from loudou.customers.models import Account
from loudou.customers.services import create_account, create_contact
from loudou.leads.models import Lead
from loudou.leads.services import create_lead
from loudou.notifications.models import Notification
from loudou.rules.models import Breach
from loudou.rules.sweep import sweep
from loudou.tasks.models import Task
from loudou.web.demo import install_defaults
from tests.unit.test_leads_race import threaded_db  # noqa: F401 - fixture

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 9, 29, 14, tzinfo=TZ)


def _world(org):
    """Ten won customers not called for 40 days (monthly cadence; one birthday each on
    1 October) and five leads that arrived on Friday and were never called."""
    install_defaults()  # a transactional test starts from a flushed database
    for i in range(10):
        account = create_account(actor=org.east_rep, name=f"客户{i}")
        create_contact(account, actor=org.east_rep, name=f"联系人{i}", birthday=date(1980, 10, 1))
        Activity.objects.create(
            owner=org.east_rep, kind="call", purpose="service", outcome="reached",
            occurred_at=NOW - timedelta(days=40), account=account,
        )  # fmt: skip
    Account.objects.update(grade="won", created_at=NOW - timedelta(days=90))
    for i in range(5):
        create_lead(actor=org.east_rep2, owner=org.east_rep2, name=f"线索{i}")
    friday = datetime(2025, 9, 26, 17, tzinfo=TZ)
    Lead.objects.update(created_at=friday, owned_since=friday)


@pytest.mark.django_db(transaction=True)
def test_two_workers_sweeping_at_once_do_everything_once(threaded_db, org):  # noqa: F811
    """Both sweeps finish; together they open 25 breaches (10 cadence, 10 birthdays, 5
    first contacts) — one of them all, the other none — with one reminder per owner and
    rule, one team notice per manager and rule, and one task per birthday."""
    _world(org)
    barrier = threading.Barrier(2)

    def work(_):
        try:
            barrier.wait(timeout=30)
            run = sweep(NOW)
            return run.opened
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        opened = sorted(pool.map(work, range(2)))
    assert opened == [0, 25]
    assert Breach.objects.count() == 25
    assert Breach.objects.values("key").distinct().count() == 25
    reminders = sorted(
        Notification.objects.filter(kind="rule_breach").values_list("user__username", flat=True)
    )
    # east_rep: the cadence rule (the birthday rule only makes tasks); east_rep2: first
    # contact; east_mgr: first contact (the rule tells the manager)
    assert reminders == ["east_mgr", "east_rep", "east_rep2"]
    assert Task.objects.filter(source="rule").count() == 10
    assert Task.objects.values("key").distinct().count() == 10
