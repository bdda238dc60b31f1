"""Writes to the roadmap's configuration: only an administrator changes bands and
standards. Every refusal raises before anything is written; a saved change shows in
every rep's roadmap on the next read (nothing is stored per rep)."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from loudou.core.exceptions import NotPermitted

from .models import FLOW_METRICS, Band, Comparison, Metric, Scope, Standard

BAND_FIELDS = {"name", "name_en", "position", "duration_weeks", "from_month", "to_month"}
STANDARD_FIELDS = {
    "metric", "scope", "comparison", "value", "value_max", "stage", "min_probability",
    "label", "label_en", "position",
}  # fmt: skip


def _require_admin(actor) -> None:
    if actor is None or not getattr(actor, "sees_everything", False):
        raise NotPermitted(_("Only an administrator edits the onboarding roadmap."))


def _assign(obj, data: dict, allowed: set) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise ValidationError({name: _("Unknown field.") for name in sorted(unknown)})
    for name, value in data.items():
        setattr(obj, name, value)


def clean_band(band: Band) -> None:
    """Field rules, then the shape: training has a duration; a month band a span that
    overlaps no other month band."""
    band.full_clean(validate_constraints=False)
    errors = {}
    if band.is_training:
        if not band.duration_weeks:
            errors["duration_weeks"] = _("Training needs a duration in weeks.")
    else:
        if band.from_month is None:
            errors["from_month"] = _("Enter the month the band starts.")
        if band.to_month is None:
            errors["to_month"] = _("Enter the month the band ends.")
        elif band.from_month is not None and band.to_month <= band.from_month:
            errors["to_month"] = _("The band must end after it starts.")
    if not errors and not band.is_training:
        others = Band.objects.filter(is_training=False).exclude(pk=band.pk)
        clash = others.filter(from_month__lt=band.to_month, to_month__gt=band.from_month).first()
        if clash is not None:
            errors["from_month"] = _("Overlaps the band “%(name)s”.") % {"name": clash}
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def create_band(*, actor, **data) -> Band:
    """Add a month band (training exists once, from the default data)."""
    _require_admin(actor)
    band = Band(is_training=False)
    _assign(band, data, BAND_FIELDS - {"duration_weeks"})
    clean_band(band)
    band.save()
    return band


@transaction.atomic
def update_band(band: Band, *, actor, **data) -> Band:
    """Rename or move a band. Whether it is the training band does not change."""
    _require_admin(actor)
    locked = Band.objects.select_for_update().get(pk=band.pk)
    allowed = BAND_FIELDS - ({"from_month", "to_month"} if locked.is_training else
                             {"duration_weeks"})  # fmt: skip
    _assign(locked, data, allowed)
    clean_band(locked)
    locked.save()
    return locked


@transaction.atomic
def delete_band(band: Band, *, actor) -> None:
    """Remove a month band with its standards (training stays: rename or shorten it)."""
    _require_admin(actor)
    if band.is_training:
        raise NotPermitted(_("The training band cannot be deleted; change its duration."))
    band.delete()


def clean_standard(standard: Standard) -> None:
    standard.full_clean(exclude=["band"])
    errors = {}
    if standard.scope == Scope.WEEKLY and standard.metric not in FLOW_METRICS:
        errors["scope"] = _("This metric is a state, not a weekly count: make it a goal.")
    if standard.comparison == Comparison.BETWEEN:
        if standard.value_max is None:
            errors["value_max"] = _("A range needs its upper end.")
        elif standard.value_max < standard.value:
            errors["value_max"] = _("The upper end must not be below the lower one.")
    if standard.metric == Metric.OPPORTUNITIES_AT_STAGE:
        if standard.stage_id is None and standard.min_probability is None:
            errors["stage"] = _("Choose a stage, or a minimum win rate.")
        elif standard.stage_id is not None and standard.stage.is_terminal:
            errors["stage"] = _("Choose an open stage.")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def create_standard(band: Band, *, actor, **data) -> Standard:
    """Add a standard to ``band``."""
    _require_admin(actor)
    standard = Standard(band=band)
    _assign(standard, data, STANDARD_FIELDS)
    if standard.comparison != Comparison.BETWEEN:
        standard.value_max = None
    clean_standard(standard)
    standard.save()
    return standard


@transaction.atomic
def update_standard(standard: Standard, *, actor, **data) -> Standard:
    """Change a standard; every roadmap reflects it on the next read."""
    _require_admin(actor)
    locked = Standard.objects.select_for_update().get(pk=standard.pk)
    _assign(locked, data, STANDARD_FIELDS)
    if locked.comparison != Comparison.BETWEEN:
        locked.value_max = None
    clean_standard(locked)
    locked.save()
    return locked


@transaction.atomic
def delete_standard(standard: Standard, *, actor) -> None:
    _require_admin(actor)
    standard.delete()
