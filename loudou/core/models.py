"""Base models shared by every domain app: timestamps, ownership, optimistic versions.

The access gate lives here: every owned model uses :class:`VisibleQuerySet`, and every
lookup a user makes goes through ``Model.objects.visible_to(user)`` (DESIGN.md rule 2).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class TimeStampedModel(models.Model):
    """Adds creation and last-change timestamps."""

    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        abstract = True


def owner_scope(user, field: str = "owner") -> Q:
    """Rows whose ``field`` is ``user`` or, for a manager, anyone in their team's subtree
    (the owner part of every ``visible_to``; the caller handles admins and the
    anonymous)."""
    scope = Q(**{field: user})
    if user.managed_team_path:
        scope |= Q(**{f"{field}__team__path__startswith": user.managed_team_path})
    return scope


class VisibleQuerySet(models.QuerySet):
    """A queryset that knows who may see which rows.

    Scopes (docs/permissions.md): an admin sees everything; a manager sees what is owned
    by anyone in their team's subtree; a rep sees what they own. Everybody also sees what
    has been shared with them by name (``shared_with``). Anonymous and deactivated users
    see nothing.
    """

    def visible_to(self, user):
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.sees_everything:
            return self.all()
        scope = owner_scope(user)
        through = self.model.shared_with.through
        own_field = f"{self.model._meta.model_name}_id"
        shared = through.objects.filter(user=user).values(own_field)
        scope |= Q(pk__in=shared)
        return self.filter(scope)


def sees(user, obj) -> bool:
    """Whether ``type(obj).objects.visible_to(user)`` holds ``obj``. Every
    VisibleQuerySet lets an active user see what they own (subclasses only add to it), so
    the usual case — a user's own record, or a record whose owned parent is at hand
    without a query (a contact's cached account) — needs no query; anything else asks
    the database."""
    if obj.pk is None or user is None or not user.is_authenticated or not user.is_active:
        return False
    owned = obj
    parent = getattr(type(obj), "visible_through", None)
    if parent is not None:
        field = type(obj)._meta.get_field(parent)
        owned = getattr(obj, parent) if field.is_cached(obj) else None
    if (
        owned is not None
        and isinstance(type(owned)._default_manager.all(), VisibleQuerySet)
        and getattr(owned, "owner_id", None) == user.pk
    ):
        return True
    return type(obj)._default_manager.visible_to(user).filter(pk=obj.pk).exists()


class OwnedModel(TimeStampedModel):
    """A record with an owner (the responsible rep) and people it is shared with.

    ``owner`` may be empty for records that sit in a public pool; only admins see those
    until the pool rules of the leads module grant more.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    shared_with = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("shared with"),
        related_name="+",
        blank=True,
        help_text=_("Colleagues who may see and work on this record."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        related_name="+",
        null=True,
        blank=True,
    )

    objects = VisibleQuerySet.as_manager()

    class Meta:
        abstract = True


class VersionedModel(models.Model):
    """Optimistic locking: every write bumps ``version``; a write carrying an older
    version is refused (:func:`loudou.core.services.check_version`)."""

    version = models.PositiveIntegerField(_("version"), default=1)

    class Meta:
        abstract = True


class ScheduledJob(models.Model):
    """When a periodic job (core/schedule.py) runs next. The scheduler enqueues a job
    only by moving ``next_run_at`` forward with one conditional UPDATE, so two
    schedulers running at once enqueue each tick exactly once."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True)
    last_enqueued_at = models.DateTimeField(_("last enqueued"), null=True, blank=True)

    class Meta:
        verbose_name = _("scheduled job")
        verbose_name_plural = _("scheduled jobs")
        ordering = ["name"]

    def __str__(self):
        return self.name
