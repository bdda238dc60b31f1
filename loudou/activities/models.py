"""Activities (跟进记录): a call, visit, e-mail, WeChat, meeting or research a rep did,
linked to a lead, an account, a contact and/or an opportunity (DOMAIN §6, §10).

Who sees an activity (docs/activities.md): whoever sees it as an owned record (its
owner, their managers, admins, the people it is shared with) and whoever may see one of
the records it is linked to — the timeline of a record you can see is complete.
"""

from django.core.validators import MaxValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loudou.core.models import OwnedModel, VersionedModel, VisibleQuerySet

from .choices import Kind, Outcome, Purpose

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

        # The owned-record scope of VisibleQuerySet, written with subqueries on ids rather
        # than joins, so that the database evaluates each one once, not per row.
        if user.managed_team_path:
            team = User.objects.filter(team__path__startswith=user.managed_team_path)
            scope = models.Q(owner_id=user.pk) | models.Q(owner_id__in=team.values("pk"))
        else:
            scope = models.Q(owner_id=user.pk)
        shared = self.model.shared_with.through.objects.filter(user=user)
        scope |= models.Q(pk__in=shared.values("activity_id"))
        scope |= (
            models.Q(account_id__in=Account.objects.visible_to(user).values("pk"))
            | models.Q(opportunity_id__in=Opportunity.objects.visible_to(user).values("pk"))
            | models.Q(lead_id__in=Lead.objects.visible_to(user).values("pk"))
        )
        return self.filter(scope)

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
