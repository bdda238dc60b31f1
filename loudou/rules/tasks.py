"""Background jobs of the rules app (Tasks API, run by ``loudou serve``'s worker)."""

from django_tasks import task

from . import sweep


@task()
def sweep_rules() -> dict:
    """The periodic rule sweep (scheduled in apps.py through core/schedule.py)."""
    run = sweep.sweep()
    return {"run": run.pk, "mode": run.mode, "opened": run.opened, "resolved": run.resolved}
