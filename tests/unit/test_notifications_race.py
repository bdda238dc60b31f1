"""Several workers sending notification deliveries at once on PostgreSQL: every
delivery is claimed and sent by exactly one of them (issue 6: "safe with several
workers on PostgreSQL, no double notification")."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from loudou.notifications import delivery, services
from loudou.notifications.choices import DeliveryStatus
from loudou.notifications.models import Delivery
from tests.unit.test_leads_race import threaded_db  # noqa: F401  (a fixture)
from tests.unit.test_notifications_delivery import RobotServer

WORKERS = 4
NOTIFICATIONS = 30


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_parallel_workers_send_each_delivery_once(threaded_db, org, settings):  # noqa: F811
    """Four workers run the retry sweep at the same moment over 30 due deliveries (each
    from its own connection, the robot answering slowly so that they overlap): the
    robot receives every message exactly once and every row ends sent after one
    attempt."""
    settings.LOUDOU_WEBHOOK_ALLOW_PRIVATE = True
    robot = RobotServer()
    original = robot.httpd.RequestHandlerClass.do_POST

    def slow_post(handler):
        time.sleep(0.02)
        original(handler)

    robot.httpd.RequestHandlerClass.do_POST = slow_post
    try:
        services.create_webhook(org.east_rep, name="r", flavour="wecom", url=robot.url())
        notes = [services.notify(org.east_rep, f"n{i:02d}") for i in range(NOTIFICATIONS)]
        delivery.hand_off(notes)  # the rows, as after commit; the sweep sends them
        assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == NOTIFICATIONS
        barrier = threading.Barrier(WORKERS)
        later = timezone.now() + timedelta(seconds=1)

        def worker(_i):
            try:
                barrier.wait(timeout=30)
                return delivery.retry_due(now=later)
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            results = list(pool.map(worker, range(WORKERS)))
    finally:
        robot.close()
    texts = sorted(r["json"]["text"]["content"].rsplit(" ", 1)[-1].split("】")[-1]
                   for r in robot.requests)  # fmt: skip
    assert texts == [f"n{i:02d}" for i in range(NOTIFICATIONS)]
    assert sum(r.get("sent", 0) for r in results) == NOTIFICATIONS
    rows = list(Delivery.objects.order_by().values_list("status", "attempts").distinct())
    assert rows == [(DeliveryStatus.SENT, 1)]
