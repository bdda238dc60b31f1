"""Normalised keys for duplicate detection (DOMAIN §5): pure functions, no ORM.

Two records are possible duplicates when their normalised mobile, e-mail or company name
are equal. Every function is idempotent: ``f(f(x)) == f(x)``, so a stored key can be
compared with a freshly normalised input.
"""

import re
import unicodedata

_NON_DIGITS = re.compile(r"[^0-9]+")
# Characters that separate words or decorate a company name, removed before comparing.
_COMPANY_NOISE = re.compile(r"[\W_]+", re.UNICODE)

# Legal-form suffixes. Chinese ones are cut wherever they end the name; Latin ones only
# as separate words ("Costco" keeps its "co", "Acme Co." loses it). Longest first.
CJK_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "集团")
_LATIN_SUFFIX = re.compile(
    r"[\s,.]+(?:co\W*ltd|company\W+limited|limited|ltd|inc|llc|corp|corporation|co)$"
)
_TRAILING_NOISE = re.compile(r"[\W_]+$", re.UNICODE)


def _fixpoint(step, value: str) -> str:
    """Apply ``step`` until the text stops changing: NFKC and lower-casing can each undo
    the other's work on rare characters, and keys must be idempotent."""
    for _ in range(8):
        again = step(value)
        if again == value:
            break
        value = again
    return value


def normalize_phone(value: str | None) -> str:
    """A phone number as bare digits without China's country code: "+86 138-1234 5678",
    "0086 (138) 12345678" and full-width "１３８１２３４５６７８" all give "13812345678".
    Landlines keep their area code ("021-6123 4567" → "02161234567")."""
    if not value:
        return ""
    digits = _NON_DIGITS.sub("", unicodedata.normalize("NFKC", value))
    # Only strip the country code when what remains is a mainland number; "86" alone or
    # a short extension must not vanish.
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) >= 10:
            digits = digits[len(prefix) :]
            break
    return digits


def normalize_email(value: str | None) -> str:
    """An e-mail address without surrounding spaces, in lower case (full-width letters
    folded to ASCII)."""
    if not value:
        return ""
    return _fixpoint(lambda s: unicodedata.normalize("NFKC", s).strip().lower(), value)


def normalize_company(value: str | None) -> str:
    """A company name for comparison: full/half width folded (NFKC), lower case, spaces
    and punctuation removed, legal-form suffixes dropped: "上海恒信科技有限公司",
    "上海恒信科技 (有限公司)" and "上海 恒信 科技" all give "上海恒信科技"; "ACME Co., Ltd."
    and "acme inc" give "acme", "Costco" stays "costco". A name that is nothing but a suffix
    keeps it, so that it still compares with itself."""
    if not value:
        return ""
    return _fixpoint(_company_step, value)


def _company_step(value: str) -> str:
    text = unicodedata.normalize("NFKC", value).lower().strip()
    while True:
        text = _TRAILING_NOISE.sub("", text)
        match = _LATIN_SUFFIX.search(text)
        if match and match.start() > 0:
            text = text[: match.start()]
            continue
        cut = next((s for s in CJK_SUFFIXES if text.endswith(s) and len(text) > len(s)), None)
        if cut is None:
            break
        text = text[: -len(cut)]
    return _COMPANY_NOISE.sub("", text)
