"""The onboarding roadmap (成功路线图, DOMAIN §9, seed 002): tenure bands and their
standards.

A new rep first spends a **training** band that lasts a fixed number of weeks from the
hire date (our choice: a duration, not "until the manager marks it done", so the roadmap
needs no manual step and every rep's calendar is known in advance). The quota clock —
"month 0" — starts when training ends; the other bands cover months of that clock
(0–3, 3–6, …). A rep beyond the last band has graduated.

Each band holds standards: a metric, a comparison (at least, or a range such as 6–8
visits) and a scope. A **weekly** standard is judged on each calendar week (Monday to
Sunday, local time); a **goal** is a state the rep should have reached by the end of the
band (docs/onboarding.md).
"""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy as _


class Metric(models.TextChoices):
    ACCOUNTS_RESEARCHED = "accounts_researched", _("Accounts researched")
    NEW_ACCOUNTS = "new_accounts", _("New account profiles")
    POTENTIAL_ACCOUNTS = "potential_accounts", _("Potential accounts")
    PROSPECTING_HOURS = "prospecting_hours", _("Prospecting hours")
    VISIT_HOURS = "visit_hours", _("Visit hours")
    VISITS = "visits", _("Visits")
    OPPORTUNITIES_AT_STAGE = "opportunities_at_stage", _("Opportunities at or beyond a stage")
    COVERAGE = "coverage", _("Pipeline coverage of quota")
    YEAR_QUOTA_DONE = "year_quota_done", _("Year's quota done")
    SALES = "sales", _("Sales won")


# Metrics that count what happened in a span of time; they can be judged per week or,
# as a goal, cumulatively since the hire date. The others describe the state now.
FLOW_METRICS = frozenset(
    {
        Metric.ACCOUNTS_RESEARCHED,
        Metric.NEW_ACCOUNTS,
        Metric.PROSPECTING_HOURS,
        Metric.VISIT_HOURS,
        Metric.VISITS,
        Metric.SALES,
    }
)
PERCENT_METRICS = frozenset({Metric.COVERAGE, Metric.YEAR_QUOTA_DONE})
HOUR_METRICS = frozenset({Metric.PROSPECTING_HOURS, Metric.VISIT_HOURS})


class Scope(models.TextChoices):
    WEEKLY = "weekly", _("Every week")
    GOAL = "goal", _("Goal by the end of the band")


class Comparison(models.TextChoices):
    AT_LEAST = "at_least", _("at least")
    BETWEEN = "between", _("between")


class Band(models.Model):
    """A stretch of a new rep's first year with its own standards."""

    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)
    is_training = models.BooleanField(
        _("training"),
        default=False,
        help_text=_("The band right after the hire date, before the quota clock starts."),
    )
    duration_weeks = models.PositiveSmallIntegerField(
        _("duration (weeks)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(52)],
        help_text=_("Training only: how many weeks after the hire date it lasts."),
    )
    from_month = models.PositiveSmallIntegerField(
        _("from month"), null=True, blank=True, validators=[MaxValueValidator(60)]
    )
    to_month = models.PositiveSmallIntegerField(
        _("to month"), null=True, blank=True, validators=[MaxValueValidator(60)]
    )

    class Meta:
        verbose_name = _("onboarding band")
        verbose_name_plural = _("onboarding bands")
        ordering = ["-is_training", "from_month", "position", "pk"]
        constraints = [
            models.CheckConstraint(
                name="onboarding_band_shape",
                condition=(
                    models.Q(is_training=True, duration_weeks__gte=1)
                    | models.Q(
                        is_training=False,
                        from_month__isnull=False,
                        to_month__gt=models.F("from_month"),
                    )
                ),
            ),
        ]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.name_en and (translation.get_language() or "").startswith("en"):
            return self.name_en
        return self.name


class Standard(models.Model):
    """One line of a band: e.g. "every week at least 10 new account profiles" or
    "by the end of the band, open pipeline covering 45% of the quota"."""

    band = models.ForeignKey(
        Band, verbose_name=_("band"), on_delete=models.CASCADE, related_name="standards"
    )
    metric = models.CharField(_("metric"), max_length=30, choices=Metric.choices)
    scope = models.CharField(_("scope"), max_length=10, choices=Scope.choices)
    comparison = models.CharField(
        _("comparison"), max_length=10, choices=Comparison.choices, default=Comparison.AT_LEAST
    )
    value = models.DecimalField(
        _("value"),
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Hours for hour metrics, percent for coverage and quota done."),
    )
    value_max = models.DecimalField(
        _("up to"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("The upper end of a range (6–8 visits)."),
    )
    stage = models.ForeignKey(
        "pipeline.Stage",
        verbose_name=_("stage"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Opportunities at this stage or a later one of its pipeline."),
    )
    min_probability = models.DecimalField(
        _("or stages with a win rate of at least (%)"),
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text=_("Used when no stage is chosen: counts open deals in any pipeline."),
    )
    label = models.CharField(
        _("label"), max_length=100, blank=True, help_text=_("e.g. “intent confirmed”.")
    )
    label_en = models.CharField(_("English label"), max_length=100, blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("onboarding standard")
        verbose_name_plural = _("onboarding standards")
        ordering = ["band", "scope", "position", "pk"]

    def __str__(self):
        return f"{self.band} · {self.get_metric_display()}"

    @property
    def display_label(self) -> str:
        if self.label_en and (translation.get_language() or "").startswith("en"):
            return self.label_en
        return self.label
