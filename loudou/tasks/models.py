"""Tasks (待办): something to do by a due time — call back, send the WeChat message,
visit — for one or several people, linked like an activity to a lead, account, contact
and/or opportunity. Follow-up rules create tasks too (``rule``/``breach``, ``key``).

``owner`` is the person responsible (who sees it as theirs, who hand-over moves it from);
``assignees`` is everyone who should do it and always includes the owner
(services.create_task). "My tasks" and "my calendar" are the tasks I am an assignee of.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loudou.activities.choices import Kind
from loudou.core.models import OwnedModel, VersionedModel, VisibleQuerySet


class Source(models.TextChoices):
    MANUAL = "manual", _("Entered by hand")
    RULE = "rule", _("Follow-up rule")


class TaskQuerySet(VisibleQuerySet):
    def open(self):
        return self.filter(done_at__isnull=True)

    def assigned_to(self, user):
        return self.filter(assignees=user)


class Task(OwnedModel, VersionedModel):
    title = models.CharField(_("title"), max_length=200)
    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices, default=Kind.OTHER)
    notes = models.TextField(_("notes"), blank=True)
    due_at = models.DateTimeField(_("due"), default=timezone.now)
    all_day = models.BooleanField(_("all day"), default=False)
    remind_at = models.DateTimeField(_("remind at"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminder sent"), null=True, blank=True)
    assignees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("assignees"), related_name="assigned_tasks",
        blank=True,
    )  # fmt: skip
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("done by"), on_delete=models.SET_NULL,
        null=True, blank=True, related_name="+",
    )  # fmt: skip
    lead = models.ForeignKey(
        "leads.Lead", verbose_name=_("lead"), on_delete=models.CASCADE, null=True, blank=True,
        related_name="tasks",
    )  # fmt: skip
    account = models.ForeignKey(
        "customers.Account", verbose_name=_("account"), on_delete=models.CASCADE, null=True,
        blank=True, related_name="tasks",
    )  # fmt: skip
    contact = models.ForeignKey(
        "customers.Contact", verbose_name=_("contact"), on_delete=models.SET_NULL, null=True,
        blank=True, related_name="tasks",
    )  # fmt: skip
    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.CASCADE,
        null=True, blank=True, related_name="tasks",
    )  # fmt: skip
    source = models.CharField(
        _("source"), max_length=10, choices=Source.choices, default=Source.MANUAL
    )
    origin_activity = models.ForeignKey(
        "activities.Activity", verbose_name=_("caused by activity"), on_delete=models.SET_NULL,
        null=True, blank=True, related_name="follow_up_tasks",
    )  # fmt: skip
    breach = models.ForeignKey(
        "rules.Breach", verbose_name=_("rule breach"), on_delete=models.SET_NULL, null=True,
        blank=True, related_name="tasks",
    )  # fmt: skip
    key = models.CharField(
        _("dedupe key"), max_length=200, blank=True,
        help_text=_("At most one task per key: a rule that fires twice creates one task."),
    )  # fmt: skip

    objects = TaskQuerySet.as_manager()

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["due_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["key"], condition=~Q(key=""), name="task_key"),
        ]
        indexes = [
            models.Index(
                fields=["owner", "due_at"],
                condition=Q(done_at__isnull=True),
                name="task_open_owner_due",
            ),  # fmt: skip
            models.Index(fields=["due_at"], name="task_due_idx"),
            models.Index(
                fields=["remind_at"],
                condition=Q(reminded_at__isnull=True, done_at__isnull=True),
                name="task_reminder_due",
            ),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("tasks:task", args=[self.pk])

    @property
    def is_done(self) -> bool:
        return self.done_at is not None

    @property
    def is_overdue(self) -> bool:
        return self.done_at is None and self.due_at < timezone.now()

    @property
    def subject(self):
        return self.opportunity or self.lead or self.contact or self.account
