"""Filters of the roadmap pages: metric names, thresholds and progress widths."""

from decimal import Decimal

from django import template
from django.utils.translation import gettext as _

from loudou.onboarding.models import Metric

register = template.Library()


@register.filter
def metric_name(row) -> str:
    """The metric's name, with the standard's label when it has one."""
    name = str(Metric(row["metric"]).label)
    return f"{name} · {row['label']}" if row.get("label") else name


def _number(value) -> str:
    if value is None:
        return "—"
    value = Decimal(value)
    if value == value.to_integral_value():
        return f"{value:,.0f}"
    return f"{value.normalize():,f}"


@register.filter
def amount(value, unit="") -> str:
    """12 h, 45%, 3; — for none."""
    if value is None:
        return "—"
    text = _number(value)
    if unit == "h":
        return _("%(n)s h") % {"n": text}
    return f"{text}{unit}"


@register.filter
def threshold(row) -> str:
    """≥ 10 h, or 6–8 for a range."""
    unit = row["unit"]
    if row.get("value_max") is not None:
        return f"{_number(row['value'])}–{amount(row['value_max'], unit)}"
    return f"≥ {amount(row['value'], unit)}"


@register.filter
def bar(actual, goal) -> int:
    """The width of a progress bar in percent (0–100)."""
    if actual is None or not goal:
        return 0
    return int(min(Decimal(actual) / Decimal(goal), Decimal(1)) * 100)
