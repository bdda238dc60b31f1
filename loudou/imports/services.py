"""Starting, running and undoing imports. The CLI, the API, the pages and the background
task all call these."""

from __future__ import annotations

from pathlib import Path

from django.core.files import File
from django.db import transaction
from django.utils.translation import gettext as _

from loudou.core.exceptions import ValidationFailed

from .engine import Options, check_may_import, run_job, undo
from .layouts import FORMATS
from .models import ImportJob, ImportKind, OnDuplicate

__all__ = ["create_job", "run_job", "undo"]


def _attach(job: ImportJob, field: str, source) -> None:
    """Store an uploaded file or a path in the job's storage (so that a resumed or
    background run finds it)."""
    if source is None:
        return
    if isinstance(source, str | Path):
        path = Path(source)
        with path.open("rb") as handle:
            getattr(job, field).save(path.name, File(handle), save=False)
    else:
        getattr(job, field).save(Path(source.name).name, source, save=False)


@transaction.atomic
def create_job(
    *, actor, kind: str, file, history=None, accounts=None, dry_run=False, **options
) -> ImportJob:
    """Record an import of ``file`` (a path or an uploaded file) with its options."""
    check_may_import(actor)
    if kind not in ImportKind.values:
        raise ValidationFailed(_("Unknown kind of import."), field="kind")
    opts = Options.from_dict(options)
    if kind != ImportKind.LEADS:
        opts.pool = None  # only leads go into a pool
    if opts.format not in FORMATS:
        raise ValidationFailed(_("Unknown file format."), field="format")
    if opts.on_duplicate not in OnDuplicate.values:
        raise ValidationFailed(_("Choose skip, update or create."), field="on_duplicate")
    if (history or accounts) and kind != ImportKind.OPPORTUNITIES:
        raise ValidationFailed(_("Only opportunities take a history or accounts file."))
    job = ImportJob(
        kind=kind,
        created_by=actor,
        dry_run=dry_run,
        options=opts.as_dict(),
        layout=opts.format,
        original_name=Path(getattr(file, "name", str(file))).name[:255],
    )
    _attach(job, "file", file)
    _attach(job, "history_file", history)
    _attach(job, "accounts_file", accounts)
    job.save()
    return job
