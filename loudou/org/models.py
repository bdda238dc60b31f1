"""The sales organisation: users and their roles, teams and regions (both trees), and
API tokens. Roles and the team tree decide what each user sees (core.VisibleQuerySet)."""

import hashlib
import secrets
from datetime import date

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from loudou.core.tree import TreeNode


class Team(TreeNode):
    """A sales team. Teams form a tree; a manager of a team sees its whole subtree."""

    class Meta(TreeNode.Meta):
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("org:team", args=[self.pk])


class Region(TreeNode):
    """A sales region (华东区 → 上海, 江苏 …). Leads and accounts are routed by region."""

    code = models.SlugField(_("code"), max_length=40, blank=True)

    class Meta(TreeNode.Meta):
        verbose_name = _("region")
        verbose_name_plural = _("regions")


class Role(models.TextChoices):
    REP = "rep", _("Sales rep")
    MANAGER = "manager", _("Manager")
    ADMIN = "admin", _("Administrator")


class Level(models.TextChoices):
    TRAINEE = "trainee", _("Trainee")
    JUNIOR = "junior", _("Junior")
    SENIOR = "senior", _("Senior")
    LEAD = "lead", pgettext_lazy("seniority level", "Lead")


class LoudouUserManager(UserManager):
    def active(self):
        return self.filter(is_active=True, left_on__isnull=True)

    def visible_to(self, user):
        """Colleagues a user may look up: admins all, managers their subtree, reps their
        own team (to share records with teammates)."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.sees_everything:
            return self.all()
        if user.managed_team_path:
            return self.filter(
                models.Q(team__path__startswith=user.managed_team_path) | models.Q(pk=user.pk)
            )
        if user.team_id:
            return self.filter(models.Q(team_id=user.team_id) | models.Q(pk=user.pk))
        return self.filter(pk=user.pk)


class User(AbstractUser):
    """A person who uses Loudou. The profile (team, region, level, tenure) lives here
    rather than in a separate table: every permission check needs it, so it must not
    cost a join."""

    name = models.CharField(_("full name"), max_length=100, blank=True)
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.REP)
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="members",
    )
    region = models.ForeignKey(
        Region,
        verbose_name=_("region"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="members",
    )
    level = models.CharField(_("level"), max_length=10, choices=Level.choices, default=Level.JUNIOR)
    phone = models.CharField(_("mobile"), max_length=30, blank=True)
    hire_date = models.DateField(_("hire date"), null=True, blank=True)
    left_on = models.DateField(
        _("left on"), null=True, blank=True, help_text=_("Set when the person leaves.")
    )
    language = models.CharField(
        _("language"),
        max_length=10,
        choices=settings.LANGUAGES,
        blank=True,
        help_text=_("Empty: follow the browser."),
    )

    objects = LoudouUserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["username"]

    def __str__(self):
        return self.name or self.get_full_name() or self.username

    def get_full_name(self):
        return self.name or super().get_full_name()

    def get_short_name(self):
        return self.name or self.first_name or self.username

    @property
    def sees_everything(self) -> bool:
        return self.is_superuser or self.role == Role.ADMIN

    @property
    def is_manager(self) -> bool:
        return self.role == Role.MANAGER

    @property
    def is_admin(self) -> bool:
        return self.sees_everything

    @cached_property
    def managed_team_path(self) -> str:
        """The team path whose subtree this user manages, or '' for none."""
        if self.role == Role.MANAGER and self.team_id:
            return self.team.path
        return ""

    @property
    def has_left(self) -> bool:
        return self.left_on is not None

    def tenure_months(self, on: date | None = None) -> int | None:
        """Whole months since hire, for the onboarding roadmap."""
        if self.hire_date is None:
            return None
        on = on or timezone.localdate()
        months = (on.year - self.hire_date.year) * 12 + on.month - self.hire_date.month
        if on.day < self.hire_date.day:
            months -= 1
        return max(months, 0)


class ApiToken(models.Model):
    """A bearer token for scripts. Only a hash is stored; the token is shown once."""

    PREFIX = "ld_"

    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(_("hint"), max_length=12, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.user} · {self.hint}…"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def new_key(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)


def assignable_owners(actor: User):
    """Who ``actor`` may make the owner of a record: a rep only themself, a manager
    anyone active in their subtree, an admin anyone active."""
    active = User.objects.filter(is_active=True, left_on__isnull=True)
    if actor.sees_everything:
        return active
    if actor.managed_team_path:
        return active.filter(
            models.Q(team__path__startswith=actor.managed_team_path) | models.Q(pk=actor.pk)
        )
    return active.filter(pk=actor.pk)


class HandOver(models.Model):
    """One hand-over of everything a rep owned (DOMAIN §10): to whom, into which pool,
    how many records of each kind. Written by org/handover.py; append-only.

    ``to_user`` is the receiver when one person received everything; a split hand-over
    leaves it empty and ``shares`` says who (or which pool) received how many of each
    kind; :class:`HandOverItem` rows name every record moved and where it went."""

    from_user = models.ForeignKey(
        User, verbose_name=_("from"), on_delete=models.PROTECT, related_name="handovers_given"
    )
    to_user = models.ForeignKey(
        User,
        verbose_name=_("to"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="handovers_received",
    )
    pool_name = models.CharField(_("open leads into pool"), max_length=100, blank=True)
    counts = models.JSONField(_("records moved"), default=dict)
    # [{"label": "customers.account", "to_id": 5 | None, "pool_id": 2 | None, "count": 3}]
    shares = models.JSONField(_("who received what"), default=list, blank=True)
    deactivated = models.BooleanField(_("deactivated the user"), default=False)
    by = models.ForeignKey(
        User,
        verbose_name=_("by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("hand-over")
        verbose_name_plural = _("hand-overs")
        ordering = ["-at", "-pk"]

    def __str__(self):
        return f"{self.from_user} → {self.to_user or self.pool_name}"

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("org:handover-detail", args=[self.pk])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def receiver_ids(self) -> list[int]:
        """Everyone who received records, in order of their first share."""
        seen = [s["to_id"] for s in self.shares if s.get("to_id")]
        return list(dict.fromkeys(seen)) or ([self.to_user_id] if self.to_user_id else [])

    def moved_to(self, label: str) -> dict[int, int | None]:
        """{object id: receiving user id (None: into a pool)} for the records of kind
        ``label`` ("tasks.task") this hand-over moved."""
        return dict(self.items.filter(model=label).values_list("object_id", "to_user_id"))


class HandOverItem(models.Model):
    """One record a hand-over moved: its kind and id, and who (or which pool) got it —
    the record's own hand-over history. Written in bulk by org/handover.py."""

    handover = models.ForeignKey(
        HandOver, verbose_name=_("hand-over"), on_delete=models.CASCADE, related_name="items"
    )
    model = models.CharField(_("record type"), max_length=100)
    object_id = models.PositiveBigIntegerField(_("record"))
    to_user = models.ForeignKey(
        User,
        verbose_name=_("to"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    pool_id = models.PositiveBigIntegerField(_("into pool"), null=True, blank=True)

    class Meta:
        verbose_name = _("handed-over record")
        verbose_name_plural = _("handed-over records")
        indexes = [models.Index(fields=["model", "object_id"], name="handoveritem_record")]

    def __str__(self):
        return f"{self.model} {self.object_id}"
