"""Import pages: upload → detected layout and column mapping → dry-run report → run with
a progress bar (background task, polled with htmx) → result and undo.

Only managers and admins import; a user sees their own jobs, an admin everyone's.
"""

import hashlib

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Value, When
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loudou.core.exceptions import ServiceError
from loudou.leads.models import PublicPool

from . import layouts
from .engine import may_import
from .layouts import FIELDS, FORMATS
from .models import ImportJob, ImportKind, JobStatus, OnDuplicate, SavedMapping
from .reader import UnreadableFile, open_table, sheet_names
from .services import create_job, undo
from .tasks import enqueue

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def _gate(request):
    if not may_import(request.user):
        raise PermissionDenied(_("Only managers and administrators may import data."))


def _jobs(user):
    jobs = ImportJob.objects.select_related("created_by")
    return jobs if user.sees_everything else jobs.filter(created_by=user)


def headers_key(kind: str, keys: list[str]) -> str:
    return hashlib.sha256("\x1f".join([kind, *keys]).encode()).hexdigest()


@login_required
def imports(request):
    """The upload form and the user's recent imports."""
    _gate(request)
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            messages.error(request, _("Choose a file to import."))
            return redirect("imports:imports")
        try:
            job = create_job(
                actor=request.user, kind=request.POST.get("kind", ""), file=upload,
                history=request.FILES.get("history"), accounts=request.FILES.get("accounts"),
                format=request.POST.get("format", "auto"),
                on_duplicate=request.POST.get("on_duplicate", OnDuplicate.SKIP),
                skip_bad_rows=request.POST.get("skip_bad_rows") == "on",
                pipeline=request.POST.get("pipeline", "").strip()[:100],
                pool=_pool_id(request), sheet=request.POST.get("sheet", "").strip()[:100],
            )  # fmt: skip
        except ServiceError as error:
            messages.error(request, error.message)
            return redirect("imports:imports")
        return redirect("imports:mapping", job.pk)
    return render(request, "imports/imports.html", {
        "jobs": _jobs(request.user)[:20], "kinds": ImportKind.choices, "formats": FORMATS,
        "duplicates": OnDuplicate.choices, "kind": request.GET.get("kind", "opportunities"),
        "pools": PublicPool.objects.visible_to(request.user).order_by("name"),
        "pool": request.GET.get("pool", ""),
    })  # fmt: skip


def _pool_id(request) -> int | None:
    value = request.POST.get("pool", "")
    return int(value) if value.isdigit() else None


def _saved_mapping(user, kind: str, key: str) -> SavedMapping | None:
    """The user's own mapping for these headers, else the latest a colleague shared."""
    mine = Case(When(created_by=user, then=Value(0)), default=Value(1))
    return (
        SavedMapping.objects.offered_to(user)
        .filter(kind=kind, headers_key=key)
        .order_by(mine, "-updated_at", "-pk")
        .first()
    )


@login_required
def mapping(request, job_id):
    """The detected layout and which column feeds which field; unknown headers get a
    suggestion. A workbook with several sheets asks which one to read. The confirmed
    mapping is saved for the user's next file with these headers (and, if they share
    it, for their colleagues')."""
    _gate(request)
    job = get_object_or_404(_jobs(request.user), pk=job_id)
    try:
        sheets = sheet_names(job.file.path)
        sheet = request.POST.get("sheet") or request.GET.get("sheet") or job.options.get(
            "sheet") or (sheets[0] if sheets else "")  # fmt: skip
        if sheets and sheet not in sheets:
            sheet = sheets[0]
        table = open_table(job.file.path, known=layouts.known_headers(job.kind),
                           sheet=sheet or None)  # fmt: skip
    except (UnreadableFile, OSError) as error:
        messages.error(request, str(error))
        return redirect("imports:imports")
    detected = layouts.detect(job.kind, table.keys, job.options.get("format", "auto"),
                              table.headers)  # fmt: skip
    key = headers_key(job.kind, table.keys)
    saved = _saved_mapping(request.user, job.kind, key)
    same_sheet = sheet == (job.options.get("sheet") or (sheets[0] if sheets else ""))
    current = {int(i): f for i, f in (job.options.get("mapping") or {}).items()} \
        if same_sheet else {}  # fmt: skip
    used_saved = None
    if not current and saved and detected.layout == "custom":
        current = {int(i): f for i, f in saved.mapping.items()}
        used_saved = saved
    current = current or detected.columns
    if request.method == "POST":
        chosen = {}
        for index in range(len(table.headers)):
            name = request.POST.get(f"col{index}", "")
            if name in FIELDS[job.kind] and name not in chosen.values():
                chosen[index] = name
        missing = [f for f in layouts.REQUIRED[job.kind] if f not in chosen.values()]
        if missing:
            messages.error(request, _("Choose a column for: %s") % ", ".join(missing))
        else:
            changed = chosen != detected.columns
            job.options = {**job.options, "sheet": sheet if sheets else "",
                           "mapping": {str(i): f for i, f in chosen.items()}
                           if changed else None}  # fmt: skip
            job.save(update_fields=["options"])
            if changed:
                SavedMapping.objects.update_or_create(
                    kind=job.kind, headers_key=key, created_by=request.user,
                    defaults={"headers": table.headers, "shared": request.POST.get("share")
                              == "on", "mapping": {str(i): f for i, f in chosen.items()}},
                )  # fmt: skip
            enqueue(job, dry_run=True)
            return redirect("imports:job", job.pk)
    columns = []
    for index, header in enumerate(table.headers):
        suggestion = None
        if index not in current and header:
            suggestion = layouts.suggest(job.kind, header)
        columns.append({"index": index, "header": header or "—", "field": current.get(index),
                        "suggestion": suggestion,
                        "history": detected.date_entered.get(index)})  # fmt: skip
    mine = saved if saved and saved.created_by_id == request.user.pk else None  # first if any
    return render(request, "imports/mapping.html", {
        "job": job, "columns": columns, "fields": FIELDS[job.kind], "layout": detected.layout,
        "layout_name": layouts.layout_name(detected.layout),
        "header_row": table.header_row, "required": layouts.REQUIRED[job.kind],
        "sheets": sheets, "sheet": sheet, "used_saved": used_saved,
        "shared": bool(mine and mine.shared),
    })  # fmt: skip


@login_required
def job(request, job_id):
    """One import: progress while it runs (the htmx fragment polls), then its report."""
    _gate(request)
    job = get_object_or_404(_jobs(request.user), pk=job_id)
    # The report's file column: the job's own file by its name, the others by what they
    # are (an opportunity import's history and accounts files).
    files = {"history": _("stage history file"), "accounts": _("accounts file"),
             job.kind: job.original_name or job.get_kind_display()}  # fmt: skip
    errors = [{**e, "file": files.get(e.get("file"), e.get("file"))} for e in job.errors or ()]
    context = {"job": job, "active": job.status in ACTIVE, "errors": errors,
               "layout": layouts.layout_name(job.layout)}  # fmt: skip
    if request.htmx:
        return render(request, "imports/job.html#status", context)
    return render(request, "imports/job.html", context)


@login_required
@require_POST
def run(request, job_id):
    """Start the real run after a dry run (or resume a stopped one)."""
    _gate(request)
    job = get_object_or_404(_jobs(request.user), pk=job_id)
    if (
        job.status in ACTIVE
        or job.status == JobStatus.UNDONE
        or (job.status == JobStatus.DONE and not job.dry_run)
    ):
        messages.error(request, _("This import is %s.") % job.get_status_display())
    else:
        enqueue(job, dry_run=False)
    return redirect("imports:job", job.pk)


@login_required
@require_POST
def undo_view(request, job_id):
    """Undo an import, after the confirmation on the page."""
    _gate(request)
    job = get_object_or_404(_jobs(request.user), pk=job_id)
    try:
        undo(job, actor=request.user)
        messages.success(request, _("The import was undone."))
    except ServiceError as error:
        messages.error(request, error.message)
    return redirect("imports:job", job.pk)
