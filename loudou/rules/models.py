"""Follow-up rules as data (DOMAIN §6) and the breaches they find.

A rule says what it applies to (leads, accounts by grade, opportunities by pipeline and
stage), what is required (first contact within N hours, a contact every N days, at least
N contacts before closing, a task of type X when an activity has outcome Y, days in stage
under the stage's limit, revisit intervals, important-day greetings) and what happens on
a breach (remind the owner, tell the manager, create a task, return to the pool).

A :class:`Breach` is one subject failing one rule for one period. Its ``key`` (rule,
subject, period) is unique, so a sweep run twice — or by two workers at once — stores a
breach once; it is resolved (``resolved_at``) when the requirement is met.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loudou.core.models import TimeStampedModel, VersionedModel


class AppliesTo(models.TextChoices):
    LEAD = "lead", _("Leads")
    ACCOUNT = "account", _("Accounts")
    OPPORTUNITY = "opportunity", _("Opportunities")


class Requirement(models.TextChoices):
    FIRST_CONTACT_WITHIN = "first_contact", _("First contact within N hours")
    CONTACT_EVERY = "contact_every", _("A contact every N days")
    CONTACTS_BEFORE_LOST = "contacts_before_lost", _("At least N contacts before closing as lost")
    TASK_ON_OUTCOME = "task_on_outcome", _("Tasks when an activity has an outcome")
    STALE_IN_STAGE = "stale", _("Days in stage under the stage's limit")
    REVISIT = "revisit", _("Revisit interval of the account's class")
    GREETING = "greeting", _("Greeting on an important day")


class FollowUpRule(TimeStampedModel, VersionedModel):
    name = models.CharField(_("name"), max_length=200)
    name_en = models.CharField(_("name in English"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    position = models.PositiveIntegerField(_("order"), default=0)
    applies_to = models.CharField(_("applies to"), max_length=12, choices=AppliesTo.choices)
    requirement = models.CharField(_("requirement"), max_length=24, choices=Requirement.choices)
    amount = models.PositiveIntegerField(
        _("N"), null=True, blank=True, help_text=_("Hours, days or contacts, per requirement.")
    )
    conditions = models.JSONField(
        _("conditions"), default=dict, blank=True,
        help_text=_("Which records: grades, pipeline, stages, lead statuses, sources..."),
    )  # fmt: skip
    use_working_hours = models.BooleanField(_("count working hours only"), default=False)
    remind_owner = models.BooleanField(_("remind the owner"), default=True)
    tell_manager = models.BooleanField(_("tell the manager"), default=False)
    create_task = models.BooleanField(_("create a task"), default=False)
    return_to_pool = models.BooleanField(_("return to the pool"), default=False)

    class Meta:
        verbose_name = _("follow-up rule")
        verbose_name_plural = _("follow-up rules")
        ordering = ["position", "pk"]

    def __str__(self):
        return self.name


class BreachQuerySet(models.QuerySet):
    def open(self):
        return self.filter(resolved_at__isnull=True)


class Breach(models.Model):
    rule = models.ForeignKey(
        FollowUpRule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="breaches"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT,
        related_name="breaches",
    )  # fmt: skip
    lead = models.ForeignKey(
        "leads.Lead", verbose_name=_("lead"), on_delete=models.CASCADE, null=True, blank=True,
        related_name="breaches",
    )  # fmt: skip
    account = models.ForeignKey(
        "customers.Account", verbose_name=_("account"), on_delete=models.CASCADE, null=True,
        blank=True, related_name="breaches",
    )  # fmt: skip
    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.CASCADE,
        null=True, blank=True, related_name="breaches",
    )  # fmt: skip
    due_at = models.DateTimeField(_("was due"))
    opened_at = models.DateTimeField(_("found"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolution = models.CharField(_("resolution"), max_length=40, blank=True)
    key = models.CharField(_("dedupe key"), max_length=200, unique=True)

    objects = BreachQuerySet.as_manager()

    class Meta:
        verbose_name = _("rule breach")
        verbose_name_plural = _("rule breaches")
        ordering = ["due_at", "pk"]
        indexes = [
            models.Index(
                fields=["owner", "due_at"],
                condition=Q(resolved_at__isnull=True),
                name="breach_open_owner_due",
            ),  # fmt: skip
        ]

    def __str__(self):
        return f"{self.rule} · {self.subject}"

    @property
    def subject(self):
        return self.opportunity or self.lead or self.account
