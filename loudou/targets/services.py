"""Targets: how a period's target is resolved, and every write to targets and standards.

Resolution rule (docs/targets.md): a target set directly for the period wins; otherwise a
quarter or a year is the sum of the month targets set inside it (``source="rolled_up"``,
``months`` says how many of its months were set); nothing set → ``None``.

Lock contract: every write locks the row it changes (``select_for_update``) and refuses a
stale ``version`` with :class:`Conflict` (409). Creating a row that someone else created
meanwhile is a 409 too (the unique indexes decide, not a prior read). A refused action
raises before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.core.services import check_version

from .models import (
    MONEY_MEASURES,
    PRODUCT_LINE_MEASURES,
    Measure,
    PeriodKind,
    Standard,
    Target,
    TargetLevel,
    period_end,
    period_start_is_valid,
)

MAX_AMOUNT = Decimal("99999999999999.99")


@dataclass(frozen=True)
class Tiers:
    """A resolved target: its tiers, where it came from (``set`` directly or
    ``rolled_up`` from months) and how many months inside the period are set."""

    target: Decimal | None
    stretch: Decimal | None
    challenge: Decimal | None
    source: str
    months: int

    def tier_reached(self, actual) -> str | None:
        """The highest tier ``actual`` reaches: challenge, stretch, target or None."""
        if actual is None:
            return None
        actual = Decimal(actual)
        for name in ("challenge", "stretch", "target"):
            value = getattr(self, name)
            if value is not None and actual >= value:
                return name
        return None

    def percent(self, actual) -> float | None:
        """``actual`` as a fraction of the target (None when the target is zero)."""
        if actual is None or not self.target:
            return None
        return float(Decimal(actual) / self.target)


# --- periods ---------------------------------------------------------------------------


def period_kind(start: date, end: date) -> str:
    """month, quarter or year for an exact [start, end); ValidationFailed otherwise."""
    for kind in (PeriodKind.MONTH, PeriodKind.QUARTER, PeriodKind.YEAR):
        if period_start_is_valid(kind, start) and period_end(kind, start) == end:
            return kind
    raise ValidationFailed(
        _("A target period is exactly one month, quarter or year."), field="period"
    )


def _month_starts(start: date, end: date) -> list[date]:
    months, day = [], start
    while day < end:
        months.append(day)
        day = period_end(PeriodKind.MONTH, day)
    return months


# --- resolution ------------------------------------------------------------------------


def _sum_tiers(rows) -> tuple[Decimal, Decimal | None, Decimal | None]:
    """Sum month tiers. A month without a stretch counts its target towards the stretch
    sum (and its stretch or target towards the challenge), so the sums keep the order
    target ≤ stretch ≤ challenge; a tier no month sets stays None."""
    target = sum((r.target for r in rows), Decimal(0))
    stretch = challenge = None
    if any(r.stretch is not None for r in rows):
        stretch = sum((r.stretch if r.stretch is not None else r.target for r in rows), Decimal(0))
    if any(r.challenge is not None for r in rows):
        challenge = sum(
            (
                r.challenge
                if r.challenge is not None
                else (r.stretch if r.stretch is not None else r.target)
                for r in rows
            ),
            Decimal(0),
        )
    return target, stretch, challenge


def resolve_rows(rows, kind: str, start: date) -> tuple[Tiers | None, Tiers | None]:
    """(direct, rolled_up) for one owner, measure and product line, from its target rows
    inside the period (rows of other periods are ignored). Pure: no queries."""
    end = period_end(kind, start)
    direct_row = next((r for r in rows if r.period == kind and r.start == start), None)
    months = [r for r in rows if r.period == PeriodKind.MONTH and start <= r.start < end]
    direct = rolled = None
    if kind != PeriodKind.MONTH and months:
        rolled = Tiers(*_sum_tiers(months), source="rolled_up", months=len(months))
    if direct_row is not None:
        count = len(months) if kind != PeriodKind.MONTH else 1
        direct = Tiers(
            direct_row.target, direct_row.stretch, direct_row.challenge, source="set", months=count
        )
    return direct, rolled


def _rows_for(*, measure, start, end, kind, user=None, team=None, product_line=None):
    qs = Target.objects.for_owner(user=user, team=team).filter(
        measure=measure, start__gte=start, start__lt=end, period__in={kind, PeriodKind.MONTH}
    )
    if product_line is None:
        qs = qs.filter(product_line__isnull=True)
    else:
        qs = qs.filter(product_line=product_line)
    return list(qs.only("period", "start", "target", "stretch", "challenge"))


def target_values(
    *, measure, start: date, end: date, user=None, team=None, product_line=None
) -> tuple[Tiers | None, Tiers | None]:
    """Both figures of a period: (set directly, rolled up from months); either may be
    None. One query. See :func:`target_value` for the arguments."""
    kind = period_kind(start, end)
    rows = _rows_for(
        measure=measure, start=start, end=end, kind=kind, user=user, team=team,
        product_line=product_line,
    )  # fmt: skip
    return resolve_rows(rows, kind, start)


def target_value(
    *, measure, start: date, end: date, user=None, team=None, product_line=None
) -> Tiers | None:
    """The target of one rep (``user``), one team (``team``) or the company (neither) for
    [start, end) — exactly one month, quarter or year, local dates, end exclusive.

    A target set directly for the period wins; otherwise a quarter or year rolls up from
    the months set inside it (``source="rolled_up"``, ``months`` = how many); None when
    nothing is set. ``product_line=None`` means the target across all product lines.
    One query; no permission check (callers show it only where the owner is visible).
    """
    direct, rolled = target_values(
        measure=measure, start=start, end=end, user=user, team=team, product_line=product_line
    )
    return direct or rolled


def targets_for_reps(*, measures, start: date, end: date, user_ids) -> dict:
    """{(user_id, measure): Tiers} for many reps in one query (the performance list);
    across all product lines. Periods that are not a month, quarter or year have none."""
    try:
        kind = period_kind(start, end)
    except ValidationFailed:
        return {}
    rows = Target.objects.filter(
        level=TargetLevel.REP,
        user_id__in=user_ids,
        measure__in=measures,
        product_line__isnull=True,
        start__gte=start,
        start__lt=end,
        period__in={kind, PeriodKind.MONTH},
    ).values_list(
        "user_id", "measure", "period", "start", "target", "stretch", "challenge", named=True
    )  # plain rows, not model instances: a year of month targets is thousands of rows
    grouped: dict = {}
    for row in rows:
        grouped.setdefault((row.user_id, row.measure), []).append(row)
    result = {}
    for key, group in grouped.items():
        direct, rolled = resolve_rows(group, kind, start)
        if direct or rolled:
            result[key] = direct or rolled
    return result


def targets_for_teams(*, measures, start: date, end: date, team_ids) -> dict:
    """{(team_id, measure): Tiers} for many teams in one query; company under key None."""
    try:
        kind = period_kind(start, end)
    except ValidationFailed:
        return {}
    from django.db.models import Q

    rows = Target.objects.filter(
        Q(level=TargetLevel.TEAM, team_id__in=team_ids) | Q(level=TargetLevel.COMPANY),
        measure__in=measures,
        product_line__isnull=True,
        start__gte=start,
        start__lt=end,
        period__in={kind, PeriodKind.MONTH},
    ).values_list(
        "team_id", "measure", "period", "start", "target", "stretch", "challenge", named=True
    )
    grouped: dict = {}
    for row in rows:
        grouped.setdefault((row.team_id, row.measure), []).append(row)
    result = {}
    for key, group in grouped.items():
        direct, rolled = resolve_rows(group, kind, start)
        if direct or rolled:
            result[key] = direct or rolled
    return result


# --- who may set what ------------------------------------------------------------------


def can_set(actor, *, level, team=None, user=None) -> bool:
    """An admin sets any target; a manager team and rep targets inside their subtree; a
    rep none."""
    if actor is None or not actor.is_authenticated or not actor.is_active:
        return False
    if actor.sees_everything:
        return True
    path = actor.managed_team_path
    if not path:
        return False
    if level == TargetLevel.TEAM and team is not None:
        return team.path.startswith(path)
    if level == TargetLevel.REP and user is not None:
        return bool(user.team_id) and user.team.path.startswith(path)
    return False


def can_set_any(actor) -> bool:
    return bool(actor.is_authenticated and (actor.sees_everything or actor.managed_team_path))


# --- validation ------------------------------------------------------------------------


def _amount(value, field: str, *, required: bool, whole: bool) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationFailed(_("This field is required."), field=field)
        return None
    try:
        from loudou.core.money import to_decimal

        amount = to_decimal(value)
    except (ValueError, InvalidOperation, TypeError):
        raise ValidationFailed(_("Enter a number."), field=field) from None
    if amount < 0:
        raise ValidationFailed(_("A target cannot be negative."), field=field)
    if amount > MAX_AMOUNT:
        raise ValidationFailed(_("This number is too large."), field=field)
    if whole and amount != amount.to_integral_value():
        raise ValidationFailed(_("This measure is counted in whole numbers."), field=field)
    return amount.quantize(Decimal("0.01"))


def clean_tiers(measure, target, stretch, challenge):
    """Parse and order-check the three tiers; ValidationFailed names the field."""
    whole = measure not in MONEY_MEASURES
    target = _amount(target, "target", required=True, whole=whole)
    stretch = _amount(stretch, "stretch", required=False, whole=whole)
    challenge = _amount(challenge, "challenge", required=False, whole=whole)
    if stretch is not None and stretch < target:
        raise ValidationFailed(_("The stretch tier must be at least the target."), field="stretch")
    if challenge is not None and challenge < (stretch if stretch is not None else target):
        raise ValidationFailed(
            _("The challenge tier must be at least the stretch tier (or the target)."),
            field="challenge",
        )
    return target, stretch, challenge


def _clean_key(*, level, team, user, measure, period, start, product_line):
    if level not in TargetLevel.values:
        raise ValidationFailed(_("Choose company, team or rep."), field="level")
    if measure not in Measure.values:
        raise ValidationFailed(_("Unknown measure."), field="measure")
    if period not in PeriodKind.values:
        raise ValidationFailed(_("Choose month, quarter or year."), field="period")
    if not isinstance(start, date) or not period_start_is_valid(period, start):
        raise ValidationFailed(
            _("A period starts on the first day of its month, quarter or year."), field="start"
        )
    if not 1900 <= start.year <= 2999:
        raise ValidationFailed(_("Year out of range."), field="start")
    if level == TargetLevel.TEAM and team is None:
        raise ValidationFailed(_("A team target names a team."), field="team")
    if level == TargetLevel.REP and user is None:
        raise ValidationFailed(_("A rep target names a rep."), field="user")
    if level != TargetLevel.TEAM and team is not None:
        raise ValidationFailed(_("Only a team target names a team."), field="team")
    if level != TargetLevel.REP and user is not None:
        raise ValidationFailed(_("Only a rep target names a rep."), field="user")
    if product_line is not None and measure not in PRODUCT_LINE_MEASURES:
        raise ValidationFailed(
            _("Activities and visits have no product line."), field="product_line"
        )


def _check_permission(actor, *, level, team, user):
    if not can_set(actor, level=level, team=team, user=user):
        raise NotPermitted(_("You may not set this target."))


def _find(*, level, team, user, measure, period, start, product_line):
    return (
        Target.objects.select_for_update()
        .filter(
            level=level,
            team=team,
            user=user,
            measure=measure,
            period=period,
            start=start,
            product_line=product_line,
        )  # fmt: skip
        .first()
    )


# --- writes ----------------------------------------------------------------------------


@transaction.atomic
def set_target(
    actor, *, level, measure, period, start, target, team=None, user=None, product_line=None,
    stretch=None, challenge=None, version=None, replace=False,
) -> Target:  # fmt: skip
    """Create the target for (level, owner, measure, period, start, product line), or
    change it when it exists. Changing an existing row needs the ``version`` the caller
    saw (a stale or missing one is a 409), unless ``replace`` says to overwrite (the CLI).
    """
    key = dict(
        level=level, team=team, user=user, measure=measure, period=period, start=start,
        product_line=product_line,
    )  # fmt: skip
    _clean_key(**key)
    _check_permission(actor, level=level, team=team, user=user)
    target, stretch, challenge = clean_tiers(measure, target, stretch, challenge)
    existing = _find(**key)
    if existing is not None:
        if version is None and not replace:
            raise Conflict(
                _("A target for this period was already set (by someone else?). Reload."),
                code="exists",
            )
        if not replace:
            check_version(existing, version)
        return _write(existing, actor, target, stretch, challenge)
    if version not in (None, "", 0):
        raise Conflict(_("This target was deleted by someone else. Reload."), code="gone")
    row = Target(**key, target=target, stretch=stretch, challenge=challenge, updated_by=actor)
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        raise Conflict(
            _("A target for this period was just set by someone else. Reload."), code="exists"
        ) from None
    return row


def _write(row, actor, target, stretch, challenge):
    row.target, row.stretch, row.challenge = target, stretch, challenge
    row.updated_by = actor
    row.version += 1
    row.save(update_fields=["target", "stretch", "challenge", "updated_by", "version",
                            "updated_at"])  # fmt: skip
    return row


@transaction.atomic
def update_target(row: Target, *, actor, version=None, **tiers) -> Target:
    """Change the tiers of a target (its key stays). ``tiers`` may hold target, stretch
    and challenge; the ones left out keep their value."""
    unknown = set(tiers) - {"target", "stretch", "challenge"}
    if unknown:
        raise ValidationFailed(_("Unknown field."), field=sorted(unknown)[0])
    locked = Target.objects.select_for_update().filter(pk=row.pk).first()
    if locked is None:
        raise Conflict(_("This target was deleted by someone else. Reload."), code="gone")
    _check_permission(actor, level=locked.level, team=locked.team, user=locked.user)
    check_version(locked, version)
    values = {name: tiers.get(name, getattr(locked, name)) for name in ("target", "stretch",
                                                                         "challenge")}  # fmt: skip
    target, stretch, challenge = clean_tiers(locked.measure, **values)
    return _write(locked, actor, target, stretch, challenge)


@transaction.atomic
def delete_target(row: Target, *, actor, version=None) -> None:
    """Delete a target; a stale ``version`` is a 409."""
    locked = Target.objects.select_for_update().filter(pk=row.pk).first()
    if locked is None:
        return
    _check_permission(actor, level=locked.level, team=locked.team, user=locked.user)
    check_version(locked, version)
    locked.delete()


@transaction.atomic
def set_months(
    actor, *, level, measure, year: int, months: dict, team=None, user=None, product_line=None,
    versions: dict | None = None,
) -> list[Target]:  # fmt: skip
    """Bulk entry of a year's twelve months for one owner and measure, in one transaction:
    ``months`` maps 1..12 to ``{"target", "stretch", "challenge"}`` (a blank target
    deletes that month's row). ``versions`` maps month → the version the form showed
    (None for a month that was empty). Any refusal leaves every month unchanged; its
    ``field`` names the month (``month_3.target``)."""
    versions = versions or {}
    saved = []
    for month in range(1, 13):
        values = months.get(month) or {}
        start = date(year, month, 1)
        key = dict(
            level=level, team=team, user=user, measure=measure, period=PeriodKind.MONTH,
            start=start, product_line=product_line,
        )  # fmt: skip
        try:
            _clean_key(**key)
            blank = (
                values.get("target") in (None, "")
                and not values.get("stretch")
                and not (values.get("challenge"))
            )
            if blank:
                existing = _find(**key)
                if existing is not None:
                    _check_permission(actor, level=level, team=team, user=user)
                    check_version(existing, versions.get(month))
                    existing.delete()
                continue
            saved.append(
                set_target(
                    actor,
                    **key,
                    target=values.get("target"),
                    stretch=values.get("stretch"),
                    challenge=values.get("challenge"),
                    version=versions.get(month),
                )  # fmt: skip
            )
        except ValidationFailed as exc:
            raise ValidationFailed(exc.message, field=f"month_{month}.{exc.field}") from None
    return saved


# --- standards -------------------------------------------------------------------------

STANDARD_FIELDS = ("measure", "period", "level", "product_line", "minimum", "note")


def _clean_standard(row: Standard):
    if row.product_line_id and row.measure not in PRODUCT_LINE_MEASURES:
        raise ValidationFailed(
            _("Activities and visits have no product line."), field="product_line"
        )
    row.minimum = _amount(
        row.minimum, "minimum", required=True, whole=row.measure not in MONEY_MEASURES
    )
    try:
        row.full_clean(validate_constraints=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ValidationFailed(messages[0], field=field) from None


def _require_admin(actor):
    if not (actor and actor.is_authenticated and actor.sees_everything):
        raise NotPermitted(_("Only an administrator edits standards."))


def _save_standard(row):
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        raise Conflict(_("This standard already exists."), code="exists") from None
    return row


@transaction.atomic
def create_standard(actor, **fields) -> Standard:
    """Add a standard (admins only); the same measure, period, level and product line
    twice is a 409."""
    _require_admin(actor)
    unknown = set(fields) - set(STANDARD_FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown field."), field=sorted(unknown)[0])
    row = Standard(**fields)
    _clean_standard(row)
    return _save_standard(row)


@transaction.atomic
def update_standard(row: Standard, *, actor, version=None, **fields) -> Standard:
    """Change a standard (admins only); ratings follow at once, being computed on read."""
    _require_admin(actor)
    unknown = set(fields) - set(STANDARD_FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown field."), field=sorted(unknown)[0])
    locked = Standard.objects.select_for_update().filter(pk=row.pk).first()
    if locked is None:
        raise Conflict(_("This standard was deleted by someone else. Reload."), code="gone")
    check_version(locked, version)
    for name, value in fields.items():
        setattr(locked, name, value)
    _clean_standard(locked)
    locked.version += 1
    return _save_standard(locked)


@transaction.atomic
def delete_standard(row: Standard, *, actor, version=None) -> None:
    """Delete a standard (admins only)."""
    _require_admin(actor)
    locked = Standard.objects.select_for_update().filter(pk=row.pk).first()
    if locked is None:
        return
    check_version(locked, version)
    locked.delete()


def visible_owner(actor, *, user=None, team=None) -> bool:
    """Whether ``actor`` may look at the targets and figures of this rep, team or the
    company: admins everything; managers their subtree and the company; a rep themself
    and their own team."""
    if not (actor and actor.is_authenticated and actor.is_active):
        return False
    if actor.sees_everything:
        return True
    path = actor.managed_team_path
    if user is not None:
        if user.pk == actor.pk:
            return True
        return bool(path and user.team_id and user.team.path.startswith(path))
    if team is not None:
        if path:
            return team.path.startswith(path)
        return team.pk == actor.team_id
    return bool(path)
