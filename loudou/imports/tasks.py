"""Background work: an import runs in a worker (``loudou serve`` / the db_worker), and the
page polls the job row for its progress."""

from django.conf import settings
from django.utils import translation
from django_tasks import task

from .models import ImportJob, JobStatus


@task()
def run_import(job_id: int) -> str:
    """Run (or dry-run, or resume) one import job."""
    from .services import run_job

    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        return "skipped"
    with translation.override((job.options or {}).get("language") or settings.LANGUAGE_CODE):
        return run_job(job).status


def enqueue(job: ImportJob, *, dry_run: bool) -> ImportJob:
    """Queue ``job`` for the worker, as a dry run or a real run."""
    job.dry_run = dry_run
    if job.status != JobStatus.RUNNING:  # a stopped run resumes where it left off
        job.resume_after_row = 0
    job.status = JobStatus.QUEUED
    # The worker has no request: the report's reasons, and the names the import gives
    # (a new pipeline, its placeholders), come in the language of whoever queued the job
    # (the page's or the API caller's), not the server's default.
    job.options = {**(job.options or {}), "language": translation.get_language()}
    job.save(update_fields=["dry_run", "status", "resume_after_row", "options"])
    run_import.enqueue(job.pk)
    return job
