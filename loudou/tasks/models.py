"""Tasks (待办): something to do by a due time — call back, send the WeChat message,
visit — for one or several people, linked like an activity to a lead, account, contact
and/or opportunity. Follow-up rules create tasks too (``rule``/``breach``, ``key``).

``owner`` is the person responsible (who sees it as theirs, who hand-over moves it from);
``assignees`` is everyone who should do it and always includes the owner
(services.create_task). "My tasks" and "my calendar" are the tasks I am an assignee of.

Who sees a task: whoever sees it as an owned record (its owner, their managers, admins,
the people it is shared with) and every assignee. All-day tasks are due at the end of
their local day (23:59:59), so they become overdue when the day is over.
"""

import secrets
from datetime import timedelta

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
    def visible_to(self, user):
        """Own / team subtree / shared (the owned-record scope), plus every task the user
        is an assignee of. Written with subqueries on ids rather than joins, so that the
        database evaluates each one once and no row comes back twice."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.sees_everything:
            return self.all()
        from loudou.org.models import User

        if user.managed_team_path:
            team = User.objects.filter(team__path__startswith=user.managed_team_path)
            scope = Q(owner_id=user.pk) | Q(owner_id__in=team.values("pk"))
        else:
            scope = Q(owner_id=user.pk)
        shared = self.model.shared_with.through.objects.filter(user=user)
        scope |= Q(pk__in=shared.values("task_id"))
        assigned = self.model.assignees.through.objects.filter(user=user)
        scope |= Q(pk__in=assigned.values("task_id"))
        return self.filter(scope)

    def open(self):
        return self.filter(done_at__isnull=True)

    def done(self):
        return self.filter(done_at__isnull=False)

    def overdue(self, now=None):
        return self.open().filter(due_at__lt=now or timezone.now())

    def due_between(self, start, end):
        """Due in [start, end) (aware datetimes)."""
        return self.filter(due_at__gte=start, due_at__lt=end)

    def assigned_to(self, user):
        return self.filter(assignees=user)

    def assigned_to_any(self, users):
        """Tasks any of ``users`` (a queryset or ids) is an assignee of, each once."""
        through = self.model.assignees.through.objects.filter(user__in=users)
        return self.filter(pk__in=through.values("task_id"))

    def on(self, subject):
        """The tasks linked to ``subject`` (a lead, account, contact or opportunity)."""
        name = subject._meta.model_name
        if name not in ("lead", "account", "contact", "opportunity"):
            raise TypeError(f"Tasks are not linked to {name}.")
        return self.filter(**{name: subject})


class Task(OwnedModel, VersionedModel):
    """Something to do by ``due_at`` for the ``assignees`` (the owner among them),
    optionally reminded at ``remind_at`` and linked to the records it is about."""

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

    def is_due_on(self, day) -> bool:
        """Whether the task is due on the local ``day``."""
        return timezone.localdate(self.due_at) == day


FEED_TOKEN_BYTES = 24


def new_feed_token() -> str:
    return secrets.token_urlsafe(FEED_TOKEN_BYTES)


class CalendarFeed(models.Model):
    """A user's secret calendar address (``/tasks/feed/<token>.ics``): whoever knows
    the token reads that user's tasks without logging in, so it is long and random,
    and regenerating it (services.regenerate_feed) makes the old address a 404. The
    token is kept in clear because the calendar page shows the address again."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE,
        related_name="calendar_feed",
    )  # fmt: skip
    token = models.CharField(_("token"), max_length=64, unique=True, default=new_feed_token)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("calendar feed")
        verbose_name_plural = _("calendar feeds")

    def __str__(self):
        return f"{self.user} · {self.token[:4]}…"

    def get_absolute_url(self):
        return reverse("tasks:feed", args=[self.token])


# How far back done tasks stay in the calendar feed.
FEED_DONE_DAYS = 30
FEED_DONE_WINDOW = timedelta(days=FEED_DONE_DAYS)
