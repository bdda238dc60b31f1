"""The maintained lead counts (LeadCount, LeadDealCount; loudou/leads/summaries.py) always
equal a recount of the leads and their deals, after any sequence of the leads' and the
deals' services (create, edit, claim, release, assign, bulk assignment, disqualify,
convert, merge, delete, hand-over, a deal won, lost, re-priced or deleted), and lead
conversion by source read from them equals the count of the scope's own leads for every
kind of viewer. Runs on SQLite and, in the PostgreSQL run, on PostgreSQL."""

from decimal import Decimal

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loudou.analytics import queries, reports
from loudou.analytics.queries import Scope
from loudou.core.exceptions import ServiceError
from loudou.customers.choices import Source
from loudou.leads import assignment, services, summaries
from loudou.leads.merge import merge
from loudou.leads.models import AssignmentRule, Lead, LeadCount, LeadDealCount, PublicPool
from loudou.pipeline import services as deals
from loudou.pipeline.models import Opportunity

from .test_pipeline_summaries import _viewer_scopes, reason  # noqa: F401 (reason: a fixture)

SOURCES = ["", Source.REFERRAL, Source.WEBSITE, Source.EXHIBITION]
ACTIONS = ["create", "create", "pooled", "source", "claim", "release", "assign", "to_pool",
           "disqualify", "convert", "convert", "win", "lose", "amount", "delete", "delete_deal",
           "merge", "bulk", "handover", "delete_many"]  # fmt: skip
STEP = st.tuples(
    st.sampled_from(ACTIONS),
    st.integers(0, 40),  # which lead
    st.integers(0, 3),  # which owner / source / pool
)


def maintained() -> tuple[dict, dict]:
    leads = {(r.owner_key, r.pool_key, r.source, r.status): r.count
             for r in LeadCount.objects.all() if r.count}  # fmt: skip
    deals_ = {(r.owner_key, r.pool_key, r.source, r.pipeline_id, r.deal_status):
              (r.count, r.amount_cents)
              for r in LeadDealCount.objects.all() if r.count or r.amount_cents}  # fmt: skip
    return leads, deals_


def recounted() -> tuple[dict, dict]:
    """In Python, from the leads and their deals themselves."""
    leads: dict[tuple, int] = {}
    deals_: dict[tuple, tuple[int, int]] = {}
    for lead in Lead.objects.select_related("converted_opportunity"):
        base = (lead.owner_id or 0, lead.pool_id or 0, lead.source or "")
        leads[(*base, lead.status)] = leads.get((*base, lead.status), 0) + 1
        opp = lead.converted_opportunity
        if opp is not None:
            key = (*base, opp.pipeline_id, opp.status)
            n, c = deals_.get(key, (0, 0))
            deals_[key] = (n + 1, c + int(opp.amount * 100))
    return leads, deals_


def _pools(org):
    limits = {"daily_claim_limit": 100, "max_owned": 100, "reclaim_block_days": 0}
    east = services.create_pool(actor=org.admin, name="华东公海", regions=[org.east_region],
                                **limits)  # fmt: skip
    anywhere = services.create_pool(actor=org.admin, name="全国公海", **limits)
    return [east, anywhere]


def _play(org, reason, steps, pipeline, pools) -> None:  # noqa: F811
    """Run hypothesis ``steps`` through the services; refused actions are skipped."""
    owners = [org.east_rep, org.east_rep2, org.sub_rep, org.south_rep]
    leads: list[int] = []
    for action, which, arg in steps:
        if action in ("create", "pooled") or not leads:
            n = len(leads)
            fields = {"name": f"L{n}", "company": f"公司{n}", "mobile": f"139{n:08d}",
                      "source": SOURCES[(arg + which) % 4]}  # fmt: skip
            if action == "pooled":
                lead, _dups = services.create_lead(actor=org.admin, pool=pools[arg % 2], **fields)
            else:
                lead, _dups = services.create_lead(actor=org.admin, owner=owners[arg], **fields)
            leads.append(lead.pk)
            continue
        pk = leads[which % len(leads)]
        lead = Lead.objects.filter(pk=pk).first()
        if lead is None:
            continue
        opp = lead.converted_opportunity
        try:
            with transaction.atomic():
                if action == "source":
                    services.update_lead(lead, actor=org.admin, source=SOURCES[arg])
                elif action == "claim":
                    services.claim_lead(lead, rep=owners[arg])
                elif action == "release":
                    services.release_lead(lead, rep=org.admin, reason="x", pool=pools[arg % 2])
                elif action == "assign":
                    services.assign_lead(lead, actor=org.admin, to=owners[arg])
                elif action == "to_pool":
                    services.assign_lead(lead, actor=org.admin, pool=pools[arg % 2])
                elif action == "disqualify":
                    services.disqualify_lead(lead, actor=org.admin, reason="x")
                elif action == "convert":
                    services.convert_lead(lead, actor=org.admin, pipeline=pipeline,
                                          amount=Decimal(1000 + 37 * which) / 10)  # fmt: skip
                elif action == "win" and opp is not None:
                    deals.win_opportunity(opp, actor=org.admin)
                elif action == "lose" and opp is not None:
                    deals.lose_opportunity(opp, reason, actor=org.admin)
                elif action == "amount" and opp is not None:
                    deals.update_opportunity(opp, actor=org.admin,
                                             amount=Decimal(arg * 12345 + which) / 100)  # fmt: skip
                elif action == "delete":
                    lead.delete()
                elif action == "delete_deal" and opp is not None:
                    Opportunity.objects.filter(pk=opp.pk).delete()
                elif action == "merge":
                    other = leads[(which + arg + 1) % len(leads)]
                    if other != pk and Lead.objects.filter(pk=other).exists():
                        merge("lead", pk, other, actor=org.admin, take=["source"])
                elif action == "bulk":
                    Lead.objects.filter(pk=pk).update(owner=None, pool=None)
                    summaries.rebuild()  # the unowned, unpooled lead the rules then place
                    assignment.assign_many(Lead.objects.filter(owner=None, pool=None))
                elif action == "handover":
                    giver = owners[arg]
                    if arg % 2:
                        services.hand_over_leads(giver, to=owners[(arg + 1) % 4], by=org.admin)
                    else:
                        services.hand_over_leads(giver, pool=pools[0], by=org.admin)
                elif action == "delete_many":
                    Lead.objects.filter(pk__in=leads[which % len(leads) :: 3]).delete()
        except ServiceError:
            pass


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(STEP, min_size=1, max_size=30))
def test_lead_counts_equal_the_leads_after_any_sequence(org, reason, steps):  # noqa: F811
    """After any sequence of lead services (create, pooled create, source edit, claim,
    release, assign to a rep or a pool, disqualify, convert, merge, delete one or many,
    bulk assignment by the rules, hand-over to a rep or a pool) and deal services on the
    converted leads' deals (win, lose, amount, delete), the LeadCount and LeadDealCount
    rows equal the leads counted per (owner, pool, source, status) and per (owner, pool,
    source, deal pipeline, deal status) with the deals' amount; a rebuild gives the
    same rows."""
    sid = transaction.savepoint()
    try:
        AssignmentRule.objects.create(name="rr", method="round_robin", position=1)
        AssignmentRule.objects.get(name="rr").reps.set([org.east_rep, org.south_rep])
        pipeline = deals.create_pipeline_from_template("dcba", checklist_mode="advisory")
        _play(org, reason, steps, pipeline, _pools(org))
        expected = recounted()
        assert maintained() == expected
        summaries.rebuild()
        assert maintained() == expected
    finally:
        transaction.savepoint_rollback(sid)


def _leads(org, pipeline, pools, count: int, offset: int = 0) -> None:
    """``count`` leads over four owners, two pools and the sources; some converted (their
    deals some won, some lost), some disqualified."""
    owners = [org.east_rep, org.east_rep2, org.sub_rep, org.south_rep]
    for i in range(offset, offset + count):
        fields = {"name": f"L{i}", "company": f"公司{i}", "mobile": f"139{i:08d}",
                  "source": SOURCES[i % 3 + (i // 12) % 2]}  # fmt: skip
        if i % 5 == 4:
            services.create_lead(actor=org.admin, pool=pools[i % 2], **fields)
            continue
        lead, _dups = services.create_lead(actor=org.admin, owner=owners[(i // 4) % 4], **fields)
        if i % 5 == 3:
            services.disqualify_lead(lead, actor=org.admin, reason="x")
        elif i % 5 in (1, 2):
            lead = services.convert_lead(lead, actor=org.admin, pipeline=pipeline,
                                         amount=Decimal(900 * (i + 3)) / 100)  # fmt: skip
            if i % 3 == 0:
                deals.win_opportunity(lead.converted_opportunity, actor=org.admin)


def test_scope_leads_equal_the_scan_for_every_viewer(org, reason):  # noqa: F811
    """For an admin, a manager, a rep, a rep whose region's pool admits them, a rep with
    a colleague's lead shared with them, team and owner filters (and the date and
    product-line filters, read from the leads), the leads per source read by scope_leads
    equal leads_by_source of the scope's own leads: leads, converted, disqualified, into
    the pipeline, won and won amount."""
    pipeline = deals.create_pipeline_from_template("dcba", checklist_mode="advisory")
    pools = _pools(org)
    _leads(org, pipeline, pools, 40)
    shared = Lead.objects.filter(owner=org.south_rep).first()
    shared.shared_with.add(org.east_rep)
    pooled = Lead.objects.filter(pool=pools[0]).first()
    pooled.shared_with.add(org.south_rep)  # shared and in a pool south_rep cannot see
    seen = set()
    scopes = _viewer_scopes(org, pipeline) + [Scope(user=org.south_rep, pipeline=pipeline)]
    for scope in scopes:
        expected = queries.leads_by_source(scope.leads(), pipeline)
        assert queries.scope_leads(scope) == expected, scope
        seen.add(sum(v["leads"] for v in expected.values()))
    assert len(seen) > 4  # the scopes do differ
    assert not PublicPool.objects.get(pk=pools[0].pk).admits(org.south_rep)


def _queries(scope) -> int:
    with CaptureQueriesContext(connection) as captured:
        reports.leads_report(scope)
    return len(captured)


def test_lead_conversion_query_count_does_not_grow_with_the_leads(
    org,
    reason,  # noqa: F811
    django_assert_max_num_queries,
):
    """Lead conversion by source, for an admin, a manager and a rep, costs no more
    queries with 50 leads than with 10, and its totals are the scope's leads."""
    pipeline = deals.create_pipeline_from_template("dcba", checklist_mode="advisory")
    pools = _pools(org)
    _leads(org, pipeline, pools, 10)
    scopes = [Scope(user=u, pipeline=pipeline) for u in (org.admin, org.east_mgr, org.east_rep)]
    few = [_queries(scope) for scope in scopes]
    _leads(org, pipeline, pools, 40, offset=10)
    for scope, n in zip(scopes, few, strict=True):
        with django_assert_max_num_queries(n):
            report = reports.leads_report(scope)
        assert report["total"]["leads"] == scope.leads().count()
