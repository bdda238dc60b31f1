"""The per-owner stay histogram (OwnerStayCount, loudou/pipeline/summaries.py) always
equals a recount from the history under each deal's current owner, and a team's or rep's
time in stage read from it (analytics.queries.scope_stays) equals the histogram of their
deals' own history: after any sequence of service actions, a hand-over and a rebuild.
Runs on SQLite and, in the PostgreSQL run, on PostgreSQL."""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loudou.analytics import queries
from loudou.customers.services import create_account
from loudou.pipeline import services
from loudou.pipeline.models import Opportunity, OwnerStayCount, StageChange

from .test_pipeline_summaries import (  # noqa: F401 (reason: a fixture)
    STEP,
    _make,
    _play,
    _same_after_hand_over_and_rebuild,
    _viewer_scopes,
    reason,
)


def owner_stays_maintained() -> dict:
    return {
        (r.owner_key, r.stage_id, r.hour): [r.count, r.seconds]
        for r in OwnerStayCount.objects.all()
        if r.count or r.seconds
    }


def owner_stays_recomputed() -> dict:
    """In Python, from the history and each deal's owner now."""
    owner_of = dict(Opportunity.objects.values_list("pk", "owner_id"))
    result: dict[tuple, list[int]] = {}
    for change in StageChange.objects.filter(stay_seconds__isnull=False):
        key = (owner_of[change.opportunity_id] or 0, change.from_stage_id,
               change.stay_seconds // 3600)  # fmt: skip
        entry = result.setdefault(key, [0, 0])
        entry[0] += 1
        entry[1] += change.stay_seconds
    return result


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(STEP, min_size=1, max_size=25))
def test_owner_stays_equal_the_history_after_any_sequence(org, reason, steps):  # noqa: F811
    """After any sequence of creations, moves, wins, losses, reopens, amount and owner
    edits and deletions (one, or a queryset) through the services, and a hand-over,
    every OwnerStayCount row equals the stays of the history counted under their deal's
    current owner; a rebuild gives the same rows."""
    sid = transaction.savepoint()
    try:
        pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
        other = services.create_pipeline_from_template("classic", checklist_mode="advisory")
        _play(org, reason, steps, [pipeline, other], seconds=61,
              create_amount=lambda which: Decimal(1000 + 37 * which) / 10,
              new_amount=lambda arg, which: Decimal(arg * 12345 + which) / 100)  # fmt: skip
        assert owner_stays_maintained() == owner_stays_recomputed()
        _same_after_hand_over_and_rebuild(org, owner_stays_maintained, owner_stays_recomputed)
    finally:
        transaction.savepoint_rollback(sid)


def test_scope_stays_equal_the_history_for_every_viewer(org, reason):  # noqa: F811
    """For an admin, a manager, a rep with a colleague's deal shared with them, team and
    owner filters (and the date and product-line filters, read from the history), the time
    in stage read by scope_stays equals stay_histograms of the scope's deals, hour by
    hour, after deals changed owner."""
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    account = create_account(actor=org.east_rep, name="恒信")
    start = timezone.now() - timedelta(days=60)
    for i, (rep, path, outcome) in enumerate([
        (org.east_rep, "DC", "open"), (org.east_rep, "DCBA", "won"), (org.east_rep, "DCB", "open"),
        (org.east_rep2, "DCB", "open"), (org.sub_rep, "DCBA", "won"), (org.sub_rep, "DC", "open"),
        (org.south_rep, "DCB", "open"), (org.south_rep, "DCBA", "won"),
    ]):  # fmt: skip
        opp = _make(org, pipeline, account, path, outcome, start + timedelta(hours=7 * i))
        services.update_opportunity(opp, actor=org.admin, owner=rep)
    shared = Opportunity.objects.filter(owner=org.south_rep).first()
    shared.shared_with.add(org.east_rep)
    assert owner_stays_maintained() == owner_stays_recomputed()
    checked = 0
    for scope in _viewer_scopes(org, pipeline):
        expected = queries.stay_histograms(scope.opportunities())
        assert queries.scope_stays(scope) == expected, scope
        checked += sum(stage["count"] for stage in expected.values())
    assert checked > 0
