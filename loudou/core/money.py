"""Money is Decimal with a currency, never float."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings

CENT = Decimal("0.01")


def to_decimal(value) -> Decimal:
    """Turn user or file input into a Decimal; thousands separators and ¥/￥ are allowed.

    Raises ``ValueError`` for anything that is not a finite number.
    """
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        text = str(value).strip().replace(",", "").replace("，", "")
        for symbol in ("¥", "￥", "CNY", "RMB", "$", "元"):
            text = text.replace(symbol, "")
        try:
            result = Decimal(text.strip())
        except InvalidOperation as exc:
            raise ValueError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def quantize(amount: Decimal) -> Decimal:
    """Round to cents, half up, as accountants do."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def default_currency() -> str:
    return settings.LOUDOU_CURRENCY
