"""Background jobs of the tasks app (Tasks API, run by ``loudou serve``'s worker)."""

from django_tasks import task

from . import services


@task()
def send_reminders() -> int:
    """The periodic reminder run (scheduled in apps.py through core/schedule.py)."""
    return services.send_due_reminders()
