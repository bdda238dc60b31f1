"""Import API: upload a file, check it (dry run), run it, follow it, undo it.

The run happens in a background worker; ``GET /imports/{id}`` answers the status, the
progress and the report (counts and each bad row with its row number, column and reason).
Only managers and admins import; a user sees their own imports, an admin every import.
"""

from datetime import datetime

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, File, Form, Router, Schema, Status, UploadedFile

from loudou.core.exceptions import Conflict
from loudou.pipeline.filters import RowId

from .engine import check_may_import
from .layouts import FORMATS
from .models import ImportJob, ImportKind, JobStatus, OnDuplicate
from .services import create_job, undo
from .tasks import enqueue

router = Router(tags=["imports"])


class ImportRowError(Schema):
    file: str = ""
    row: int
    column: str
    reason: str


class ImportJobOut(Schema):
    id: int
    kind: str
    status: str
    dry_run: bool
    file_name: str = Field(..., alias="original_name")
    layout: str
    mapping: dict[str, str]
    options: dict
    counts: dict[str, int]
    errors: list[ImportRowError]
    total_rows: int
    done_rows: int
    progress: int
    resume_after_row: int
    message: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ImportUploadForm(Schema):
    kind: ImportKind
    format: str = Field("auto", pattern="^(" + "|".join(FORMATS) + ")$")
    on_duplicate: OnDuplicate = OnDuplicate.SKIP
    skip_bad_rows: bool = False
    pipeline: str = Field("", max_length=100)
    pool: RowId | None = None
    sheet: str = Field("", max_length=100, description="a workbook's sheet (default: first)")


def _jobs(user):
    jobs = ImportJob.objects.all()
    return jobs if user.sees_everything else jobs.filter(created_by=user)


def _job(request, job_id: int) -> ImportJob:
    check_may_import(request.auth)
    return get_object_or_404(_jobs(request.auth), pk=job_id)


@router.get("/imports", response=list[ImportJobOut])
def list_imports(request):
    """The caller's imports (an admin's: everyone's), newest first, at most 50."""
    check_may_import(request.auth)
    return list(_jobs(request.auth)[:50])


@router.post("/imports", response={201: ImportJobOut})
def upload_import(
    request,
    data: Form[ImportUploadForm],
    file: File[UploadedFile],
    history: File[UploadedFile] = None,
    accounts: File[UploadedFile] = None,
):
    """Upload a file (CSV, xlsx, xls) to import; opportunities may come with a stage
    history file and an accounts file. Nothing is read yet: check it, then run it."""
    job = create_job(
        actor=request.auth, kind=data.kind, file=file, history=history, accounts=accounts,
        format=data.format, on_duplicate=data.on_duplicate, skip_bad_rows=data.skip_bad_rows,
        pipeline=data.pipeline, pool=data.pool, sheet=data.sheet,
    )  # fmt: skip
    return Status(201, job)


@router.get("/imports/{job_id}", response=ImportJobOut)
def get_import(request, job_id: RowId):
    """Status, progress and report of one import."""
    return _job(request, job_id)


@router.post("/imports/{job_id}/check", response={202: ImportJobOut})
def check_import(request, job_id: RowId):
    """Queue a dry run: the report tells how many rows would be new, updated, duplicate or
    invalid, and why each invalid row is."""
    return Status(202, enqueue(_startable(request, job_id), dry_run=True))


@router.post("/imports/{job_id}/run", response={202: ImportJobOut})
def run_import(request, job_id: RowId):
    """Queue the import itself (resuming a stopped skip-bad-rows run)."""
    return Status(202, enqueue(_startable(request, job_id), dry_run=False))


@router.post("/imports/{job_id}/undo", response=ImportJobOut)
def undo_import(request, job_id: RowId):
    """Remove what the import created and restore what it updated."""
    return undo(_job(request, job_id), actor=request.auth)


def _startable(request, job_id) -> ImportJob:
    job = _job(request, job_id)
    if job.status in (JobStatus.QUEUED, JobStatus.UNDONE) or (
        job.status == JobStatus.DONE and not job.dry_run
    ):
        raise Conflict(_("This import is %s.") % job.get_status_display())
    return job
