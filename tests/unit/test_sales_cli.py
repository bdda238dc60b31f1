"""``loudou sales overdue`` lists the overdue plan lines and their ageing totals."""

import json
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from loudou.sales import testing

pytestmark = pytest.mark.django_db


def test_overdue_lists_uncovered_lines_in_scope(org):
    """The JSON output has the overdue line of a visible contract, and a user's view
    leaves out contracts outside their scope."""
    today = date(2026, 6, 30)
    plans = [{"due_date": today - timedelta(days=45), "amount": "700"}]
    mine = testing.contract(org.east_rep, amount="1000", plans=plans)
    testing.contract(
        org.south_rep,
        amount="500",
        plans=[{"due_date": today - timedelta(days=1), "amount": "500"}],
    )
    out = StringIO()
    call_command(
        "sales", "overdue", "--today", "2026-06-30", "--user", "east_rep", "--json", stdout=out
    )
    data = json.loads(out.getvalue())
    assert data["overdue"] == "700.00" and data["buckets"]["31-60"] == "700.00"
    assert [line["contract"] for line in data["lines"]] == [mine.number]


def test_unknown_user_is_an_error(org):
    """Naming a user who does not exist is a command error, not a traceback."""
    with pytest.raises(CommandError):
        call_command("sales", "overdue", "--user", "nobody")
