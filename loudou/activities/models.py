"""Activities (跟进记录): a call, visit, e-mail, WeChat, meeting or research a rep did,
linked to a lead, an account, a contact and/or an opportunity (DOMAIN §6, §10).

Who sees an activity (docs/activities.md): whoever sees it as an owned record (its
owner, their managers, admins, the people it is shared with) and whoever may see one of
the records it is linked to — the timeline of a record you can see is complete.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loudou.core.models import OwnedModel, VersionedModel, VisibleQuerySet

from .choices import Kind, Outcome, Purpose, VisitStatus

# A day's work is the longest activity anyone logs; more is a typo.
MAX_DURATION_MINUTES = 24 * 60


class ActivityQuerySet(VisibleQuerySet):
    def visible_to(self, user):
        """Own / team subtree / shared, plus every activity on a lead, account or
        opportunity the user may see (a contact's activity always carries its account)."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.sees_everything:
            return self.all()
        from loudou.customers.models import Account
        from loudou.leads.models import Lead
        from loudou.org.models import User
        from loudou.pipeline.models import Opportunity

        shared = self.model.shared_with.through.objects.filter(user=user)
        through_records = {
            "account_id__in": Account.objects.visible_to(user).values("pk"),
            "opportunity_id__in": Opportunity.objects.visible_to(user).values("pk"),
            "lead_id__in": Lead.objects.visible_to(user).values("pk"),
        }
        if user.managed_team_path:
            # A manager sees a large share of all activities (the team's): one WHERE
            # with an OR of the conditions, written with subqueries on ids rather than
            # joins, so the database evaluates each subquery once; the newest-first list
            # reads the date index and stops after a page of matches.
            team = User.objects.filter(team__path__startswith=user.managed_team_path)
            scope = models.Q(owner_id=user.pk) | models.Q(owner_id__in=team.values("pk"))
            scope |= models.Q(pk__in=shared.values("activity_id"))
            for lookup, ids in through_records.items():
                scope |= models.Q(**{lookup: ids})
            return self.filter(scope)
        # A rep sees a small share: the ids through each way of seeing an activity (own,
        # shared, account, opportunity, lead), one index-driven SELECT each, glued with
        # UNION ALL, so the database reads a few index entries instead of testing the OR
        # on every row (1,000,000 activities: a rep's count 810 -> 37 ms cpu,
        # docs/benchmarks.md). For a manager's large share this is slower, hence the OR.
        base = Activity.objects.order_by()
        parts = [base.filter(owner_id=user.pk), base.filter(pk__in=shared.values("activity_id"))]
        parts += [base.filter(**{lookup: ids}) for lookup, ids in through_records.items()]
        ids = parts[0].values("pk").union(*(p.values("pk") for p in parts[1:]), all=True)
        return self.filter(pk__in=ids)

    def on(self, subject):
        """The activities linked to ``subject`` (a lead, account, contact or
        opportunity)."""
        return self.filter(**{_subject_field(subject): subject})


SUBJECT_FIELDS = ("lead", "account", "contact", "opportunity")


def _subject_field(subject) -> str:
    name = subject._meta.model_name
    if name not in SUBJECT_FIELDS:
        raise TypeError(f"Activities are not linked to {name}.")
    return name


class Activity(OwnedModel, VersionedModel):
    """One piece of work with a customer. ``owner`` is who did it. At least one of
    lead, account, contact, opportunity is set; a contact or opportunity brings its
    account (services.log_activity)."""

    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices)
    purpose = models.CharField(_("purpose"), max_length=12, choices=Purpose.choices)
    outcome = models.CharField(_("outcome"), max_length=12, choices=Outcome.choices, blank=True)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)
    duration_minutes = models.PositiveIntegerField(
        _("duration (minutes)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(MAX_DURATION_MINUTES)],
    )
    gave_something = models.BooleanField(
        _("gave the customer something"),
        default=False,
        help_text=_("Information or a resource the customer got from this contact."),
    )
    gave_what = models.CharField(_("what was given"), max_length=200, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    lead = models.ForeignKey(
        "leads.Lead", verbose_name=_("lead"), on_delete=models.CASCADE, null=True, blank=True,
        related_name="activities",
    )  # fmt: skip
    account = models.ForeignKey(
        "customers.Account", verbose_name=_("account"), on_delete=models.CASCADE, null=True,
        blank=True, related_name="activities",
    )  # fmt: skip
    contact = models.ForeignKey(
        "customers.Contact", verbose_name=_("contact"), on_delete=models.SET_NULL, null=True,
        blank=True, related_name="activities",
    )  # fmt: skip
    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.CASCADE,
        null=True, blank=True, related_name="activities",
    )  # fmt: skip

    objects = ActivityQuerySet.as_manager()

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["-occurred_at", "-pk"]
        indexes = [
            # per owner and period, and covering for the statistics of queries.py: counts
            # and minutes filtered by kind or purpose never read the table
            models.Index(
                fields=["owner", "occurred_at", "kind", "purpose", "duration_minutes"],
                name="activity_owner_when_idx",
            ),
            models.Index(fields=["account", "occurred_at"], name="activity_account_when_idx"),
            models.Index(fields=["opportunity", "occurred_at"], name="activity_opp_when_idx"),
            models.Index(fields=["lead", "occurred_at"], name="activity_lead_when_idx"),
            models.Index(fields=["kind", "occurred_at"], name="activity_kind_when_idx"),
            # the lists' order (newest first): LIMIT 50 reads 50 index entries, no sort
            models.Index(fields=["occurred_at", "id"], name="activity_when_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} · {timezone.localtime(self.occurred_at):%Y-%m-%d %H:%M}"

    def get_absolute_url(self):
        return reverse("activities:activity", args=[self.pk])

    @property
    def subject(self):
        """The most specific record it is about: opportunity, then lead, contact,
        account."""
        return self.opportunity or self.lead or self.contact or self.account


class VisitQuerySet(VisibleQuerySet):
    def planned(self):
        return self.filter(status=VisitStatus.PLANNED)

    def done(self):
        return self.filter(status=VisitStatus.DONE)


class Visit(OwnedModel, VersionedModel):
    """A visit to an account (拜访): planned for a time, then done — recorded with an
    Activity of kind visit — or cancelled with a reason. ``owner`` is the rep who goes.

    Planning creates a Task of kind visit for the owner (calendar, Today list); recording
    completes it. A check-in, made by the owner from a phone browser, stores where the
    phone was at that moment and its distance from the account's coordinates; nothing
    else about the rep's location is ever stored (docs/activities.md, Visits).
    """

    account = models.ForeignKey(
        "customers.Account", verbose_name=_("account"), on_delete=models.CASCADE,
        related_name="visits",
    )  # fmt: skip
    contact = models.ForeignKey(
        "customers.Contact", verbose_name=_("contact"), on_delete=models.SET_NULL, null=True,
        blank=True, related_name="visits",
    )  # fmt: skip
    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.SET_NULL,
        null=True, blank=True, related_name="visits",
    )  # fmt: skip
    purpose = models.CharField(_("purpose"), max_length=12, choices=Purpose.choices)
    topic = models.CharField(
        _("what for"), max_length=200, blank=True,
        help_text=_("What you want to achieve, in a few words."),
    )  # fmt: skip
    planned_for = models.DateTimeField(_("planned for"))
    status = models.CharField(
        _("status"), max_length=10, choices=VisitStatus.choices, default=VisitStatus.PLANNED
    )
    task = models.ForeignKey(
        "tasks.Task", verbose_name=_("task"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="visits",
    )  # fmt: skip
    activity = models.OneToOneField(
        Activity, verbose_name=_("activity"), on_delete=models.SET_NULL, null=True,
        blank=True, related_name="visit",
    )  # fmt: skip
    done_at = models.DateTimeField(_("recorded"), null=True, blank=True)
    # The check-in: only ever written by services.check_in, on the owner's click.
    checked_in_at = models.DateTimeField(_("checked in"), null=True, blank=True)
    latitude = models.DecimalField(
        _("latitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    longitude = models.DecimalField(
        _("longitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    accuracy_m = models.PositiveIntegerField(_("accuracy (m)"), null=True, blank=True)
    distance_m = models.PositiveIntegerField(
        _("distance from the address (m)"), null=True, blank=True,
        help_text=_("Empty when the account has no coordinates."),
    )  # fmt: skip
    checked_out_at = models.DateTimeField(_("checked out"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)
    cancel_reason = models.CharField(_("why cancelled"), max_length=300, blank=True)

    objects = VisitQuerySet.as_manager()

    class Meta:
        verbose_name = _("visit")
        verbose_name_plural = _("visits")
        ordering = ["planned_for", "pk"]
        indexes = [
            # per owner and week: the visits page and the statistics
            models.Index(fields=["owner", "planned_for", "status"], name="visit_owner_when_idx"),
            models.Index(fields=["account", "planned_for"], name="visit_account_when_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(latitude__isnull=True)
                | models.Q(latitude__gte=-90, latitude__lte=90),
                name="visit_latitude_range",
            ),
            models.CheckConstraint(
                condition=models.Q(longitude__isnull=True)
                | models.Q(longitude__gte=-180, longitude__lte=180),
                name="visit_longitude_range",
            ),
        ]

    def __str__(self):
        when = timezone.localtime(self.planned_for).strftime("%Y-%m-%d %H:%M")
        return f"{self.account} · {when}"

    def get_absolute_url(self):
        return reverse("activities:visit", args=[self.pk])

    @property
    def is_planned(self) -> bool:
        return self.status == VisitStatus.PLANNED

    @property
    def is_checked_in(self) -> bool:
        return self.checked_in_at is not None

    @property
    def is_far(self) -> bool:
        """Checked in further from the account's address than LOUDOU_VISIT_FAR_METRES."""
        return self.distance_m is not None and self.distance_m > settings.LOUDOU_VISIT_FAR_METRES

    @property
    def visited_minutes(self) -> int | None:
        """Minutes between check-in and check-out, when both are known."""
        if self.checked_in_at is None or self.checked_out_at is None:
            return None
        return max(0, round((self.checked_out_at - self.checked_in_at).total_seconds() / 60))
