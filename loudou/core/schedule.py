"""A small periodic scheduler on top of the Tasks API (DESIGN.md "background work").

Apps register jobs (a name, an interval, the dotted path of a ``django_tasks`` task) in
their ``AppConfig.ready``; ``loudou scheduler`` (started by ``loudou serve``) calls
:func:`tick` every few seconds, which enqueues each due job. Whether a job is due is kept
in a :class:`~loudou.core.models.ScheduledJob` row, and a tick claims a run with one
conditional ``UPDATE ... WHERE next_run_at <= now``: whichever scheduler's UPDATE changes
the row enqueues, any other one sees zero rows changed and does nothing. The task row is
written in the same transaction, so a crash never loses a run it claimed.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Job:
    name: str
    interval: timedelta
    task: str  # dotted path of a django_tasks Task

    def load_task(self):
        return import_string(self.task)


_jobs: dict[str, Job] = {}


def register(name: str, *, interval: timedelta, task: str) -> Job:
    """Run ``task`` every ``interval``; registering the same name again replaces it."""
    if interval <= timedelta(0):
        raise ValueError("interval must be positive")
    job = Job(name=name, interval=interval, task=task)
    _jobs[name] = job
    return job


def jobs() -> list[Job]:
    return sorted(_jobs.values(), key=lambda job: job.name)


def _claim(job: Job, now) -> bool:
    from .models import ScheduledJob

    try:
        with transaction.atomic():
            ScheduledJob.objects.get_or_create(name=job.name)
    except IntegrityError:  # another scheduler created it a moment ago
        pass
    changed = (
        ScheduledJob.objects.filter(name=job.name)
        .filter(Q(next_run_at__isnull=True) | Q(next_run_at__lte=now))
        .update(next_run_at=now + job.interval, last_enqueued_at=now)
    )
    return changed == 1


def tick(now=None, *, only=None) -> list[str]:
    """Enqueue every due job (or only the named ones); returns the names enqueued."""
    now = now or timezone.now()
    enqueued = []
    for job in jobs():
        if only and job.name not in only:
            continue
        with transaction.atomic():
            if _claim(job, now):
                job.load_task().enqueue()
                enqueued.append(job.name)
    return enqueued
