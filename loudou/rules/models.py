"""Follow-up rules as data (DOMAIN §6) and the breaches they find.

A rule says what it applies to (leads, accounts by grade, opportunities by pipeline and
stage), what is required (first contact within N hours, a contact every N days, at least
N contacts before closing, tasks when an activity has an outcome, days in stage under the
stage's limit, revisit intervals, important-day greetings) and what happens on a breach
(remind the owner, tell the manager, create a task, return to the pool). An account is
also held to its payment plans: a plan line past its due date and not fully paid is a
breach of a "payment overdue" rule (issue 8; the receivables come from loudou.sales).

A :class:`Breach` is one subject failing one rule for one period. Its ``key`` (rule,
subject, clock start, owner) is unique, so a sweep run twice — or by two workers at once
— stores a breach once; it is resolved (``resolved_at``) when the requirement is met or
no longer applies.

The per-subject follow-up state (:class:`LeadFollowUp`, :class:`AccountFollowUp`,
:class:`OpportunityFollowUp`: first and last contact, number of contacts) is kept by the
activity listeners and caught up by every sweep from a watermark, so that "a contact
every N days" over a million accounts is one indexed range query (docs/rules.md).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from loudou.core.models import TimeStampedModel, VersionedModel, owner_scope


class AppliesTo(models.TextChoices):
    LEAD = "lead", _("Leads")
    ACCOUNT = "account", _("Accounts")
    OPPORTUNITY = "opportunity", _("Opportunities")
    ANY = "any", _("Any record")


class Requirement(models.TextChoices):
    FIRST_CONTACT_WITHIN = "first_contact", _("First contact within N hours")
    CONTACT_EVERY = "contact_every", _("A contact every N days")
    CONTACTS_BEFORE_LOST = "contacts_before_lost", _("At least N contacts before closing as lost")
    TASK_ON_OUTCOME = "task_on_outcome", _("Tasks when an activity has an outcome")
    STALE_IN_STAGE = "stale", _("Days in stage under the stage's limit")
    REVISIT = "revisit", _("Revisit interval of the account's class")
    GREETING = "greeting", _("Greeting on an important day")
    PAYMENT_OVERDUE = "payment_overdue", _("Instalments paid on time (N days' grace)")


class Resolution(models.TextChoices):
    """Why an open breach was closed."""

    MET = "met", _("Requirement met")
    MOVED = "moved", _("Moved to another stage")
    CLOSED = "closed", _("Record closed")
    OWNER_CHANGED = "owner_changed", _("Owner changed")
    OUT_OF_SCOPE = "out_of_scope", _("No longer applies")
    RULE_INACTIVE = "rule_inactive", _("Rule switched off")
    EXPIRED = "expired", _("Day passed")


class FollowUpRule(TimeStampedModel, VersionedModel):
    """One follow-up rule. ``conditions`` narrows the records it applies to and holds
    the parameters of some requirements (services.CONDITION_KEYS lists every key)."""

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
        return self.display_name

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("rules:rule", args=[self.pk])

    @property
    def display_name(self) -> str:
        if self.name_en and (translation.get_language() or "").startswith("en"):
            return self.name_en
        return self.name

    def condition(self, key, default=None):
        value = (self.conditions or {}).get(key)
        return default if value in (None, [], "") else value


class BreachQuerySet(models.QuerySet):
    def open(self):
        return self.filter(resolved_at__isnull=True)

    def late(self, now=None):
        """Breaches that count against the owner: due, and not met before they were due
        (a greeting reminder met in time is not one)."""
        now = now or timezone.now()
        return self.filter(due_at__lte=now).filter(
            Q(resolved_at__isnull=True) | Q(resolved_at__gt=models.F("due_at"))
        )

    def visible_to(self, user):
        """A rep sees their own breaches, a manager their team subtree's, an admin all."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.sees_everything:
            return self.all()
        return self.filter(owner_scope(user))


class Breach(models.Model):
    """One subject failing one rule for one period (the clock start ``basis_at``)."""

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
    contact = models.ForeignKey(
        "customers.Contact", verbose_name=_("contact"), on_delete=models.CASCADE, null=True,
        blank=True, related_name="breaches",
    )  # fmt: skip
    due_at = models.DateTimeField(_("was due"))
    basis_at = models.DateTimeField(
        _("clock started"), null=True, blank=True,
        help_text=_("Last contact, ownership, stage entry or greeting window start."),
    )  # fmt: skip
    opened_at = models.DateTimeField(_("found"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolution = models.CharField(
        _("resolution"), max_length=40, blank=True, choices=Resolution.choices
    )
    key = models.CharField(_("dedupe key"), max_length=200, unique=True)
    sweep_run = models.ForeignKey(
        "rules.SweepRun", verbose_name=_("found by sweep"), on_delete=models.SET_NULL,
        null=True, blank=True, related_name="breaches",
    )  # fmt: skip

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
            # "does this subject already have an open breach of this rule": one probe
            models.Index(
                fields=["rule", "lead"],
                condition=Q(resolved_at__isnull=True),
                name="breach_open_rule_lead",
            ),  # fmt: skip
            models.Index(
                fields=["rule", "account"],
                condition=Q(resolved_at__isnull=True),
                name="breach_open_rule_account",
            ),  # fmt: skip
            models.Index(
                fields=["rule", "opportunity"],
                condition=Q(resolved_at__isnull=True),
                name="breach_open_rule_opp",
            ),  # fmt: skip
            # reports: breaches per owner in a period
            models.Index(fields=["due_at", "owner"], name="breach_due_owner"),
        ]

    def __str__(self):
        return f"{self.rule} · {self.subject}"

    def get_absolute_url(self):
        subject = self.subject
        return subject.get_absolute_url() if subject is not None else ""

    @property
    def subject(self):
        return self.opportunity or self.lead or self.contact or self.account

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class FollowUpState(models.Model):
    """Contacts with one subject: when first and last, how many (activities other than
    desk research and cancelled ones). Derived data: rebuilt from the activities at
    will (``loudou rules sweep --rebuild``)."""

    first_contact_at = models.DateTimeField(null=True, blank=True)
    last_contact_at = models.DateTimeField(null=True, blank=True)
    contact_count = models.PositiveIntegerField(default=0)
    last_activity_id = models.BigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self.pk}: {self.contact_count} · {self.last_contact_at}"


class LeadFollowUp(FollowUpState):
    lead = models.OneToOneField(
        "leads.Lead", on_delete=models.CASCADE, primary_key=True, related_name="follow_up"
    )

    class Meta:
        verbose_name = _("lead follow-up state")
        verbose_name_plural = _("lead follow-up states")
        indexes = [
            models.Index(fields=["last_contact_at"], name="leadfu_last_idx"),
            models.Index(fields=["updated_at"], name="leadfu_updated_idx"),
        ]


class AccountFollowUp(FollowUpState):
    account = models.OneToOneField(
        "customers.Account", on_delete=models.CASCADE, primary_key=True, related_name="follow_up"
    )

    class Meta:
        verbose_name = _("account follow-up state")
        verbose_name_plural = _("account follow-up states")
        indexes = [
            models.Index(fields=["last_contact_at"], name="accountfu_last_idx"),
            models.Index(fields=["updated_at"], name="accountfu_updated_idx"),
        ]


class OpportunityFollowUp(FollowUpState):
    opportunity = models.OneToOneField(
        "pipeline.Opportunity", on_delete=models.CASCADE, primary_key=True,
        related_name="follow_up",
    )  # fmt: skip

    class Meta:
        verbose_name = _("opportunity follow-up state")
        verbose_name_plural = _("opportunity follow-up states")
        indexes = [
            models.Index(fields=["last_contact_at"], name="oppfu_last_idx"),
            models.Index(fields=["updated_at"], name="oppfu_updated_idx"),
        ]


class SweepRun(models.Model):
    """One run of the rule sweep: when, over which activities (the watermark the next
    run continues from), what it found."""

    class Mode(models.TextChoices):
        INCREMENTAL = "incremental", _("Incremental")
        FULL = "full", _("Full")
        REBUILD = "rebuild", _("Full, state rebuilt")

    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    now = models.DateTimeField(_("evaluated at"))
    mode = models.CharField(_("mode"), max_length=12, choices=Mode.choices)
    partial = models.BooleanField(
        _("some rules only"), default=False,
        help_text=_("A run limited to some rules; the next incremental run ignores it."),
    )  # fmt: skip
    exhaustive = models.BooleanField(
        _("every record checked"), default=False,
        help_text=_("Every rule re-read all its records and open breaches (not only what "
                    "changed since the previous run)."),
    )  # fmt: skip
    activity_watermark = models.BigIntegerField(_("last activity id seen"), default=0)
    opened = models.PositiveIntegerField(_("breaches opened"), default=0)
    resolved = models.PositiveIntegerField(_("breaches resolved"), default=0)
    counts = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("rule sweep")
        verbose_name_plural = _("rule sweeps")
        ordering = ["-started_at", "-pk"]

    def __str__(self):
        return f"{self.mode} · {self.started_at:%Y-%m-%d %H:%M}"


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class WorkingPeriod(models.Model):
    """One stretch of working time on a weekday (09:00–12:00 Monday). Rules that count
    working hours only let their clock run inside these, in the company's time zone."""

    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    start = models.TimeField(_("from"))
    end = models.TimeField(_("to"))

    class Meta:
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")
        ordering = ["weekday", "start"]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.start:%H:%M}–{self.end:%H:%M}"


class Holiday(models.Model):
    """A day off on a weekday (国庆), or a make-up working day on a weekend (调休,
    ``is_workday``: it has the working hours of ``workday_like``)."""

    date = models.DateField(_("date"), unique=True)
    name = models.CharField(_("name"), max_length=100, blank=True)
    is_workday = models.BooleanField(
        _("make-up working day"), default=False,
        help_text=_("A weekend day worked instead of a holiday (调休)."),
    )  # fmt: skip
    workday_like = models.PositiveSmallIntegerField(
        _("works like"), choices=Weekday.choices, default=Weekday.MONDAY,
        help_text=_("Whose working hours a make-up day has."),
    )  # fmt: skip

    class Meta:
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")
        ordering = ["date"]

    def __str__(self):
        return f"{self.date} {self.name}"
