"""Users: tenure for the onboarding roadmap, and whom a user may make an owner."""

from datetime import date

import pytest

from loudou.org.models import Role, User, assignable_owners
from loudou.org.services import create_user


@pytest.mark.parametrize(
    ("hired", "on", "months"),
    [
        (date(2025, 3, 15), date(2025, 3, 15), 0),
        (date(2025, 3, 15), date(2025, 4, 14), 0),
        (date(2025, 3, 15), date(2025, 4, 15), 1),
        (date(2025, 3, 15), date(2026, 3, 15), 12),
        (date(2024, 11, 30), date(2025, 2, 28), 2),
        (date(2024, 1, 31), date(2024, 2, 29), 0),
        (date(2025, 3, 15), date(2025, 1, 1), 0),
    ],
)
def test_tenure_months_counts_whole_months(hired, on, months):
    """Tenure is the number of whole months since hire, never negative."""
    assert User(hire_date=hired).tenure_months(on) == months


def test_tenure_months_without_hire_date_is_none():
    """A user with no hire date has no tenure."""
    assert User().tenure_months(date(2026, 1, 1)) is None


def test_tenure_months_defaults_to_today_in_company_time_zone(monkeypatch):
    """Without a date, tenure is counted up to today's date in the company's time zone."""
    monkeypatch.setattr("loudou.org.models.timezone.localdate", lambda: date(2026, 6, 1))
    assert User(hire_date=date(2026, 1, 1)).tenure_months() == 5


def owners(actor):
    return sorted(assignable_owners(actor).values_list("username", flat=True))


def test_rep_may_assign_only_themself(org):
    """A rep may make only themself the owner of a record."""
    assert owners(org.east_rep) == ["east_rep"]


def test_manager_may_assign_active_subtree(org):
    """A manager may choose anyone active in their subtree, themself included."""
    assert owners(org.east_mgr) == ["east_mgr", "east_rep", "east_rep2", "sub_rep"]
    assert owners(org.south_mgr) == ["south_mgr", "south_rep"]


def test_admin_may_assign_anyone_active(org):
    """An admin may choose any active user."""
    assert owners(org.admin) == [
        "admin", "east_mgr", "east_rep", "east_rep2", "south_mgr", "south_rep", "sub_rep",
    ]  # fmt: skip


def test_deactivated_and_departed_are_not_assignable(org):
    """People deactivated or marked as gone cannot be given records."""
    org.east_rep2.is_active = False
    org.east_rep2.save()
    org.sub_rep.left_on = date(2026, 1, 31)
    org.sub_rep.save()
    assert owners(org.east_mgr) == ["east_mgr", "east_rep"]


def test_create_user_admin_gets_django_admin(db):
    """An admin created by the service may use the Django admin; a rep may not."""
    boss = create_user("boss", role=Role.ADMIN)
    rep = create_user("rep", role=Role.REP)
    assert (boss.is_staff, boss.is_superuser, boss.has_usable_password()) == (True, True, False)
    assert (rep.is_staff, rep.is_superuser) == (False, False)
