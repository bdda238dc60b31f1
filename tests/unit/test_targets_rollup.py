"""How a period's target is resolved: direct targets win, quarters and years roll up from
the months set inside them, tiers are validated, and the database keeps one row per key
even when team, rep and product line are NULL."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from loudou.core.exceptions import ValidationFailed
from loudou.pipeline.models import ProductLine
from loudou.targets.models import Target
from loudou.targets.services import Tiers, set_target, target_value, target_values

D = Decimal


def month(actor, m, target, stretch=None, challenge=None, **owner):
    level = "rep" if "user" in owner else "team" if "team" in owner else "company"
    return set_target(
        actor, level=level, measure="signed", period="month", start=date(2026, m, 1),
        target=target, stretch=stretch, challenge=challenge, **owner,
    )  # fmt: skip


def test_quarter_rolls_up_from_its_months(org):
    """Without a quarter target, Q4 is the sum of October–December, tiers summed too, and
    it says it rolled up from 3 months."""
    for m, (t, s, c) in {10: (100, 120, 150), 11: (200, 220, 250), 12: (300, 330, 400)}.items():
        month(org.admin, m, t, s, c, user=org.east_rep)
    tiers = target_value(
        measure="signed", start=date(2026, 10, 1), end=date(2027, 1, 1), user=org.east_rep
    )
    assert tiers == Tiers(D("600.00"), D("670.00"), D("800.00"), "rolled_up", 3)


def test_direct_quarter_target_wins_and_both_are_available(org):
    """A quarter target set directly wins over the months' sum; target_values gives both."""
    month(org.admin, 10, 100, user=org.east_rep)
    month(org.admin, 11, 100, user=org.east_rep)
    set_target(org.admin, level="rep", user=org.east_rep, measure="signed", period="quarter",
               start=date(2026, 10, 1), target="500")  # fmt: skip
    args = dict(measure="signed", start=date(2026, 10, 1), end=date(2027, 1, 1), user=org.east_rep)
    assert target_value(**args) == Tiers(D("500.00"), None, None, "set", 2)
    direct, rolled = target_values(**args)
    assert direct.target == D("500.00")
    assert rolled == Tiers(D("200.00"), None, None, "rolled_up", 2)


def test_year_rolls_up_from_partial_months(org):
    """A year with only some months set rolls up from those, and counts them."""
    for m in (1, 2, 7):
        month(org.admin, m, 10, team=org.east)
    tiers = target_value(measure="signed", start=date(2026, 1, 1), end=date(2027, 1, 1),
                         team=org.east)  # fmt: skip
    assert (tiers.target, tiers.source, tiers.months) == (D("30.00"), "rolled_up", 3)


def test_missing_stretch_counts_the_month_target(org):
    """In a roll-up, a month without a stretch adds its target to the stretch sum."""
    month(org.admin, 1, 100, 150)
    month(org.admin, 2, 100)
    tiers = target_value(measure="signed", start=date(2026, 1, 1), end=date(2026, 4, 1))
    assert (tiers.target, tiers.stretch, tiers.challenge) == (D("200.00"), D("250.00"), None)


def test_nothing_set_is_none_and_levels_do_not_mix(org):
    """A rep's month target is not the team's or the company's; nothing set is None."""
    month(org.admin, 3, 100, user=org.east_rep)
    args = dict(measure="signed", start=date(2026, 3, 1), end=date(2026, 4, 1))
    assert target_value(**args) is None
    assert target_value(**args, team=org.east) is None
    assert target_value(**args, user=org.east_rep2) is None
    assert target_value(**args, user=org.east_rep).target == D("100.00")


def test_product_line_targets_are_separate(org):
    """A product line's target does not count as the all-lines target, nor the reverse."""
    line = ProductLine.objects.create(name="软件", code="sw")
    set_target(org.admin, level="company", measure="signed", period="month",
               start=date(2026, 5, 1), target=70, product_line=line)  # fmt: skip
    args = dict(measure="signed", start=date(2026, 5, 1), end=date(2026, 6, 1))
    assert target_value(**args) is None
    assert target_value(**args, product_line=line).target == D("70.00")


def test_period_must_be_exactly_a_month_quarter_or_year(org):
    """A range that is not exactly one month, quarter or year is refused with a 422."""
    with pytest.raises(ValidationFailed):
        target_value(measure="signed", start=date(2026, 1, 1), end=date(2026, 3, 1))
    with pytest.raises(ValidationFailed):
        target_value(measure="signed", start=date(2026, 2, 1), end=date(2026, 5, 1))


@pytest.mark.parametrize(
    ("tiers", "field"),
    [
        ((100, 90, None), "stretch"),
        ((100, 120, 110), "challenge"),
        ((100, None, 90), "challenge"),
        ((-1, None, None), "target"),
        (("abc", None, None), "target"),
        ((None, None, None), "target"),
    ],
)
def test_tier_order_is_validated(org, tiers, field):
    """stretch ≥ target, challenge ≥ stretch (or target), no negative or missing target:
    a refusal names the field and stores nothing."""
    with pytest.raises(ValidationFailed) as caught:
        month(org.admin, 1, *tiers)
    assert caught.value.field == field
    assert not Target.objects.exists()


def test_counts_are_whole_numbers(org):
    """A count measure (visits) refuses a fraction."""
    with pytest.raises(ValidationFailed) as caught:
        set_target(org.admin, level="rep", user=org.east_rep, measure="visits", period="month",
                   start=date(2026, 1, 1), target="2.5")  # fmt: skip
    assert caught.value.field == "target"


def test_start_must_open_its_period(org):
    """A quarter starting in February is refused."""
    with pytest.raises(ValidationFailed) as caught:
        set_target(org.admin, level="company", measure="signed", period="quarter",
                   start=date(2026, 2, 1), target=1)  # fmt: skip
    assert caught.value.field == "start"


def _raw(**fields):
    base = dict(measure="signed", period="month", start=date(2026, 1, 1), target=1)
    return Target(**{**base, **fields})


@pytest.mark.parametrize("level", ["company", "team", "rep"])
def test_database_refuses_a_second_row_with_null_keys(org, level):
    """The unique indexes treat NULL team, rep and product line as equal: the database
    itself refuses a duplicate company, team or rep target."""
    owner = {"company": {}, "team": {"team": org.east}, "rep": {"user": org.east_rep}}[level]
    _raw(level=level, **owner).save()
    with pytest.raises(IntegrityError), transaction.atomic():
        _raw(level=level, **owner).save()
    assert Target.objects.count() == 1


def test_database_allows_same_key_for_another_product_line(org):
    """A product line's row and the all-lines row may coexist."""
    line = ProductLine.objects.create(name="硬件", code="hw")
    _raw(level="company").save()
    _raw(level="company", product_line=line).save()
    assert Target.objects.count() == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"level": "company", "team_id": "east"},
        {"level": "team"},
        {"level": "rep", "team_id": "east", "user_id": "east_rep"},
        {"level": "company", "stretch": 0},
        {"level": "company", "stretch": 5, "challenge": 2},
    ],
)
def test_database_checks_level_and_tiers(org, fields):
    """Check constraints refuse a row whose owner does not fit its level or whose tiers
    are out of order, even when the services are bypassed."""
    for key in ("team_id", "user_id"):
        if key in fields:
            fields[key] = getattr(org, fields[key]).pk
    with pytest.raises(IntegrityError), transaction.atomic():
        _raw(**fields).save()
