"""Normalised keys for duplicate detection (DOMAIN §5)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loudou.leads.normalize import normalize_company, normalize_email, normalize_phone


@pytest.mark.parametrize(
    "raw",
    ["13812345678", "+86 138-1234 5678", "0086 (138) 1234-5678", "+86（138）12345678",
     "１３８１２３４５６７８", " 138 1234 5678 ", "86 13812345678"],
)  # fmt: skip
def test_phone_variants_give_one_key(raw):
    """Country code, spaces, dashes, parentheses and full-width digits all normalise away."""
    assert normalize_phone(raw) == "13812345678"


def test_landline_keeps_its_area_code():
    """A landline keeps its leading zero and area code."""
    assert normalize_phone("021-6123 4567") == "02161234567"


def test_short_number_starting_with_86_is_not_cut():
    """A leading 86 is only a country code when a full number follows it."""
    assert normalize_phone("8612") == "8612"


def test_empty_phone_is_empty():
    """No phone gives an empty key, which matches nothing."""
    assert normalize_phone(None) == "" and normalize_phone("  - ") == ""


def test_email_is_trimmed_and_lower_case():
    """E-mail keys ignore surrounding spaces and case."""
    assert normalize_email("  Zhang.Wei@Example.COM ") == "zhang.wei@example.com"


@pytest.mark.parametrize(
    "raw",
    ["上海恒信科技有限公司", "上海恒信科技有限责任公司", "上海恒信科技股份有限公司",
     "上海恒信科技（有限公司）", "上海 恒信 科技", "上海恒信科技集团有限公司", "上海恒信科技。"],
)  # fmt: skip
def test_chinese_company_variants_give_one_key(raw):
    """Chinese legal suffixes, spaces and full-width punctuation are ignored."""
    assert normalize_company(raw) == "上海恒信科技"


@pytest.mark.parametrize(
    "raw",
    ["ACME Co., Ltd.", "Acme Co.,Ltd", "acme inc", "ACME Inc.", "Acme LLC", "ACME Corp.",
     "ＡＣＭＥ　ＬＴＤ", "Acme Company Limited", "A.C.M.E. Co., Ltd."],
)  # fmt: skip
def test_latin_company_variants_give_one_key(raw):
    """English legal suffixes, case, full width and punctuation are ignored."""
    assert normalize_company(raw) == "acme"


def test_suffix_inside_a_word_is_kept():
    """Only a separate word is a suffix: "Costco" keeps its "co"."""
    assert normalize_company("Costco") == "costco"


def test_name_that_is_only_a_suffix_keeps_it():
    """A name made only of a suffix is not emptied (it must still match itself)."""
    assert normalize_company("有限公司") == "有限公司"


@given(st.text(max_size=40))
def test_phone_is_idempotent(text):
    """Normalising a phone key again changes nothing."""
    assert normalize_phone(normalize_phone(text)) == normalize_phone(text)


@given(st.text(max_size=40))
def test_email_is_idempotent(text):
    """Normalising an e-mail key again changes nothing."""
    assert normalize_email(normalize_email(text)) == normalize_email(text)


@given(st.text(max_size=40))
def test_company_is_idempotent(text):
    """Normalising a company key again changes nothing."""
    assert normalize_company(normalize_company(text)) == normalize_company(text)


@given(st.text(alphabet="恒信科技上海 ", min_size=1, max_size=12))
def test_company_ignores_a_legal_suffix(core):
    """Adding "有限公司" to a name that has letters does not change its key."""
    if normalize_company(core):
        assert normalize_company(core + "有限公司") == normalize_company(core)
