"""Targets with three tiers, per company, team or rep and per month, quarter or year; and
the performance standards a rep is rated against (DOMAIN §9).

A target row holds exactly what its level needs: a company target names neither a team
nor a user, a team target a team, a rep target a user. The database enforces that, the
order of the tiers, and one row per (level, team, user, measure, period, start, product
line) — with partial unique indexes, because NULL team, user and product line must count
as equal and ``nulls_distinct`` exists only on PostgreSQL 15+.
"""

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from loudou.core.models import TimeStampedModel, VersionedModel
from loudou.org.models import Level as UserLevel

NON_NEGATIVE = [MinValueValidator(Decimal("0"))]


class TargetLevel(models.TextChoices):
    COMPANY = "company", pgettext_lazy("target level", "Company")
    TEAM = "team", _("Team")
    REP = "rep", _("Rep")


class Measure(models.TextChoices):
    SIGNED = "signed", _("Signed amount")
    COLLECTED = "collected", _("Collected amount")
    WON_COUNT = "won_count", _("Deals won")
    NEW_OPPORTUNITIES = "new_opportunities", _("New opportunities")
    ACTIVITIES = "activities", _("Activities")
    VISITS = "visits", _("Visits")


MONEY_MEASURES = frozenset({Measure.SIGNED, Measure.COLLECTED})
# Activities carry no product line: a per-product-line target of them would mean nothing.
PRODUCT_LINE_MEASURES = frozenset(
    {Measure.SIGNED, Measure.COLLECTED, Measure.WON_COUNT, Measure.NEW_OPPORTUNITIES}
)


class PeriodKind(models.TextChoices):
    MONTH = "month", _("Month")
    QUARTER = "quarter", _("Quarter")
    YEAR = "year", _("Year")


class StandardPeriod(models.TextChoices):
    MONTH = "month", _("Month")
    QUARTER = "quarter", _("Quarter")


def period_start_is_valid(kind: str, start: date) -> bool:
    """A period starts on the first day of its month, quarter or year."""
    if start.day != 1:
        return False
    if kind == PeriodKind.QUARTER:
        return start.month in (1, 4, 7, 10)
    if kind == PeriodKind.YEAR:
        return start.month == 1
    return True


def period_end(kind: str, start: date) -> date:
    """The exclusive end of the month, quarter or year starting on ``start``."""
    months = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}[kind]
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


class TargetQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Admins see every target; a manager the company's, the teams of their subtree
        and the reps in it (themself included); a rep their own and their team's."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.sees_everything:
            return self.all()
        scope = Q(user=user)
        path = user.managed_team_path
        if path:
            scope |= Q(level=TargetLevel.COMPANY)
            scope |= Q(team__path__startswith=path) | Q(user__team__path__startswith=path)
        elif user.team_id:
            scope |= Q(level=TargetLevel.TEAM, team_id=user.team_id)
        return self.filter(scope)

    def for_owner(self, *, user=None, team=None):
        """The targets of one rep, one team, or (neither) the company."""
        if user is not None:
            return self.filter(level=TargetLevel.REP, user=user)
        if team is not None:
            return self.filter(level=TargetLevel.TEAM, team=team)
        return self.filter(level=TargetLevel.COMPANY)


def _unique_per_level():
    """One partial unique index per (level, product line set or not): the columns that
    are NULL by the level's rule are left out, so NULLs never make two rows distinct."""
    constraints = []
    owner_field = {TargetLevel.COMPANY: [], TargetLevel.TEAM: ["team"], TargetLevel.REP: ["user"]}
    for level, owner in owner_field.items():
        for with_line in (False, True):
            fields = [*owner, "measure", "period", "start"]
            fields += ["product_line"] if with_line else []
            constraints.append(
                models.UniqueConstraint(
                    fields=fields,
                    condition=Q(level=level, product_line__isnull=not with_line),
                    name=f"target_unique_{level}_{'line' if with_line else 'all'}",
                    violation_error_message=_("A target for this period is already set."),
                )
            )
    return constraints


class Target(TimeStampedModel, VersionedModel):
    """A goal for one measure over one month, quarter or year, with optional stretch and
    challenge tiers above it. Quarter and year targets may be set directly or left to roll
    up from the months inside them (services.target_value)."""

    level = models.CharField(_("level"), max_length=10, choices=TargetLevel.choices)
    team = models.ForeignKey(
        "org.Team", verbose_name=_("team"), on_delete=models.CASCADE, null=True, blank=True,
        related_name="targets",
    )  # fmt: skip
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("rep"), on_delete=models.CASCADE, null=True,
        blank=True, related_name="targets",
    )  # fmt: skip
    measure = models.CharField(_("measure"), max_length=20, choices=Measure.choices)
    period = models.CharField(_("period"), max_length=10, choices=PeriodKind.choices)
    start = models.DateField(_("start"), help_text=_("First day of the month, quarter or year."))
    product_line = models.ForeignKey(
        "pipeline.ProductLine", verbose_name=_("product line"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="targets",
    )  # fmt: skip
    target = models.DecimalField(
        _("target"), max_digits=16, decimal_places=2, validators=NON_NEGATIVE
    )
    stretch = models.DecimalField(
        _("stretch"), max_digits=16, decimal_places=2, null=True, blank=True,
        validators=NON_NEGATIVE,
    )  # fmt: skip
    challenge = models.DecimalField(
        _("challenge"), max_digits=16, decimal_places=2, null=True, blank=True,
        validators=NON_NEGATIVE,
    )  # fmt: skip
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", editable=False,
    )  # fmt: skip

    objects = TargetQuerySet.as_manager()

    class Meta:
        verbose_name = _("target")
        verbose_name_plural = _("targets")
        ordering = ["start", "period", "measure", "pk"]
        indexes = [
            models.Index(fields=["measure", "start", "period"], name="target_lookup_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(level=TargetLevel.COMPANY, team__isnull=True, user__isnull=True)
                    | Q(level=TargetLevel.TEAM, team__isnull=False, user__isnull=True)
                    | Q(level=TargetLevel.REP, team__isnull=True, user__isnull=False)
                ),
                name="target_owner_matches_level",
                violation_error_message=_(
                    "A company target names no team or rep, a team target a team, a rep "
                    "target a rep."
                ),
            ),
            models.CheckConstraint(
                condition=Q(target__gte=0),
                name="target_not_negative",
                violation_error_message=_("A target cannot be negative."),
            ),  # fmt: skip
            models.CheckConstraint(
                condition=Q(stretch__isnull=True) | Q(stretch__gte=F("target")),
                name="target_stretch_above_target",
                violation_error_message=_("The stretch tier must be at least the target."),
            ),
            models.CheckConstraint(
                condition=Q(challenge__isnull=True)
                | (Q(stretch__isnull=True) & Q(challenge__gte=F("target")))
                | (Q(stretch__isnull=False) & Q(challenge__gte=F("stretch"))),
                name="target_challenge_above_stretch",
                violation_error_message=_(
                    "The challenge tier must be at least the stretch tier (or the target)."
                ),
            ),
            *_unique_per_level(),
        ]

    def __str__(self):
        return f"{self.owner_label} · {self.get_measure_display()} · {self.period_label}"

    @property
    def end(self) -> date:
        return period_end(self.period, self.start)

    @property
    def period_label(self) -> str:
        """2026-11, 2026Q4 or 2026: the notation of the report filters."""
        if self.period == PeriodKind.MONTH:
            return f"{self.start.year}-{self.start.month:02d}"
        if self.period == PeriodKind.QUARTER:
            return f"{self.start.year}Q{(self.start.month - 1) // 3 + 1}"
        return str(self.start.year)

    @property
    def owner_label(self) -> str:
        if self.level == TargetLevel.REP and self.user_id:
            return str(self.user)
        if self.level == TargetLevel.TEAM and self.team_id:
            return str(self.team)
        return str(pgettext_lazy("target level", "Company"))


class Standard(TimeStampedModel, VersionedModel):
    """A minimum a rep should reach per month or quarter (e.g. a junior makes 40 visits a
    month). Blank level = every level; no product line = all product lines. Ratings are
    computed when read, so changing a standard changes every rating at once."""

    measure = models.CharField(_("measure"), max_length=20, choices=Measure.choices)
    period = models.CharField(_("period"), max_length=10, choices=StandardPeriod.choices)
    level = models.CharField(
        _("rep level"), max_length=10, choices=UserLevel.choices, blank=True,
        help_text=_("Empty: every level."),
    )  # fmt: skip
    product_line = models.ForeignKey(
        "pipeline.ProductLine", verbose_name=_("product line"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="standards", help_text=_("Empty: all product lines."),
    )  # fmt: skip
    minimum = models.DecimalField(
        _("minimum"), max_digits=16, decimal_places=2, validators=NON_NEGATIVE
    )
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("standard")
        verbose_name_plural = _("standards")
        ordering = ["measure", "period", "level", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(minimum__gte=0),
                name="standard_minimum_not_negative",
                violation_error_message=_("A minimum cannot be negative."),
            ),  # fmt: skip
            models.UniqueConstraint(
                fields=["measure", "period", "level"],
                condition=Q(product_line__isnull=True),
                name="standard_unique_all_lines",
                violation_error_message=_("This standard already exists."),
            ),
            models.UniqueConstraint(
                fields=["measure", "period", "level", "product_line"],
                condition=Q(product_line__isnull=False),
                name="standard_unique_per_line",
                violation_error_message=_("This standard already exists."),
            ),
        ]

    def __str__(self):
        level = self.get_level_display() if self.level else _("every level")
        period = self.get_period_display()
        return f"{self.get_measure_display()} ≥ {self.minimum} / {period} ({level})"
