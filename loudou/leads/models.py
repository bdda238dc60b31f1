"""Leads, public pools (公海), pool history and assignment rules (DOMAIN §5).

A lead is either owned by a rep or sits in a public pool, never both: the database
refuses a row with an owner and a pool at once (``lead_owned_xor_pooled``).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loudou.core.models import OwnedModel, TimeStampedModel, VersionedModel, VisibleQuerySet
from loudou.customers.choices import Grade, Source

from .choices import (
    OPEN_STATUSES,
    AssignmentMethod,
    LeadStatus,
    PoolEventKind,
    RecycleKind,
    RecycleTarget,
)


def _path_ids(path: str) -> list[int]:
    """The ids of a tree node and its ancestors, read from its materialised path."""
    return [int(part) for part in path.split("/") if part]


class PublicPoolQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Pools a user may see and claim from: an admin every pool; anyone else the
        active pools whose regions contain the user's region (or that name no region)
        and whose teams contain the user's team (or that name no team)."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.sees_everything:
            return self.all()
        return self.filter(is_active=True).filter(self.admits_q(user))

    def admits_q(self, user) -> Q:
        """The condition "this pool admits ``user``", ignoring the admin shortcut."""
        regions = PublicPool.regions.through.objects
        teams = PublicPool.teams.through.objects
        region_ids = _path_ids(user.region.path) if user.region_id else []
        team_ids = _path_ids(user.team.path) if user.team_id else []
        by_region = ~Q(pk__in=regions.values("publicpool_id")) | Q(
            pk__in=regions.filter(region_id__in=region_ids).values("publicpool_id")
        )
        by_team = ~Q(pk__in=teams.values("publicpool_id")) | Q(
            pk__in=teams.filter(team_id__in=team_ids).values("publicpool_id")
        )
        return by_region & by_team


class PublicPool(TimeStampedModel):
    """A shared pool of unowned leads (公海). Reps whose region and team it admits see
    its leads and claim them, within the pool's limits; the previous owner of a released
    lead waits ``reclaim_block_days`` before claiming it again."""

    name = models.CharField(_("name"), max_length=100)
    regions = models.ManyToManyField(
        "org.Region",
        verbose_name=_("regions"),
        blank=True,
        related_name="pools",
        help_text=_("Reps in these regions (or below) may claim. Empty: every region."),
    )
    teams = models.ManyToManyField(
        "org.Team",
        verbose_name=_("teams"),
        blank=True,
        related_name="pools",
        help_text=_("Reps in these teams (or below) may claim. Empty: every team."),
    )
    daily_claim_limit = models.PositiveIntegerField(
        _("claims per rep per day"), default=20, help_text=_("Claims from this pool per day.")
    )
    max_owned = models.PositiveIntegerField(
        _("open leads a rep may own"),
        default=200,
        help_text=_("A rep who owns this many open leads cannot claim more."),
    )
    reclaim_block_days = models.PositiveIntegerField(
        _("days before a previous owner may claim again"), default=7
    )
    no_follow_up_days = models.PositiveIntegerField(
        _("recycle after days without follow-up"), null=True, blank=True
    )
    not_converted_days = models.PositiveIntegerField(
        _("recycle after days not converted"), null=True, blank=True
    )
    warn_days_before = models.PositiveIntegerField(
        _("warn the owner days before recycling"), default=3
    )
    is_active = models.BooleanField(_("active"), default=True)

    objects = PublicPoolQuerySet.as_manager()

    class Meta:
        verbose_name = _("public pool")
        verbose_name_plural = _("public pools")
        ordering = ["name", "pk"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("leads:pool", args=[self.pk])

    def admits(self, user) -> bool:
        """Whether ``user`` may see and claim this pool's leads."""
        return PublicPool.objects.visible_to(user).filter(pk=self.pk).exists()


class LeadQuerySet(VisibleQuerySet):
    def visible_to(self, user):
        """Own / team subtree / shared (like every owned record), plus the pooled leads
        of every pool the user may see."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.sees_everything:
            return self.all()
        pools = PublicPool.objects.visible_to(user).values("pk")
        return super().visible_to(user) | self.filter(pool__in=pools)

    def open(self):
        return self.filter(status__in=OPEN_STATUSES)

    def in_pool(self):
        return self.filter(pool__isnull=False)


class Lead(OwnedModel, VersionedModel):
    """An unqualified prospect. Owned by a rep or waiting in a public pool; converted
    into an account, contact and opportunity without losing anything (the row stays and
    links to what it became)."""

    # OwnedModel's owner without its own index: lead_owner_status (owner first) serves
    # every lookup by owner, and each recycled, claimed or assigned lead would pay for a
    # second index entry.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        db_index=False,
    )
    name = models.CharField(_("name"), max_length=100)
    company = models.CharField(_("company"), max_length=200, blank=True)
    title = models.CharField(_("title"), max_length=100, blank=True)
    mobile = models.CharField(_("mobile"), max_length=30, blank=True)
    phone = models.CharField(_("phone"), max_length=60, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    wechat = models.CharField(_("WeChat"), max_length=60, blank=True)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices, blank=True)
    region = models.ForeignKey(
        "org.Region",
        verbose_name=_("region"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="leads",
    )
    industry = models.CharField(_("industry"), max_length=100, blank=True)
    product_interest = models.ForeignKey(
        "pipeline.ProductLine",
        verbose_name=_("product interest"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="leads",
        db_index=False,  # lead_product_interest (partial)
    )
    status = models.CharField(
        _("status"), max_length=20, choices=LeadStatus.choices, default=LeadStatus.NEW
    )
    disqualified_reason = models.CharField(_("disqualified because"), max_length=200, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    # Indexed by lead_pool_status (pool first): a second index on the pool alone would
    # only cost every recycle and claim another index write.
    pool = models.ForeignKey(
        PublicPool,
        verbose_name=_("public pool"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="leads",
        db_index=False,
    )
    # OwnedModel's creator without a full index: lead_created_by (partial) serves the
    # look-ups (a deleted user's leads), and bulk-made leads (imports, the sweep's
    # rewrites) pay no index entry for an empty value.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        related_name="+",
        null=True,
        blank=True,
        db_index=False,
    )
    # Normalised keys for duplicate detection (normalize.py), kept by the services.
    mobile_key = models.CharField(max_length=30, blank=True, db_index=True, editable=False)
    email_key = models.CharField(max_length=254, blank=True, db_index=True, editable=False)
    company_key = models.CharField(max_length=200, blank=True, db_index=True, editable=False)
    converted_account = models.ForeignKey(
        "customers.Account",
        verbose_name=_("converted into account"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="leads",
        db_index=False,  # lead_conv_account (partial)
    )
    converted_contact = models.ForeignKey(
        "customers.Contact",
        verbose_name=_("converted into contact"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="leads",
        db_index=False,  # lead_conv_contact (partial)
    )
    converted_opportunity = models.ForeignKey(
        "pipeline.Opportunity",
        verbose_name=_("converted into opportunity"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="leads",
        db_index=False,  # lead_conv_opportunity (partial)
    )
    converted_at = models.DateTimeField(_("converted"), null=True, blank=True)
    owned_since = models.DateTimeField(_("owned since"), null=True, blank=True)
    # Not indexed: nothing looks leads up by these, and the sweep writes them in bulk.
    last_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("last owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("released by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    released_at = models.DateTimeField(_("released"), null=True, blank=True)
    claim_blocked_until = models.DateTimeField(
        _("previous owner blocked until"), null=True, blank=True
    )
    # When the owner was last warned that the lead will return to a pool (recycle.py);
    # a warning is due again only after a new owner or a follow-up since then.
    recycle_warned_at = models.DateTimeField(
        _("recycle warning sent"), null=True, blank=True, editable=False
    )

    objects = LeadQuerySet.as_manager()

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(owner__isnull=False, pool__isnull=False),
                name="lead_owned_xor_pooled",
            )
        ]
        # Partial: only owned leads are looked up by owner and only pooled ones by pool,
        # and a lead that changes hands (recycled, claimed, released) then writes one
        # entry in each index instead of moving a NULL entry as well — on a sweep's
        # backlog a third of the UPDATE's time.
        indexes = [
            models.Index(
                fields=["owner", "status"],
                name="lead_owner_status",
                condition=Q(owner__isnull=False),
            ),
            models.Index(
                fields=["pool", "status"], name="lead_pool_status", condition=Q(pool__isnull=False)
            ),
            # The links that most leads leave empty are indexed where they are set only
            # (what their look-ups ask for): every recycled, claimed or warned lead that
            # PostgreSQL writes as a new row version would otherwise add an entry for
            # NULL to each of them.
            *(
                models.Index(fields=[field], name=name, condition=Q(**{f"{field}__isnull": False}))
                for field, name in (
                    ("product_interest", "lead_product_interest"),
                    ("created_by", "lead_created_by"),
                    ("converted_account", "lead_conv_account"),
                    ("converted_contact", "lead_conv_contact"),
                    ("converted_opportunity", "lead_conv_opportunity"),
                )
            ),
        ]

    def __str__(self):
        return f"{self.name} · {self.company}" if self.company else self.name

    def get_absolute_url(self):
        return reverse("leads:lead", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def in_pool(self) -> bool:
        return self.pool_id is not None


class PoolEvent(models.Model):
    """One line of a lead's (or an account's) ownership history: created, claimed,
    released, assigned, recycled, warned, handed over, converted. Append-only; the daily
    claim limit counts these rows, for leads and accounts together.

    Bulk writers (the recycle sweep, hand-over, bulk assignment) insert these rows by the
    hundred thousand, so the table carries few indexes: the lead's and the account's
    history (partial: only rows that have one) and the claims of a rep per day."""

    lead = models.ForeignKey(
        Lead,
        verbose_name=_("lead"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="events",
        db_index=False,
    )
    account = models.ForeignKey(
        "customers.Account",
        verbose_name=_("account"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="pool_events",
        db_index=False,
    )
    kind = models.CharField(_("kind"), max_length=20, choices=PoolEventKind.choices)
    pool = models.ForeignKey(
        PublicPool,
        verbose_name=_("public pool"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
        db_index=False,
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner afterwards"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    reason = models.CharField(_("reason"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("pool event")
        verbose_name_plural = _("pool events")
        ordering = ["at", "pk"]
        indexes = [
            # a rep's claims per day; the sweep's rows (no "by") stay out of it
            models.Index(
                fields=["by", "kind", "at"],
                condition=Q(by__isnull=False),
                name="poolevent_by_kind_at",
            ),
            models.Index(
                fields=["lead", "at"], condition=Q(lead__isnull=False), name="poolevent_lead_at"
            ),
            models.Index(
                fields=["account", "at"],
                condition=Q(account__isnull=False),
                name="poolevent_account_at",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} · {self.lead_id}"


class AssignmentRule(TimeStampedModel):
    """One line of the ordered assignment list. The first active rule whose conditions
    all match a new lead decides who receives it (assignment.py). An empty condition
    matches everything; the region condition matches the region and everything below."""

    position = models.PositiveIntegerField(_("position"), default=0)
    name = models.CharField(_("name"), max_length=100)
    active = models.BooleanField(_("active"), default=True)
    region = models.ForeignKey(
        "org.Region",
        verbose_name=_("region"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    industry = models.CharField(_("industry"), max_length=100, blank=True)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices, blank=True)
    product_interest = models.ForeignKey(
        "pipeline.ProductLine",
        verbose_name=_("product interest"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    method = models.CharField(_("method"), max_length=20, choices=AssignmentMethod.choices)
    reps = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reps"),
        blank=True,
        related_name="+",
        help_text=_("Candidates for round robin and least load."),
    )
    fixed_rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("fixed rep"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    pool = models.ForeignKey(
        PublicPool,
        verbose_name=_("target pool"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    capacity = models.PositiveIntegerField(
        _("capacity per rep"),
        null=True,
        blank=True,
        help_text=_("Open leads a rep may own before this rule skips them. Empty: no limit."),
    )
    rr_cursor = models.PositiveBigIntegerField(
        _("round-robin cursor"), default=0, editable=False, help_text=_("Last rep's id.")
    )

    class Meta:
        verbose_name = _("assignment rule")
        verbose_name_plural = _("assignment rules")
        ordering = ["position", "pk"]

    def __str__(self):
        return self.name


class RecycleRule(TimeStampedModel):
    """An auto-recycle rule (DOMAIN §5): owned open leads — or owned accounts — that
    match its conditions (region and below, product line, and for accounts the customer
    grade; empty matches all, and an empty region means the regions of the target pool)
    and have had no follow-up, or were not converted, or won no deal, for ``days`` days
    go back into ``pool``. The owner is warned ``warn_days_before`` days earlier. Rules
    run in ``position`` order; the pools' own "recycle after" settings (leads only) run
    after every explicit rule (recycle.py)."""

    position = models.PositiveIntegerField(_("position"), default=0)
    name = models.CharField(_("name"), max_length=100)
    active = models.BooleanField(_("active"), default=True)
    applies_to = models.CharField(
        _("recycles"), max_length=10, choices=RecycleTarget.choices, default=RecycleTarget.LEADS
    )
    kind = models.CharField(_("condition"), max_length=20, choices=RecycleKind.choices)
    days = models.PositiveIntegerField(_("days"))
    warn_days_before = models.PositiveIntegerField(
        _("warn the owner days before"), default=3, help_text=_("0: no warning.")
    )
    pool = models.ForeignKey(
        PublicPool,
        verbose_name=_("recycle into pool"),
        on_delete=models.CASCADE,
        related_name="recycle_rules",
    )
    region = models.ForeignKey(
        "org.Region",
        verbose_name=_("region"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    product_interest = models.ForeignKey(
        "pipeline.ProductLine",
        verbose_name=_("product line"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Leads: their product interest. Accounts: those with a deal in it."),
    )
    grade = models.CharField(
        _("customer grade"),
        max_length=5,
        choices=Grade.choices,
        blank=True,
        help_text=_("Accounts only. Empty: every grade."),
    )

    class Meta:
        verbose_name = _("recycle rule")
        verbose_name_plural = _("recycle rules")
        ordering = ["position", "pk"]

    def __str__(self):
        return self.name

    def clean(self):
        from django.core.exceptions import ValidationError

        if self.grade and self.applies_to != RecycleTarget.ACCOUNTS:
            raise ValidationError({"grade": _("Only rules for accounts look at the grade.")})

    @property
    def for_accounts(self) -> bool:
        return self.applies_to == RecycleTarget.ACCOUNTS


class MergeRecord(models.Model):
    """A merge of two leads, accounts or contacts: which row stayed, the removed row's
    every field as JSON, and which fields were taken from it. Append-only."""

    model = models.CharField(_("record type"), max_length=60)
    kept_id = models.PositiveBigIntegerField(_("kept record"))
    merged_id = models.PositiveBigIntegerField(_("merged record"))
    merged_data = models.JSONField(_("merged record's data"))
    fields_taken = models.JSONField(_("fields taken from the merged record"), default=list)
    moved = models.JSONField(_("related rows moved"), default=dict)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("merge record")
        verbose_name_plural = _("merge records")
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["model", "kept_id"], name="merge_model_kept")]

    def __str__(self):
        return f"{self.model} {self.merged_id} → {self.kept_id}"


# --- maintained counts (leads/summaries.py) ----------------------------------------------


class LeadCount(models.Model):
    """Leads per (owner, pool, source, status): how many. Derived, never a source of
    truth: kept by the leads' services in the same transaction as the lead's change,
    rebuilt by ``loudou report rebuild`` (leads.summaries.rebuild). Lead conversion by
    source reads the leads' side from it (0 stands for no owner / no pool)."""

    owner_key = models.PositiveBigIntegerField()  # the owner's id, 0 for none
    pool_key = models.PositiveBigIntegerField()  # the pool's id, 0 for none
    source = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=20, choices=LeadStatus.choices)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner_key", "pool_key", "source", "status"], name="lead_count_key"
            )
        ]

    def __str__(self):
        return f"{self.owner_key}/{self.pool_key}/{self.source}/{self.status}"


class LeadDealCount(models.Model):
    """Converted leads per (the lead's owner, pool and source; the deal's pipeline and
    status): how many, and their deals' summed amount (cents). Kept by the leads'
    services (a lead that converts, changes hands or goes) and by the opportunity
    services (a deal won, lost, reopened, re-priced, moved to another pipeline or
    deleted), rebuilt with the pipeline summaries. Lead conversion by source reads "into
    this pipeline", "won" and the won amount from it."""

    owner_key = models.PositiveBigIntegerField()
    pool_key = models.PositiveBigIntegerField()
    source = models.CharField(max_length=20, blank=True)
    pipeline = models.ForeignKey("pipeline.Pipeline", on_delete=models.CASCADE, related_name="+")
    deal_status = models.CharField(max_length=5)
    count = models.BigIntegerField(default=0)
    amount_cents = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner_key", "pool_key", "source", "pipeline", "deal_status"],
                name="lead_deal_count_key",
            )
        ]

    def __str__(self):
        return f"{self.owner_key}/{self.pool_key}/{self.source}/{self.pipeline_id}"
