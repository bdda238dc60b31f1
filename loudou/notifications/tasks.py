"""Background jobs of the notifications (Tasks API, run by ``loudou serve``'s worker)."""

from django_tasks import task

from . import delivery


@task()
def send_deliveries(delivery_ids: list[int]) -> dict:
    """Send these deliveries (each claimed first, so a row is sent by one worker)."""
    return delivery.send_ids(delivery_ids)


@task()
def retry_deliveries() -> dict:
    """The periodic job (scheduled in apps.py): send every delivery that is due."""
    return delivery.retry_due()
