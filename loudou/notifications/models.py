"""Notifications: one row per message to one user, read or unread; the channels that
carry them further (e-mail, chat webhooks) and each delivery through one.

The bell in the navigation bar counts a user's unread rows with one indexed COUNT
(the partial index ``notification_unread``). A notification may carry a ``key``: the
database keeps at most one row per (user, key), so a sweep that runs twice, or two
workers running it at once, notify once.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loudou.core.models import TimeStampedModel, VersionedModel

from .choices import FINAL_STATUSES, DeliveryStatus, Flavour


class NotificationQuerySet(models.QuerySet):
    def for_user(self, user):
        """The user's own notifications; nobody sees anyone else's."""
        if user is None or not user.is_authenticated:
            return self.none()
        return self.filter(user=user)

    def unread(self):
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    """A message to one user ("3 leads return to the pool in 3 days", "You received a
    lead"), with a link to what it is about."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    kind = models.CharField(_("kind"), max_length=40, blank=True)
    text = models.CharField(_("text"), max_length=500)
    url = models.CharField(_("link"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    key = models.CharField(
        _("dedupe key"),
        max_length=200,
        blank=True,
        help_text=_("At most one notification per user and key."),
    )

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "key"],
                condition=~Q(key=""),
                name="notification_user_key",
            )
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_user_created"),
            models.Index(
                fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread"
            ),
        ]

    def __str__(self):
        return self.text

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("notifications:open", args=[self.pk])

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class ChannelQuerySet(models.QuerySet):
    def webhooks(self):
        return self.exclude(flavour=Flavour.EMAIL)

    def visible_to(self, user):
        """The channels ``user`` may see and configure: their own (e-mail and personal
        webhooks: nobody else's, not even an admin's), plus the team webhooks of the
        teams they manage (a manager: their team's subtree; an admin: every team). A
        rep sees no team webhook: its URL lets anyone post into the group chat."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        scope = Q(user=user)
        if user.sees_everything:
            scope |= Q(team__isnull=False)
        elif user.managed_team_path:
            scope |= Q(team__path__startswith=user.managed_team_path)
        return self.filter(scope)


class Channel(TimeStampedModel, VersionedModel):
    """Where notifications go besides the inbox: one user's e-mail (at most one such row
    per user), a user's own chat webhook, or a team's chat webhook (set up by the team's
    manager or an admin), which receives the notifications of the team's members
    (optionally of its sub-teams too), each posted as "@name: text"."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notification_channels",
    )
    team = models.ForeignKey(
        "org.Team",
        verbose_name=_("team"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notification_channels",
    )
    include_subteams = models.BooleanField(
        _("include sub-teams"),
        default=False,
        help_text=_("Also post the notifications of the members of the teams below it."),
    )
    flavour = models.CharField(_("type"), max_length=10, choices=Flavour.choices)
    name = models.CharField(_("name"), max_length=100, blank=True)
    url = models.CharField(_("webhook URL"), max_length=500, blank=True)
    secret = models.CharField(_("signing secret"), max_length=200, blank=True)
    kinds = models.JSONField(
        _("notification kinds"),
        default=list,
        blank=True,
        help_text=_("Empty: every kind."),
    )
    active = models.BooleanField(_("active"), default=True)
    last_status = models.CharField(
        _("last status"), max_length=10, choices=DeliveryStatus.choices, blank=True
    )
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = ChannelQuerySet.as_manager()

    class Meta:
        verbose_name = _("notification channel")
        verbose_name_plural = _("notification channels")
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, team__isnull=True)
                | Q(user__isnull=True, team__isnull=False),
                name="channel_user_or_team",
            ),
            models.CheckConstraint(
                condition=~Q(flavour="email") | Q(user__isnull=False),
                name="channel_email_is_personal",
            ),
            models.UniqueConstraint(
                fields=["user"], condition=Q(flavour="email"), name="channel_one_email_per_user"
            ),
        ]

    def __str__(self):
        if self.flavour == Flavour.EMAIL:
            return str(_("E-mail"))
        return self.name or self.get_flavour_display()

    @property
    def is_email(self) -> bool:
        return self.flavour == Flavour.EMAIL

    @property
    def has_secret(self) -> bool:
        return bool(self.secret)

    def takes(self, kind: str) -> bool:
        """Whether a notification of ``kind`` goes through this channel."""
        return not self.kinds or kind in self.kinds

    def reaches(self, team_path: str) -> bool:
        """Whether this team channel receives the notifications of a member of the team
        at ``team_path`` (its own team, or a sub-team when ``include_subteams``)."""
        if self.team_id is None or not team_path:
            return False
        own = self.team.path
        return team_path == own or (self.include_subteams and team_path.startswith(own))


class DeliveryQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Deliveries through the channels ``user`` may see."""
        return self.filter(channel__in=Channel.objects.visible_to(user).values("pk"))

    def due(self, now, *, lease):
        """Rows a worker may claim now: waiting or failed ones whose time has come, and
        ones claimed longer than ``lease`` ago by a worker that must have died."""
        return self.filter(
            Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED], next_attempt_at__lte=now)
            | Q(status=DeliveryStatus.SENDING, claimed_at__lt=now - lease)
        )


class Delivery(models.Model):
    """One notification through one channel (or a channel's test message, without a
    notification): its status and attempts. At most one row per notification and
    channel, so handing the same notification over twice delivers it once. A worker
    claims a row with one conditional UPDATE before sending, so two workers never send
    the same row."""

    notification = models.ForeignKey(
        Notification,
        verbose_name=_("notification"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
    )
    channel = models.ForeignKey(
        Channel, verbose_name=_("channel"), on_delete=models.CASCADE, related_name="deliveries"
    )
    is_test = models.BooleanField(_("test message"), default=False)
    language = models.CharField(_("language"), max_length=10, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "channel"],
                condition=Q(notification__isnull=False),
                name="delivery_once_per_channel",
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["channel", "-created_at"], name="delivery_channel_recent"),
        ]

    def __str__(self):
        return f"{self.channel} · {self.get_status_display()}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES
