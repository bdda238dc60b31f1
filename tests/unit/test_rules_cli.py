"""``loudou rules sweep`` and ``loudou rules list``."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from loudou.customers.services import create_account
from loudou.rules.models import Breach, FollowUpRule, SweepRun


def run(*args) -> str:
    out = StringIO()
    call_command("rules", *args, stdout=out)
    return out.getvalue()


def test_list_prints_every_rule(db):
    """One line per rule, with its id, state and requirement."""
    lines = run("list").splitlines()
    assert len(lines) == FollowUpRule.objects.count() == 13
    assert lines[1].split()[:2] == [str(FollowUpRule.objects.order_by("position")[1].pk), "[off]"]


def test_sweep_at_a_moment_prints_the_summary(org):
    """``sweep --at`` evaluates at that moment and reports what it found."""
    account = create_account(actor=org.east_rep, name="恒信")
    type(account).objects.filter(pk=account.pk).update(grade="won")
    out = run("sweep", "--at", "2030-01-01T10:00:00")
    assert "1 breaches found, 0 settled" in out
    assert Breach.objects.get().account == account
    data = json.loads(run("sweep", "--at", "2030-01-01T10:05:00", "--json"))
    assert (data["mode"], data["opened"]) == ("incremental", 0)
    assert SweepRun.objects.count() == 2


def test_sweep_one_rule_and_unknown_rule(org):
    """``--rule`` limits the run (a partial run); an unknown id is an error."""
    rule = FollowUpRule.objects.get(requirement="stale")
    run("sweep", "--rule", str(rule.pk), "--json")
    assert SweepRun.objects.get().partial is True
    with pytest.raises(CommandError):
        run("sweep", "--rule", "999999")
