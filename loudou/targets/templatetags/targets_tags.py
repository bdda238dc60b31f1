"""Template filters of the targets pages."""

from decimal import Decimal

from django import template
from django.utils.translation import gettext as _

from loudou.web.templatetags.loudou import money

register = template.Library()


@register.filter
def figure(value, is_money=False):
    """Money as ¥1,234; a count as 1,234; None as —."""
    if value is None or value == "":
        return "—"
    if is_money:
        return money(value)
    number = Decimal(value)
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number:,.1f}"


@register.filter
def bar_width(fraction):
    """A progress bar's width in percent, 0–100."""
    if fraction is None:
        return 0
    return max(0, min(100, round(float(fraction) * 100)))


@register.filter
def tier_class(tier):
    """Bar colour by the tier reached."""
    return {"challenge": "bg-primary", "stretch": "bg-info", "target": "bg-success"}.get(
        tier, "bg-warning"
    )


@register.filter
def tier_label(tier):
    return {"target": _("Target"), "stretch": _("Stretch"), "challenge": _("Challenge")}.get(
        tier, ""
    )


@register.filter
def level_label(level):
    from loudou.org.models import Level

    return dict(Level.choices).get(level, level)


@register.filter
def get(mapping, key):
    return mapping.get(key) if mapping else None


@register.simple_tag
def row_percent(row, measure):
    return row.percent(measure)


@register.simple_tag
def row_tier(row, measure):
    return row.tier(measure)
