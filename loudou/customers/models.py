"""Accounts (customers) and their contacts (DOMAIN §4)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from loudou.core.models import OwnedModel, TimeStampedModel, VersionedModel, VisibleQuerySet

from .choices import (
    STYLE_ADVICE,
    BuyingRole,
    ContactStyle,
    Grade,
    RevisitClass,
    RevisitStatus,
    Segment,
    Size,
    Source,
)


class AccountQuerySet(VisibleQuerySet):
    def visible_to(self, user):
        """Own / team subtree / shared (like every owned record), plus the pooled
        accounts of every public pool the user may see (loudou.leads)."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.sees_everything:
            return self.all()
        from loudou.leads.models import PublicPool

        pools = PublicPool.objects.visible_to(user).values("pk")
        return super().visible_to(user) | self.filter(pool__in=pools)


class Account(OwnedModel, VersionedModel):
    """A customer organisation (or a person, for B2C). One account has many
    opportunities, each at its own stage. Owned by a rep, or waiting in a public pool
    (never both), like a lead."""

    name = models.CharField(_("account name"), max_length=200)
    industry = models.CharField(_("industry"), max_length=100, blank=True)
    region = models.ForeignKey(
        "org.Region",
        verbose_name=_("region"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="accounts",
    )
    size = models.CharField(_("size"), max_length=20, choices=Size.choices, blank=True)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    latitude = models.DecimalField(
        _("latitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    longitude = models.DecimalField(
        _("longitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    phone = models.CharField(_("phone"), max_length=60, blank=True)
    phone_alt = models.CharField(_("other phone"), max_length=60, blank=True)
    website = models.URLField(_("website"), blank=True)
    founded_on = models.DateField(
        _("company anniversary"), null=True, blank=True, help_text=_("For greetings.")
    )
    grade = models.CharField(
        _("grade"), max_length=5, choices=Grade.choices, blank=True, editable=False
    )
    revisit_class = models.CharField(
        _("revisit interval"), max_length=3, choices=RevisitClass.choices, blank=True
    )
    revisit_status = models.CharField(
        _("revisit status"),
        max_length=20,
        choices=RevisitStatus.choices,
        default=RevisitStatus.KEEP,
    )
    segment = models.CharField(_("segment"), max_length=10, choices=Segment.choices, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    # Normalised name for duplicate detection (loudou.leads.normalize), kept by services.
    name_key = models.CharField(max_length=200, blank=True, db_index=True, editable=False)
    # The public pool (loudou.leads) it waits in; claim and release are leads services.
    pool = models.ForeignKey(
        "leads.PublicPool",
        verbose_name=_("public pool"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="accounts",
    )
    last_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("last owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    claim_blocked_until = models.DateTimeField(
        _("previous owner blocked until"), null=True, blank=True, editable=False
    )

    objects = AccountQuerySet.as_manager()

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        ordering = ["name", "pk"]
        indexes = [
            models.Index(fields=["owner", "name"]),
            # an account's region and industry read from the index alone (the analytics
            # breakdowns probe it once per won deal of a period)
            models.Index(fields=["id", "region", "industry"], name="account_breakdown_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(owner__isnull=False, pool__isnull=False),
                name="account_owned_xor_pooled",
            )
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("customers:account", args=[self.pk])


class ContactQuerySet(models.QuerySet):
    def visible_to(self, user):
        """A contact is visible exactly when its account is."""
        return self.filter(account__in=Account.objects.visible_to(user).values("pk"))


class Contact(TimeStampedModel, VersionedModel):
    """A person at an account, with a buying role and a social style."""

    account = models.ForeignKey(
        Account, verbose_name=_("account"), on_delete=models.CASCADE, related_name="contacts"
    )
    name = models.CharField(_("name"), max_length=100)
    title = models.CharField(_("title"), max_length=100, blank=True)
    mobile = models.CharField(_("mobile"), max_length=30, blank=True)
    phone = models.CharField(_("phone"), max_length=60, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    wechat = models.CharField(_("WeChat"), max_length=60, blank=True)
    buying_role = models.CharField(
        _("buying role"), max_length=20, choices=BuyingRole.choices, blank=True
    )
    style = models.CharField(_("style"), max_length=10, choices=ContactStyle.choices, blank=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    # Normalised keys for duplicate detection (loudou.leads.normalize), kept by services.
    mobile_key = models.CharField(max_length=30, blank=True, db_index=True, editable=False)
    email_key = models.CharField(max_length=254, blank=True, db_index=True, editable=False)

    objects = ContactQuerySet.as_manager()
    # Visible exactly when its account is (core.models.sees reads the cached account).
    visible_through = "account"

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["name", "pk"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("customers:contact", args=[self.pk])

    @property
    def style_advice(self):
        return STYLE_ADVICE.get(self.style, "")
