"""Parsing the cell values of imported files: pure functions, no ORM.

Spreadsheets from Excel and from other CRMs write the same value many ways: a date as an
Excel serial number (45352), as "2024-03-05", "3/5/2024", "2024/3/5" or "2024年3月5日";
an amount as "¥1,234.50", "RMB 1,234", "1.2万". Each parser returns the value or raises
:class:`BadValue` with a reason the user can act on.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from datetime import timezone as timezone_type
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.translation import gettext as _

EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 = 1900-01-01, including Excel's 1900 leap bug
# Serials outside these bounds are more likely a number typed into a date column.
SERIAL_MIN, SERIAL_MAX = 1, 2_958_465  # 9999-12-31

_CURRENCY = re.compile(r"^(?:rmb|cny|usd|eur|[¥￥$€£])\s*|\s*(?:rmb|cny|usd|eur|元|[¥￥$€£])$")
_ZH_DATE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?(.*)$")
_YMD = re.compile(r"^(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})(?:[ T](.*))?$")
_MDY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})(?:[ T](.*))?$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*(am|pm)?$", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
# "1,234,567.50": what spreadsheets and CRM exports write for amounts (at most 22 digits,
# so that the slow path's multiplication by 1 could not have rounded it)
_GROUPED_NUMBER = re.compile(r"^\d{1,3}(?:,\d{3}){1,6}(?:\.\d{1,6})?$")
TRUE_WORDS = {"true", "1", "yes", "y", "是", "对", "√", "✓", "x"}
FALSE_WORDS = {"false", "0", "no", "n", "否", "不", ""}


class BadValue(ValueError):
    """A cell that cannot be read as what its column holds; ``reason`` says why."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def text(value) -> str:
    """A cell as trimmed text: numbers that are whole print without ".0" (a phone number
    stored as a number in Excel arrives as a float)."""
    if type(value) is str:  # the common case first: every CSV cell
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _normalise(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


def parse_decimal(value, *, allow_percent=False) -> Decimal | None:
    """An amount: thousands separators, currency marks (¥ ￥ RMB CNY $ 元) and the
    Chinese 万 (×10,000) are understood; empty gives None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadValue(_("not a number"))
    if isinstance(value, int | float):
        return Decimal(str(value))
    if _PLAIN_NUMBER.match(value):  # fast path: "1234", "12.5"
        return Decimal(value)
    if _GROUPED_NUMBER.match(value):  # fast path: "1,234.50"
        return Decimal(value.replace(",", ""))
    raw = _normalise(str(value)).lower().replace(",", "").replace(" ", "")
    if not raw:
        return None
    raw = _CURRENCY.sub("", raw)
    factor = Decimal(1)
    if raw.endswith("万元"):
        raw, factor = raw[:-2], Decimal(10_000)
    elif raw.endswith("万"):
        raw, factor = raw[:-1], Decimal(10_000)
    if allow_percent and raw.endswith("%"):
        raw = raw[:-1]
    try:
        number = Decimal(raw) * factor
    except InvalidOperation:
        raise BadValue(_("not a number")) from None
    if not number.is_finite():
        raise BadValue(_("not a number"))
    return number


def parse_amount(value) -> Decimal | None:
    """A money amount: a number ≥ 0 with at most two decimals after rounding."""
    number = parse_decimal(value)
    if number is None:
        return None
    if number < 0:
        raise BadValue(_("negative amount"))
    number = number.quantize(Decimal("0.01"))
    if number >= Decimal("1e12"):
        raise BadValue(_("amount too large"))
    return number


def parse_percent(value) -> Decimal | None:
    """A probability in percent (0–100); "30%", "30" and 0.3 from a percent-formatted
    Excel cell all give 30."""
    if isinstance(value, float) and 0 < value < 1:
        value *= 100
    number = parse_decimal(value, allow_percent=True)
    if number is None:
        return None
    if not 0 <= number <= 100:
        raise BadValue(_("not a percentage between 0 and 100"))
    return number.quantize(Decimal("0.01"))


def parse_bool(value) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    word = _normalise(text(value)).lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise BadValue(_("not yes or no"))


def _serial(number: float) -> datetime:
    if not SERIAL_MIN <= number <= SERIAL_MAX:
        raise BadValue(_("not a date"))
    days = int(number)
    seconds = round((number - days) * 86400)
    return datetime.combine(EXCEL_EPOCH + timedelta(days=days), time()) + timedelta(seconds=seconds)


def _time_of(rest: str | None) -> time:
    rest = (rest or "").strip()
    if not rest:
        return time()
    rest = re.sub(r"(?:Z|[+-]\d{2}:?\d{2}|\s*(?:UTC|GMT|CST))$", "", rest).strip()
    match = _TIME.match(rest)
    if not match:
        raise BadValue(_("not a time of day"))
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    half = (match[4] or "").lower()
    if half == "pm" and hour < 12:
        hour += 12
    elif half == "am" and hour == 12:
        hour = 0
    try:
        return time(hour, minute, second)
    except ValueError:
        raise BadValue(_("not a time of day")) from None


def parse_datetime_naive(value) -> datetime | None:
    """A date/time as written in the file, without a zone. Day-first dates (31/12/2024)
    are read when the first number cannot be a month; otherwise M/D/YYYY, the order of
    US exports (Salesforce, HubSpot) and of the Excel re-saves teams send."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, bool):
        raise BadValue(_("not a date"))
    if isinstance(value, int | float):
        return _serial(float(value))
    if len(value) >= 10 and value[4] == "-" and value[:4].isdigit():
        try:  # fast path: ISO 8601, what machine exports write
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    raw = _normalise(str(value))
    if not raw:
        return None
    try:  # the common machine format first: it is also the fastest
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is not None:
        return parsed
    try:
        return _serial(float(raw))
    except ValueError:
        pass
    try:
        if match := _YMD.match(raw):
            year, month, day, rest = int(match[1]), int(match[2]), int(match[3]), match[4]
        elif match := _ZH_DATE.match(raw):
            year, month, day, rest = int(match[1]), int(match[2]), int(match[3]), match[4]
        elif match := _MDY.match(raw):
            first, second, year, rest = int(match[1]), int(match[2]), int(match[3]), match[4]
            month, day = (second, first) if first > 12 else (first, second)
        else:
            raise BadValue(_("not a date"))
        return datetime.combine(date(year, month, day), _time_of(rest))
    except ValueError as error:
        if isinstance(error, BadValue):
            raise
        raise BadValue(_("not a date")) from None


def parse_date(value) -> date | None:
    moment = parse_datetime_naive(value)
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = timezone.localtime(moment)
    return moment.date()


def parse_datetime(value) -> datetime | None:
    """An aware datetime; times without a zone are the company's time zone."""
    moment = None
    if type(value) is str and len(value) >= 10 and value[4] == "-":
        try:  # ISO 8601 ("Z" too), what machine exports write: the fast path
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
    if moment is None:
        moment = parse_datetime_naive(value)
    if moment is None or moment.tzinfo is not None:
        return moment
    return timezone.make_aware(moment)


def memoized(parse, size: int = 4096):
    """``parse`` remembering its answers for the last distinct cells: stage names,
    probabilities, flags and sources repeat on every row of a large file. A bad cell's
    reason is remembered too."""
    cache: dict = {}

    def wrapper(value):
        try:
            hit = cache.get(value)
        except TypeError:  # an unhashable cell
            return parse(value)
        if hit is None:
            try:
                hit = (True, parse(value))
            except BadValue as error:
                hit = (False, error.reason)
            if len(cache) >= size:
                cache.clear()
            cache[value] = hit
        if hit[0]:
            return hit[1]
        raise BadValue(hit[1])

    return wrapper


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)
_ONE_MICRO = timedelta(microseconds=1)
_DAY_MICROS = 86_400_000_000


def micros_parser(size: int = 100_000):
    """A function giving, for a cell, ``parse_datetime(cell)`` as whole microseconds
    since the epoch (None for an empty cell; BadValue as parse_datetime raises it),
    exactly, without a datetime per cell for the usual machine export: ISO 8601 text
    with its own offset ("2024-03-05T09:30:00+08:00", "…Z") is its date (remembered)
    plus its time less its offset (remembered). A history file of 400,000 rows has a
    few hundred distinct dates and times of day. Anything else — no offset (the
    company's zone, with its summer times), Excel serials, other formats — goes
    through parse_datetime."""
    days: dict[str, int] = {}
    rests: dict[str, int] = {}

    def slow(value):
        moment = parse_datetime(value)
        if moment is None:
            return None
        at = (moment - _EPOCH) // _ONE_MICRO
        # Only a fixed offset written in the text splits into a date and the rest.
        if (
            type(value) is str and len(value) > 10 and value[4] == "-" and value[7] == "-"
            and value[10] in "T " and type(moment.tzinfo) is timezone_type
        ):  # fmt: skip
            day = (moment.replace(tzinfo=None).date() - _EPOCH_DAY).days
            if len(days) > size or len(rests) > size:  # bounded: memory stays flat
                days.clear()
                rests.clear()
            days[value[:10]] = day
            rests[value[10:]] = at - day * _DAY_MICROS
        return at

    def parse(value):
        if type(value) is str:
            day = days.get(value[:10])
            if day is not None:
                rest = rests.get(value[10:])
                if rest is not None:
                    return day * _DAY_MICROS + rest
        return slow(value)

    parse.days, parse.rests = days, rests  # for loops that read them inline
    return parse
