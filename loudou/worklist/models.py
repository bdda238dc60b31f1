"""Today's work (DOMAIN §7): the rep's fixed prospecting time and the PDCA daily plan.

The worklist itself has no table: it is computed from tasks, breaches, contracts,
opportunities, leads and accounts on every request (queries.py).

A :class:`DailyPlan` is one person's plan of one day — Plan: up to seven
:class:`PlanItem` rows (key / routine / ad hoc); Do: each item's status and record;
Check: problems, risks, countermeasures; Act: the three reflection questions. Item
positions run from 1 to 7 and are unique per plan, so the database itself refuses an
eighth item.
"""

from datetime import time

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loudou.core.models import TimeStampedModel, VersionedModel

from .choices import Category, ItemStatus

MAX_ITEMS = 7
DEFAULT_PROSPECTING = (time(9, 30), time(11, 0))


class WorklistSettings(VersionedModel):
    """A person's daily prospecting block (seed 000: fixed time every day for new
    customers, "as solid as a rock"); shown on the worklist."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE,
        related_name="worklist_settings",
    )  # fmt: skip
    prospecting_start = models.TimeField(_("prospecting from"), default=DEFAULT_PROSPECTING[0])
    prospecting_end = models.TimeField(_("prospecting until"), default=DEFAULT_PROSPECTING[1])

    class Meta:
        verbose_name = _("worklist settings")
        verbose_name_plural = _("worklist settings")
        constraints = [
            models.CheckConstraint(
                condition=Q(prospecting_end__gt=models.F("prospecting_start")),
                name="worklist_prospecting_order",
            )
        ]

    def __str__(self):
        return f"{self.user} {self.prospecting_start:%H:%M}–{self.prospecting_end:%H:%M}"


class DailyPlan(TimeStampedModel, VersionedModel):
    """One person's PDCA plan of one day. ``version`` guards the Check and Act texts;
    each item has its own (services.py)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE,
        related_name="daily_plans",
    )  # fmt: skip
    day = models.DateField(_("day"))
    # Check
    problems = models.TextField(_("problems found"), blank=True)
    risks = models.TextField(_("potential risks"), blank=True)
    countermeasures = models.TextField(_("countermeasures"), blank=True)
    # Act
    not_finished = models.TextField(_("what did I not finish today?"), blank=True)
    not_done_well = models.TextField(_("what did I not do well today?"), blank=True)
    not_done = models.TextField(_("what did I not do today?"), blank=True)

    class Meta:
        verbose_name = _("daily plan")
        verbose_name_plural = _("daily plans")
        ordering = ["-day", "user"]
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="daily_plan_user_day")]

    def __str__(self):
        return f"{self.user} {self.day:%Y-%m-%d}"


class PlanItem(TimeStampedModel, VersionedModel):
    """One of the (at most seven) items of a daily plan, optionally about a task or a
    record; ``carried_from`` is the unfinished item of an earlier day it continues.
    Items carry their own version, so ticking one item does not make a half-written
    Check/Act form stale."""

    plan = models.ForeignKey(
        DailyPlan, verbose_name=_("plan"), on_delete=models.CASCADE, related_name="items"
    )
    position = models.PositiveSmallIntegerField(_("position"))
    category = models.CharField(
        _("category"), max_length=10, choices=Category.choices, default=Category.KEY
    )
    text = models.CharField(_("item"), max_length=300)
    status = models.CharField(
        _("status"), max_length=10, choices=ItemStatus.choices, default=ItemStatus.PLANNED
    )
    note = models.CharField(_("record"), max_length=500, blank=True)
    task = models.ForeignKey(
        "tasks.Task", verbose_name=_("task"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    lead = models.ForeignKey(
        "leads.Lead", verbose_name=_("lead"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    account = models.ForeignKey(
        "customers.Account", verbose_name=_("account"), on_delete=models.SET_NULL, null=True,
        blank=True, related_name="+",
    )  # fmt: skip
    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.SET_NULL,
        null=True, blank=True, related_name="+",
    )  # fmt: skip
    carried_from = models.ForeignKey(
        "self", verbose_name=_("carried over from"), on_delete=models.SET_NULL, null=True,
        blank=True, related_name="carried_to",
    )  # fmt: skip

    class Meta:
        verbose_name = _("plan item")
        verbose_name_plural = _("plan items")
        ordering = ["plan", "position"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "position"], name="plan_item_position"),
            models.CheckConstraint(
                condition=Q(position__gte=1, position__lte=MAX_ITEMS),
                name="plan_item_at_most_seven",
            ),
        ]

    def __str__(self):
        return self.text

    @property
    def subject(self):
        return self.opportunity or self.lead or self.account or self.task

    @property
    def is_unfinished(self) -> bool:
        return self.status != ItemStatus.DONE
