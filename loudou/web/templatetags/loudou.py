"""Template filters used across Loudou's pages."""

from decimal import Decimal, InvalidOperation

from django import template
from django.conf import settings

register = template.Library()

SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "HKD": "HK$", "JPY": "¥", "GBP": "£"}


@register.filter
def money(value, currency=None):
    """¥1,234,567 or ¥1,234.50: thousands separators, cents only when there are any."""
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return value
    symbol = SYMBOLS.get(currency or settings.LOUDOU_CURRENCY, f"{currency} ")
    sign = "-" if amount < 0 else ""
    amount = abs(amount).quantize(Decimal("0.01"))
    text = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    return f"{sign}{symbol}{text}"


@register.filter
def percent(value, digits=0):
    """0.4567 → 45.7% for digits=1; None → —."""
    if value is None:
        return "—"
    return f"{Decimal(value) * 100:.{int(digits)}f}%"
