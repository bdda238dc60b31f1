"""Pipelines, stages, opportunities and their append-only stage history (DOMAIN §3, §8).

StageChange is the single source of funnel statistics. ``Opportunity.furthest_stage`` is
a denormalised copy of "the highest-ordered open stage it ever entered", kept by the
services so that statistics need no scan of the history.
"""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from loudou.core.models import OwnedModel, TimeStampedModel, VersionedModel, VisibleQuerySet
from loudou.customers.choices import Source

from .choices import ChangeKind, ChecklistMode, StageKind, Status

PERCENT = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))]


class BilingualName(models.Model):
    """A Chinese name and an optional English one; pages show the user's language."""

    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)

    class Meta:
        abstract = True

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.name_en and (translation.get_language() or "").startswith("en"):
            return self.name_en
        return self.name


class ProductLine(BilingualName, TimeStampedModel):
    """A product line; pipelines, opportunities and targets may be per product line."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("product line")
        verbose_name_plural = _("product lines")
        ordering = ["name"]


class LostReason(BilingualName):
    """Why a deal was lost; the list is edited by an admin."""

    position = models.PositiveIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("lost reason")
        verbose_name_plural = _("lost reasons")
        ordering = ["position", "pk"]


class Pipeline(BilingualName, TimeStampedModel):
    """An ordered list of stages; a company may have one per product line."""

    template = models.CharField(_("template"), max_length=20, blank=True, editable=False)
    product_line = models.ForeignKey(
        ProductLine,
        verbose_name=_("product line"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="pipelines",
    )
    checklist_mode = models.CharField(
        _("checklist"), max_length=10, choices=ChecklistMode.choices, default=ChecklistMode.STRICT
    )
    learn_win_rates = models.BooleanField(
        _("learn win rates from history"),
        default=False,
        help_text=_(
            "Once a stage's win rate rests on enough closed deals, forecasts use it "
            "instead of the configured default."
        ),
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    is_archived = models.BooleanField(_("archived"), default=False)

    class Meta:
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")
        ordering = ["position", "pk"]

    def get_absolute_url(self):
        return reverse("pipeline:board", args=[self.pk])

    def open_stages(self):
        """The non-terminal, non-archived stages in order."""
        return self.stages.filter(kind=StageKind.OPEN, is_archived=False).order_by("position", "pk")

    def terminal(self, kind):
        return self.stages.filter(kind=kind).order_by("position", "pk").first()


class Stage(BilingualName):
    """One step of a pipeline, with its default win rate, guidance and checklist."""

    pipeline = models.ForeignKey(
        Pipeline, verbose_name=_("pipeline"), on_delete=models.CASCADE, related_name="stages"
    )
    code = models.CharField(
        _("code"), max_length=20, blank=True, help_text=_("D/C/B/A stages drive account grades.")
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    kind = models.CharField(_("kind"), max_length=5, choices=StageKind.choices, default="open")
    default_probability = models.DecimalField(
        _("default win rate (%)"), max_digits=5, decimal_places=2, default=0, validators=PERCENT
    )
    guidance = models.TextField(_("guidance for the rep"), blank=True)
    checklist = models.JSONField(
        _("checklist"),
        default=list,
        blank=True,
        help_text=_("Items that must be true before the opportunity advances."),
    )
    stale_after_days = models.PositiveIntegerField(_("stale after (days)"), null=True, blank=True)
    is_archived = models.BooleanField(_("archived"), default=False)

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["pipeline", "position", "pk"]
        indexes = [models.Index(fields=["pipeline", "position"])]

    @property
    def is_terminal(self) -> bool:
        return self.kind != StageKind.OPEN


class OpportunityQuerySet(VisibleQuerySet):
    def open(self):
        return self.filter(status=Status.OPEN)

    def stale(self, now=None):
        """Open opportunities that sat in their stage longer than the stage allows."""
        now = now or timezone.now()
        # One condition per stage with a limit: stages are few, and this keeps the
        # date arithmetic out of SQL, where SQLite and PostgreSQL differ.
        limits = Stage.objects.filter(stale_after_days__isnull=False, kind=StageKind.OPEN)
        condition = models.Q(pk__in=[])
        for stage_id, days in limits.values_list("pk", "stale_after_days"):
            cutoff = now - timedelta(days=days)
            condition |= models.Q(stage_id=stage_id, stage_entered_at__lt=cutoff)
        return self.open().filter(condition)


class Opportunity(OwnedModel, VersionedModel):
    """One possible sale: an account, an owner, a pipeline stage and an amount.

    Few single-column indexes (issue 7): each index costs every deal save and a bulk
    import's rebuild. A foreign key or field that leads a composite index in Meta.indexes
    (owner, pipeline, stage, status, created_at) needs no index of its own: the composite
    serves its lookups and PostgreSQL's ON DELETE checks. The keys to users (created_by),
    lost reasons and the furthest stage have none: no query looks deals up by them alone,
    and their rows are deactivated or archived rather than deleted (a rare deletion reads
    the whole table once). The product line keeps its own: the list and the API filter
    by it alone (without it PostgreSQL counted a line's deals by a table scan, 5x slower)."""

    # The inherited fields without their single-column indexes (see above).
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT,
        related_name="+", null=True, blank=True, db_index=False,
    )  # fmt: skip
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.SET_NULL,
        related_name="+", null=True, blank=True, db_index=False,
    )  # fmt: skip
    name = models.CharField(_("opportunity name"), max_length=200)
    account = models.ForeignKey(
        "customers.Account",
        verbose_name=_("account"),
        on_delete=models.PROTECT,
        related_name="opportunities",
    )
    contacts = models.ManyToManyField(
        "customers.Contact", verbose_name=_("contacts"), blank=True, related_name="opportunities"
    )
    pipeline = models.ForeignKey(
        Pipeline, verbose_name=_("pipeline"), on_delete=models.PROTECT,
        related_name="opportunities", db_index=False,
    )  # fmt: skip
    stage = models.ForeignKey(
        Stage, verbose_name=_("stage"), on_delete=models.PROTECT,
        related_name="opportunities", db_index=False,
    )  # fmt: skip
    furthest_stage = models.ForeignKey(
        Stage, on_delete=models.PROTECT, related_name="+", editable=False, db_index=False
    )
    status = models.CharField(
        _("status"), max_length=5, choices=Status.choices, default=Status.OPEN
    )
    amount = models.DecimalField(
        _("amount"), max_digits=14, decimal_places=2, default=0,
        validators=[MinValueValidator(Decimal("0"))],
    )  # fmt: skip
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    probability = models.DecimalField(
        _("win probability (%)"), max_digits=5, decimal_places=2, default=0, validators=PERCENT
    )
    probability_manual = models.BooleanField(
        _("probability set by hand"), default=False, editable=False
    )
    expected_close_date = models.DateField(_("expected close date"), null=True, blank=True)
    product_line = models.ForeignKey(
        ProductLine,
        verbose_name=_("product line"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="opportunities",
    )
    source = models.CharField(_("source"), max_length=20, choices=Source.choices, blank=True)
    competitors = models.CharField(_("competitors"), max_length=300, blank=True)
    next_step = models.CharField(_("next step"), max_length=300, blank=True)
    next_step_date = models.DateField(_("next step date"), null=True, blank=True)
    lost_reason = models.ForeignKey(
        LostReason, verbose_name=_("lost reason"), on_delete=models.PROTECT, null=True,
        blank=True, related_name="+", db_index=False,
    )  # fmt: skip
    lost_note = models.CharField(_("lost note"), max_length=300, blank=True)
    checklist_done = models.JSONField(default=dict, blank=True, editable=False)
    stage_entered_at = models.DateTimeField(_("in stage since"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True, editable=False)
    description = models.TextField(_("description"), blank=True)
    # Σ stay_seconds of its history: for a won deal, its cycle from creation to the win
    # (kept by the services and pipeline.summaries.rebuild_summaries)
    stays_seconds = models.PositiveBigIntegerField(default=0, editable=False)

    objects = OpportunityQuerySet.as_manager()

    class Meta:
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        ordering = ["-created_at", "-pk"]
        indexes = [
            # covers a column's totals (count, Σ amount per probability): no table reads
            models.Index(
                fields=["pipeline", "status", "stage", "probability", "amount"],
                name="opp_stage_totals_idx",
            ),
            # the funnel's counts, also per owner (analytics): read from the index alone,
            # already in group order
            models.Index(
                fields=["pipeline", "furthest_stage", "status", "owner"], name="opp_funnel_idx"
            ),
            models.Index(fields=["owner", "status"]),
            # revenue won in a period (analytics: completed, forecast) and its breakdowns by
            # account (region, industry), owner (team, rep), product line and source: a
            # covering range (not partial: SQLite cannot match "status = ?" to a condition)
            models.Index(
                fields=[
                    "pipeline",
                    "status",
                    "closed_at",
                    "amount",
                    "account",
                    "owner",
                    "product_line",
                    "source",
                    "id",
                ],
                name="opp_won_period_idx",
            ),  # fmt: skip
            # the board column's order: one index range scan, no sort, at any volume
            models.Index(
                fields=["stage", "status", "expected_close_date", "-amount", "id"],
                name="opp_board_column_idx",
            ),
            # stale deals (open longer than their stage allows; the dashboard's count): one
            # range per stage, the owner and id for the viewer's scope from the index alone
            models.Index(
                fields=["status", "stage", "stage_entered_at", "owner", "id"],
                name="opp_stale_idx",
            ),
            # the list's default order (newest first) within a status
            models.Index(fields=["status", "-created_at", "-id"], name="opp_status_newest_idx"),
            # performance and targets: won revenue per owner in a period, every pipeline
            models.Index(
                fields=["status", "closed_at", "owner", "amount"], name="opp_won_owner_idx"
            ),
            # performance: new opportunities per owner in a period
            models.Index(fields=["created_at", "owner"], name="opp_created_owner_idx"),
            # analytics of a team or a rep (owner IN (…)): their deals of a pipeline by
            # status and stage with the amount, without a pass over the whole pipeline
            models.Index(
                fields=["owner", "pipeline", "status", "stage", "amount"],
                name="opp_owner_scope_idx",
            ),
            # last week's pipeline (analytics.queries.state_at): the open deals with their
            # ids, from a small index alone (PostgreSQL read ~29,000 table pages at 1M)
            models.Index(
                fields=["pipeline", "stage", "amount", "id"],
                name="opp_open_ids_idx",
                condition=models.Q(status="open"),
            ),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("pipeline:opportunity", args=[self.pk])

    @property
    def weighted_amount(self) -> Decimal:
        return (self.amount * self.probability / 100).quantize(Decimal("0.01"))

    @property
    def is_open(self) -> bool:
        return self.status == Status.OPEN

    def days_in_stage(self, now=None) -> int:
        return ((now or timezone.now()) - self.stage_entered_at).days

    @property
    def is_stale(self) -> bool:
        """The same test as ``Opportunity.objects.stale()``: more than the stage's limit
        since entering it (not whole days, which would leave a day where they disagree)."""
        limit = self.stage.stale_after_days
        if not self.is_open or limit is None:
            return False
        return self.stage_entered_at < timezone.now() - timedelta(days=limit)

    def ticked(self, stage) -> list[str]:
        return list(self.checklist_done.get(str(stage.pk), []))

    def missing_checklist(self, stage=None) -> list[str]:
        """Checklist items of ``stage`` (default: the current one) not yet ticked."""
        stage = stage or self.stage
        done = set(self.ticked(stage))
        return [item for item in stage.checklist if item not in done]


class StageChange(models.Model):
    """One transition of one opportunity. Append-only: never updated, never deleted by
    the application; every funnel statistic is computed from these rows.

    Four rows per deal, so few indexes (issue 7, like Opportunity's): the opportunity
    and changed_at lead composites in Meta.indexes, which serve their lookups and the
    cascade from a deleted deal; the stages and the user are never looked up from here
    and are archived or deactivated, not deleted."""

    opportunity = models.ForeignKey(
        Opportunity, on_delete=models.CASCADE, related_name="stage_changes", db_index=False
    )
    kind = models.CharField(max_length=10, choices=ChangeKind.choices)
    from_stage = models.ForeignKey(
        Stage, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        db_index=False,
    )  # fmt: skip
    to_stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+", db_index=False)
    changed_at = models.DateTimeField(default=timezone.now)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", db_index=False,
    )  # fmt: skip
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    probability = models.DecimalField(max_digits=5, decimal_places=2)
    note = models.CharField(max_length=300, blank=True)
    stay_seconds = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="How long the opportunity had been in from_stage."
    )

    class Meta:
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")
        ordering = ["changed_at", "pk"]
        indexes = [
            models.Index(fields=["opportunity", "changed_at"]),
            # Time in stage of a whole pipeline (analytics): the stays read from the index
            # alone, grouped by stage and hour without touching the rows.
            models.Index(
                fields=["from_stage", "stay_seconds"],
                name="change_stay_idx",
                condition=models.Q(stay_seconds__isnull=False),
            ),  # fmt: skip
            # Time in stage of a team's or rep's deals: their stays from the index alone.
            models.Index(
                fields=["opportunity", "from_stage", "stay_seconds"],
                name="change_deal_stay_idx",
                condition=models.Q(stay_seconds__isnull=False),
            ),  # fmt: skip
            # The pipeline as it stood a week ago (analytics.queries.state_at): the
            # week's changes, ranked per deal, from the index alone.
            models.Index(
                fields=[
                    "changed_at",
                    "to_stage",
                    "opportunity",
                    "kind",
                    "from_stage",
                    "amount",
                    "id",
                ],
                name="change_recent_idx",
            ),  # fmt: skip
        ]

    def __str__(self):
        return f"{self.opportunity_id}: {self.from_stage_id} → {self.to_stage_id}"


# --- maintained summaries (pipeline/summaries.py) ---------------------------------------


class FunnelCount(models.Model):
    """How many opportunities of a pipeline have each (owner, furthest stage, status), with
    their summed amount and recorded stays. Kept by the services in the same transaction
    as the change (and rebuilt from the opportunities by ``summaries.rebuild_summaries``),
    so that the funnel's counts need no scan of the opportunities."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    owner_key = models.PositiveBigIntegerField()  # the owner's id, 0 for none
    furthest_stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=5, choices=Status.choices)
    count = models.BigIntegerField(default=0)
    amount_cents = models.BigIntegerField(default=0)
    stays_seconds = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "owner_key", "furthest_stage", "status"],
                name="funnel_count_key",
            )
        ]

    def __str__(self):
        return f"{self.pipeline_id}/{self.owner_key}/{self.furthest_stage_id}/{self.status}"


class OpenCount(models.Model):
    """Open opportunities per (pipeline, owner, current stage, amount band): how many and
    their summed amount (cents). Kept like FunnelCount; the open pipeline of the funnel,
    forecast and per-rep reports (pipeline.summaries.AMOUNT_EDGES for the bands)."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    owner_key = models.PositiveBigIntegerField()  # the owner's id, 0 for none
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="+")
    band = models.SmallIntegerField()
    count = models.BigIntegerField(default=0)
    amount_cents = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "owner_key", "stage", "band"], name="open_count_key"
            )
        ]

    def __str__(self):
        return f"{self.pipeline_id}/{self.owner_key}/{self.stage_id}/{self.band}"


class SourceCount(models.Model):
    """Opportunities per (pipeline, owner, source, status): how many and their summed
    amount (cents). Kept like FunnelCount; lead conversion by source reads the
    opportunities' side (won, lost, open, won amount per source) from it."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    owner_key = models.PositiveBigIntegerField()  # the owner's id, 0 for none
    source = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=5, choices=Status.choices)
    count = models.BigIntegerField(default=0)
    amount_cents = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "owner_key", "source", "status"], name="source_count_key"
            )
        ]

    def __str__(self):
        return f"{self.pipeline_id}/{self.owner_key}/{self.source}/{self.status}"


class WonCount(models.Model):
    """Won opportunities per (pipeline, owner, month of the win, dimension, value): how
    many and their summed amount (cents), for the breakdowns of whole months, quarters
    and years (analytics.queries.scope_breakdown). ``month`` is year × 100 + month of
    ``closed_at`` in the company's time zone (``SummaryState.won_time_zone``);
    ``dimension`` is region (``key``: the account's region id, "" for none), industry
    (the account's industry), product_line (its id, "") or source; team and rep add up
    the source rows per owner. Kept like FunnelCount, and by the account services when
    an account's region or industry changes."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    owner_key = models.PositiveBigIntegerField()  # the owner's id, 0 for none
    month = models.IntegerField()  # e.g. 202611
    dimension = models.CharField(max_length=12)
    key = models.CharField(max_length=100, blank=True)
    count = models.BigIntegerField(default=0)
    amount_cents = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "dimension", "month", "owner_key", "key"],
                name="won_count_key",
            )
        ]
        indexes = [
            # a period's months of one dimension, summed from the index alone
            models.Index(
                fields=[
                    "pipeline",
                    "dimension",
                    "month",
                    "owner_key",
                    "key",
                    "count",
                    "amount_cents",
                ],
                name="won_count_read_idx",
            ),  # fmt: skip
        ]

    def __str__(self):
        return f"{self.pipeline_id}/{self.owner_key}/{self.month}/{self.dimension}/{self.key}"


class StayCount(models.Model):
    """Completed stays per stage left and whole hour: their number and total seconds (the
    time-in-stage histogram of DOMAIN §8), kept like FunnelCount."""

    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="+")
    hour = models.BigIntegerField()
    count = models.BigIntegerField(default=0)
    seconds = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stage", "hour"], name="stay_count_key")]

    def __str__(self):
        return f"{self.stage_id}/{self.hour}h"


class OwnerStayCount(models.Model):
    """Completed stays per (current owner of the deal, stage left, whole hour): StayCount
    per owner, so that a team's or rep's time in stage needs no pass over their deals'
    history. Kept like FunnelCount (a hand-over recounts the people involved)."""

    owner_key = models.PositiveBigIntegerField()  # the owner's id, 0 for none
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="+")
    hour = models.BigIntegerField()
    count = models.BigIntegerField(default=0)
    seconds = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner_key", "stage", "hour"], name="owner_stay_count_key"
            )
        ]

    def __str__(self):
        return f"{self.owner_key}/{self.stage_id}/{self.hour}h"


class OpenDelta(models.Model):
    """How the open pipeline changed, per (pipeline, current owner, hour of a change,
    stage): Σ over the changes of that hour of (where the deal stood after the change −
    where it stood before), in count and cents — so that the open pipeline at any moment
    since ``SummaryState.delta_from_hour`` is the open pipeline now minus the later
    hours' rows (pipeline.summaries: "last week's pipeline"). Kept like FunnelCount."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    owner_key = models.PositiveBigIntegerField()  # the owner's id, 0 for none
    hour = models.BigIntegerField()  # whole hours since 1970-01-01 00:00 UTC
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="+")
    count = models.BigIntegerField(default=0)
    amount_cents = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "owner_key", "hour", "stage"], name="open_delta_key"
            )
        ]
        indexes = [
            # a whole pipeline's hours since a moment, from the index alone
            models.Index(
                fields=["pipeline", "hour", "stage", "count", "amount_cents"],
                name="open_delta_hour_idx",
            )
        ]

    def __str__(self):
        return f"{self.pipeline_id}/{self.owner_key}/{self.hour}/{self.stage_id}"


class SummaryState(models.Model):
    """One row: every StageChange with an id up to ``last_change_id`` is in the
    summaries. A bulk load that writes history past it makes the next report rebuild.
    OpenDelta holds every hour from ``delta_from_hour`` on."""

    last_change_id = models.BigIntegerField(default=0)
    delta_from_hour = models.BigIntegerField(default=0)
    # the time zone of WonCount's months ("": not counted yet)
    won_time_zone = models.CharField(max_length=64, blank=True, default="")

    def __str__(self):
        return str(self.last_change_id)
