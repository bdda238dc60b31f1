"""Import jobs and saved column mappings.

An ImportJob is one file (plus its companion files: stage history, accounts) brought in
by one user: the dry-run report, then the run, its progress, where it stopped, what it
created (for undo) and what it changed (with the values before, for undo).
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportKind(models.TextChoices):
    ACCOUNTS = "accounts", _("Accounts")
    CONTACTS = "contacts", _("Contacts")
    LEADS = "leads", _("Leads")
    OPPORTUNITIES = "opportunities", _("Opportunities")
    ACTIVITIES = "activities", _("Activities")
    ORDERS = "orders", _("Contracts and orders")
    PAYMENTS = "payments", _("Payments")


class JobStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    CHECKED = "checked", _("Checked (dry run)")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    REFUSED = "refused", _("Refused: rows with errors")
    FAILED = "failed", _("Failed")
    UNDONE = "undone", _("Undone")


class OnDuplicate(models.TextChoices):
    SKIP = "skip", _("Skip the row")
    UPDATE = "update", _("Update the existing record")
    CREATE = "create", _("Create another record")


class ImportJob(models.Model):
    """One import: its files, options, status, counts, row errors, progress, and the
    records it created and updated (for undo)."""

    kind = models.CharField(_("kind"), max_length=20, choices=ImportKind.choices)
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/", max_length=300)
    history_file = models.FileField(
        _("stage history file"), upload_to="imports/%Y/%m/", max_length=300, blank=True
    )
    accounts_file = models.FileField(
        _("accounts file"), upload_to="imports/%Y/%m/", max_length=300, blank=True
    )
    original_name = models.CharField(_("file name"), max_length=255, blank=True)
    layout = models.CharField(_("layout"), max_length=20, default="auto")
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    options = models.JSONField(_("options"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=JobStatus.choices, default=JobStatus.UPLOADED
    )
    dry_run = models.BooleanField(_("dry run"), default=False)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    errors = models.JSONField(_("row errors"), default=list, blank=True)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    done_rows = models.PositiveIntegerField(_("rows done"), default=0)
    # The last source row committed (skip-bad-rows mode): a resumed run starts after it.
    resume_after_row = models.PositiveIntegerField(_("committed up to row"), default=0)
    created_objects = models.JSONField(default=dict, blank=True, editable=False)
    updated_objects = models.JSONField(default=list, blank=True, editable=False)
    message = models.TextField(_("message"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def progress(self) -> int:
        """Percent done, for the progress bar."""
        if not self.total_rows:
            return 100 if self.status == JobStatus.DONE else 0
        return min(100, self.done_rows * 100 // self.total_rows)


class SavedMappingQuerySet(models.QuerySet):
    def offered_to(self, user):
        """The mappings ``user`` may reuse: their own, and those a colleague shared."""
        return self.filter(models.Q(created_by=user) | models.Q(shared=True))


class SavedMapping(models.Model):
    """A column mapping a user confirmed for a set of headers, offered again the next
    time a file with the same headers arrives: to that user, and — when they shared it —
    to everyone who imports (a mapping holds header names and field choices, no data)."""

    kind = models.CharField(_("kind"), max_length=20, choices=ImportKind.choices)
    headers_key = models.CharField(max_length=64, db_index=True)
    headers = models.JSONField(default=list)
    mapping = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, related_name="+"
    )
    shared = models.BooleanField(
        _("shared with colleagues"),
        default=False,
        help_text=_("Offer this mapping to everyone who imports, not only to you."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = SavedMappingQuerySet.as_manager()

    class Meta:
        verbose_name = _("saved column mapping")
        verbose_name_plural = _("saved column mappings")
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "headers_key", "created_by"], name="imports_mapping_per_user"
            )
        ]

    def __str__(self):
        return f"{self.kind}: {', '.join(self.headers)[:60]}"
