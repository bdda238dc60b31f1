"""The opportunities per source (SourceCount, loudou/pipeline/summaries.py) always equal a
recount of the opportunities, and lead conversion by source read from them
(analytics.queries.scope_sources) equals the count of the scope's opportunities
themselves: after any sequence of service actions (source edits included), a hand-over
and a rebuild, for every viewer. Lead conversion costs as many queries with many deals
as with few. Runs on SQLite and, in the PostgreSQL run, on PostgreSQL."""

from datetime import timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loudou.analytics import queries, reports
from loudou.analytics.queries import Scope
from loudou.customers.choices import Source
from loudou.customers.services import create_account
from loudou.pipeline import services
from loudou.pipeline.models import Opportunity, SourceCount

from .test_pipeline_summaries import (  # noqa: F401 (reason: a fixture)
    _make,
    _play,
    _same_after_hand_over_and_rebuild,
    _viewer_scopes,
    reason,
)

SOURCES = ["", Source.REFERRAL, Source.WEBSITE, Source.EXHIBITION]

STEP = st.tuples(
    st.sampled_from(
        ["create", "move", "win", "lose", "reopen", "amount", "owner", "source", "source",
         "delete", "delete_many"]
    ),
    st.integers(0, 50),  # which opportunity
    st.integers(0, 3),  # which stage / owner / source
)  # fmt: skip


def sources_maintained() -> dict:
    return {
        (r.pipeline_id, r.owner_key, r.source, r.status): [r.count, r.amount_cents]
        for r in SourceCount.objects.all()
        if r.count or r.amount_cents
    }


def sources_recomputed() -> dict:
    """In Python, from the opportunities themselves."""
    result: dict[tuple, list[int]] = {}
    for opp in Opportunity.objects.all():
        key = (opp.pipeline_id, opp.owner_id or 0, opp.source, opp.status)
        entry = result.setdefault(key, [0, 0])
        entry[0] += 1
        entry[1] += int(opp.amount * 100)
    return result


def _play_with_sources(org, lost_reason, steps, pipelines) -> None:
    """Creations (with a source), moves, wins, losses, reopens, amount, owner and source
    edits and deletions (one, or a queryset) through the services, five hours apart;
    refused actions are skipped."""
    _play(
        org, lost_reason, [(action, which, arg, 5) for action, which, arg in steps],
        pipelines, seconds=0, create_amount=lambda which: Decimal(1000 + 37 * which) / 10,
        new_amount=lambda arg, which: Decimal(arg * 12345 + which) / 100, sources=SOURCES,
    )  # fmt: skip


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(STEP, min_size=1, max_size=25))
def test_source_counts_equal_the_opportunities_after_any_sequence(org, reason, steps):  # noqa: F811
    """After any sequence of creations, moves, wins, losses, reopens, amount, owner and
    source edits and deletions (one, or a queryset) through the services, and a
    hand-over, every SourceCount row equals the opportunities counted per (pipeline,
    owner, source, status) with their summed amount; a rebuild gives the same rows."""
    sid = transaction.savepoint()
    try:
        pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
        other = services.create_pipeline_from_template("classic", checklist_mode="advisory")
        _play_with_sources(org, reason, steps, [pipeline, other])
        assert sources_maintained() == sources_recomputed()
        _same_after_hand_over_and_rebuild(org, sources_maintained, sources_recomputed)
    finally:
        transaction.savepoint_rollback(sid)


def _deals(org, pipeline, count: int, offset: int = 0) -> None:
    """``count`` deals over four owners and the sources, some won, some lost."""
    account = create_account(actor=org.east_rep, name=f"恒信{offset}")
    start = timezone.now() - timedelta(days=60)
    owners = [org.east_rep, org.east_rep2, org.sub_rep, org.south_rep]
    paths = [("DC", "open"), ("DCBA", "won"), ("DCB", "lost"), ("D", "open")]
    for i in range(offset, offset + count):
        path, outcome = paths[i % 4]
        opp = _make(org, pipeline, account, path, outcome, start + timedelta(hours=i))
        services.update_opportunity(opp, actor=org.admin, owner=owners[(i // 4) % 4],
                                    source=SOURCES[i % 3 + (i // 12) % 2],
                                    amount=Decimal(900 * (i + 3)) / 100)  # fmt: skip


def test_scope_sources_equal_the_scan_for_every_viewer(org, reason):  # noqa: F811
    """For an admin, a manager, a rep with a colleague's deal shared with them, team and
    owner filters (and the date and product-line filters, read from the opportunities),
    the opportunities per source read by scope_sources equal opportunities_by_source of
    the scope's own opportunities: count, won, lost, open and won amount."""
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    _deals(org, pipeline, 24)
    shared = Opportunity.objects.filter(owner=org.south_rep).first()
    shared.shared_with.add(org.east_rep)
    seen = set()
    for scope in _viewer_scopes(org, pipeline):
        expected = queries.opportunities_by_source(scope.opportunities())
        assert queries.scope_sources(scope) == expected, scope
        seen.add(sum(v["opportunities"] for v in expected.values()))
    assert len(seen) > 3  # the scopes do differ


def _leads_queries(scope) -> int:
    with CaptureQueriesContext(connection) as captured:
        reports.leads_report(scope)
    return len(captured)


def test_lead_conversion_query_count_does_not_grow_with_the_deals(
    org,
    reason,  # noqa: F811
    django_assert_max_num_queries,
):
    """Lead conversion by source, for an admin, a manager and a rep, costs no more
    queries with 48 deals than with 8."""
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    _deals(org, pipeline, 8)
    scopes = [Scope(user=u, pipeline=pipeline) for u in (org.admin, org.east_mgr, org.east_rep)]
    few = [_leads_queries(scope) for scope in scopes]
    _deals(org, pipeline, 40, offset=8)
    for scope, n in zip(scopes, few, strict=True):
        with django_assert_max_num_queries(n):
            report = reports.leads_report(scope)
        assert report["total"]["opportunities"] == scope.opportunities().count()
