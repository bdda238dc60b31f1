"""Breaches counted in reports: the performance list's breaches column
(loudou.targets.performance.breaches_by_owner → loudou.rules.queries)."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from loudou.customers.services import create_account
from loudou.org.models import User
from loudou.rules.models import Breach, FollowUpRule
from loudou.targets import performance

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def breaches(org):
    rule = FollowUpRule.objects.get(requirement="contact_every", conditions={"grades": ["C"]})
    account = create_account(actor=org.east_rep, name="恒信")

    def make(owner, due, resolved=None, key=None):
        return Breach.objects.create(
            rule=rule, owner=owner, account=account, due_at=due, resolved_at=resolved,
            key=key or f"t:{owner.pk}:{due.isoformat()}:{resolved}",
        )  # fmt: skip

    march = datetime(2025, 3, 10, 12, tzinfo=TZ)
    make(org.east_rep, march)  # open, late
    make(org.east_rep, march + timedelta(days=1), resolved=march + timedelta(days=3))  # met late
    make(org.east_rep, march, resolved=march - timedelta(hours=1))  # met before due: not late
    make(org.east_rep2, march + timedelta(days=2))
    make(org.east_rep, datetime(2025, 4, 1, 0, 1, tzinfo=TZ))  # April: outside
    make(org.east_rep, datetime(2025, 2, 28, 23, 59, tzinfo=TZ))  # February: outside
    return org


def test_late_breaches_per_owner_in_the_period(breaches):
    """March counts east_rep's open and late-met breaches (2) and east_rep2's (1); a
    breach met before it was due, and those due in February or April, do not count."""
    o = breaches
    counts = performance.breaches_by_owner(date(2025, 3, 1), date(2025, 4, 1))
    assert counts == {o.east_rep.pk: 2, o.east_rep2.pk: 1}


def test_owners_narrow_the_count(breaches):
    """``owners`` limits the count to those users."""
    o = breaches
    counts = performance.breaches_by_owner(
        date(2025, 3, 1), date(2025, 4, 1), owners=User.objects.filter(pk=o.east_rep2.pk)
    )
    assert counts == {o.east_rep2.pk: 1}


def test_performance_rows_carry_breaches(breaches, django_assert_max_num_queries):
    """The performance figures per owner include the breaches, in one query."""
    o = breaches
    with django_assert_max_num_queries(1):
        performance.breaches_by_owner(date(2025, 3, 1), date(2025, 4, 1))
    raw = performance.raw_by_owner(
        date(2025, 3, 1), date(2025, 4, 1), owners=User.objects.filter(team=o.east)
    )
    assert raw[o.east_rep.pk]["breaches"] == 2
    assert raw[o.east_rep2.pk]["breaches"] == 1
