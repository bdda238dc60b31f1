"""Background jobs of the leads app (Tasks API, run by ``loudou serve``'s worker)."""

from django_tasks import task

from . import services


@task()
def sweep_pools() -> dict:
    """The periodic recycle sweep (scheduled in apps.py through core/schedule.py)."""
    return services.sweep().as_dict()
