"""The won deals per (pipeline, owner, month, dimension, value) (WonCount,
loudou/pipeline/summaries.py) always equal a recount of the won opportunities — months in
the company's time zone, the account's region and industry as they are now — after any
sequence of service actions: wins at any hour, reopenings, amount, owner, source, product
line and account edits, an account's region or industry edited through the account
services, deletions, a hand-over and a rebuild. Runs on SQLite and, in the PostgreSQL
run, on PostgreSQL."""

import copy
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loudou.core.exceptions import ServiceError
from loudou.customers.choices import Source
from loudou.customers.services import create_account, update_account
from loudou.pipeline import services, summaries
from loudou.pipeline.choices import Status
from loudou.pipeline.models import Opportunity, ProductLine, SummaryState, WonCount

from .test_pipeline_summaries import (  # noqa: F401 (reason: a fixture)
    _same_after_hand_over_and_rebuild,
    reason,
)

SOURCES = ["", Source.REFERRAL, Source.WEBSITE]
INDUSTRIES = ["", "制造", "零售"]

STEP = st.tuples(
    st.sampled_from(
        ["create", "move", "win", "win", "lose", "reopen", "amount", "owner", "source",
         "product_line", "account", "region", "industry", "delete", "delete_many"]
    ),
    st.integers(0, 50),  # which opportunity (or account)
    st.integers(0, 3),  # which stage / owner / source / line / account / region
    st.integers(1, 400),  # hours since the previous step
)  # fmt: skip


def won_maintained() -> dict:
    return {
        (r.pipeline_id, r.dimension, r.month, r.owner_key, r.key): [r.count, r.amount_cents]
        for r in WonCount.objects.all()
        if r.count or r.amount_cents
    }


def won_recomputed() -> dict:
    """In Python, from the won opportunities and their accounts as they are now."""
    tz = ZoneInfo(django_settings.TIME_ZONE)
    result: dict[tuple, list[int]] = {}
    for opp in Opportunity.objects.filter(status=Status.WON).select_related("account"):
        local = opp.closed_at.astimezone(tz)
        month = local.year * 100 + local.month
        keys = {
            "region": str(opp.account.region_id or ""),
            "industry": opp.account.industry,
            "product_line": str(opp.product_line_id or ""),
            "source": opp.source,
        }
        for dimension, key in keys.items():
            entry = result.setdefault((opp.pipeline_id, dimension, month, opp.owner_id, key),
                                      [0, 0])  # fmt: skip
            entry[0] += 1
            entry[1] += int(opp.amount * 100)
    return result


def _play_won(org, reason, steps, pipelines) -> None:  # noqa: F811
    """Run ``steps`` through the services (refused actions skipped): deals over three
    accounts, two product lines (and none) and the sources; wins at the step's moment
    (the clock starts an hour before a local month begins, so wins fall on both sides
    of month ends); account region and industry edits through update_account."""
    owners = [org.east_rep, org.east_rep2, org.sub_rep, org.south_rep]
    regions = [None, org.east_region, org.shanghai, org.south_region]
    lines = [None, *ProductLine.objects.bulk_create(
        [ProductLine(code="a", name="甲"), ProductLine(code="b", name="乙")]
    )]  # fmt: skip
    accounts = [create_account(actor=org.east_rep, name=f"恒信{i}", region=regions[i],
                               industry=INDUSTRIES[i % 3]) for i in range(3)]  # fmt: skip
    local = timezone.localtime(timezone.now() - timedelta(days=400))
    clock = datetime(local.year, local.month, 1, tzinfo=local.tzinfo) - timedelta(hours=1)
    opps: list[int] = []
    for action, which, arg, hours in steps:
        clock += timedelta(hours=hours)
        if action in ("region", "industry"):
            account = accounts[which % 3]
            account.refresh_from_db()
            change = {"region": regions[arg]} if action == "region" else {
                "industry": INDUSTRIES[arg % 3]}  # fmt: skip
            update_account(account, actor=org.admin, **change)
            continue
        if action == "create" or not opps:
            target = pipelines[arg % len(pipelines)]
            opp = services.create_opportunity(
                actor=owners[arg], pipeline=target, account=accounts[which % 3],
                name=f"x{len(opps)}", stage=list(target.open_stages())[arg % 3],
                amount=Decimal(1000 + 37 * which) / 10, when=clock,
                source=SOURCES[(arg + which) % 3], product_line=lines[which % 3],
            )  # fmt: skip
            opps.append(opp.pk)
            continue
        pk = opps[which % len(opps)]
        opp = Opportunity.objects.get(pk=pk)
        edit = {
            "amount": {"amount": Decimal(arg * 12345 + which) / 100},
            "owner": {"owner": owners[arg]},
            "source": {"source": SOURCES[arg % 3]},
            "product_line": {"product_line": lines[arg % 3]},
            "account": {"account": accounts[arg % 3]},
        }  # fmt: skip
        try:
            if action == "move":
                stages = list(opp.pipeline.open_stages())
                if stages[arg % len(stages)].pk != opp.stage_id:
                    services.move_opportunity(opp, stages[arg % len(stages)], actor=opp.owner,
                                              when=clock)  # fmt: skip
            elif action == "win":
                services.win_opportunity(opp, actor=opp.owner, when=clock)
            elif action == "lose":
                services.lose_opportunity(opp, reason, actor=opp.owner, when=clock)
            elif action == "reopen":
                services.reopen_opportunity(opp, actor=opp.owner, when=clock)
            elif action in edit:
                services.update_opportunity(opp, actor=opp.owner, **edit[action])
            elif action == "delete":
                opp.delete()
                opps.remove(pk)
            else:  # delete_many: a queryset, as an import's undo does
                doomed = opps[: arg + 1]
                Opportunity.objects.filter(pk__in=doomed).delete()
                opps = [o for o in opps if o not in doomed]
        except ServiceError:
            pass


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(STEP, min_size=1, max_size=25))
def test_won_counts_equal_the_won_deals_after_any_sequence(org, reason, steps):  # noqa: F811
    """After any sequence of creations, moves, wins (on both sides of month ends),
    losses, reopens, amount, owner, source, product line and account edits, account
    region and industry edits and deletions (one, or a queryset) through the services,
    and a hand-over, every WonCount row equals the won deals counted per (pipeline,
    dimension, local month of the win, owner, value) with their summed amount; a rebuild
    gives the same rows."""
    sid = transaction.savepoint()
    try:
        pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
        other = services.create_pipeline_from_template("classic", checklist_mode="advisory")
        _play_won(org, reason, steps, [pipeline, other])
        assert summaries.is_fresh()
        assert won_maintained() == won_recomputed()
        _same_after_hand_over_and_rebuild(org, won_maintained, won_recomputed)
    finally:
        transaction.savepoint_rollback(sid)


def test_a_region_edit_moves_the_accounts_won_deals(org, reason):  # noqa: F811
    """Editing an account's region moves its won deals (and only the won ones) from the
    old region's rows to the new region's, in the same transaction; an edit of another
    field moves nothing."""
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    account = create_account(actor=org.east_rep, name="恒信", region=org.east_region)
    for amount in ("100.00", "250.50", "7.25"):
        opp = services.create_opportunity(
            actor=org.east_rep, pipeline=pipeline, account=account, name=amount,
            amount=Decimal(amount),
        )  # fmt: skip
        if amount != "7.25":
            services.win_opportunity(opp, actor=org.east_rep)

    def regions() -> dict:
        rows = WonCount.objects.filter(dimension="region").exclude(count=0)
        return {r.key: (r.count, r.amount_cents) for r in rows}

    assert regions() == {str(org.east_region.pk): (2, 35050)}
    account = update_account(account, actor=org.admin, region=org.south_region)
    assert regions() == {str(org.south_region.pk): (2, 35050)}
    update_account(account, actor=org.admin, phone="021-1234")
    assert regions() == {str(org.south_region.pk): (2, 35050)}
    assert won_maintained() == won_recomputed()


def test_another_time_zone_makes_the_next_report_recount(org, reason, settings):  # noqa: F811
    """WonCount's months are in the company's time zone: when the setting changes, the
    summaries are no longer fresh and the next rebuild recounts the months in the new
    one (and records it)."""
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    account = create_account(actor=org.east_rep, name="恒信")
    opp = services.create_opportunity(actor=org.east_rep, pipeline=pipeline, account=account,
                                      name="x", amount=Decimal("10.00"))  # fmt: skip
    # 20:00 UTC on the last day of a month: the next month in Asia/Shanghai
    services.win_opportunity(opp, actor=org.east_rep,
                             when=datetime(2026, 3, 31, 20, tzinfo=ZoneInfo("UTC")))  # fmt: skip
    settings.TIME_ZONE = "Asia/Shanghai"
    summaries.ensure_fresh()
    assert {r.month for r in WonCount.objects.exclude(count=0)} == {202604}
    settings.TIME_ZONE = "UTC"
    assert not summaries.is_fresh()
    summaries.ensure_fresh()
    assert {r.month for r in WonCount.objects.exclude(count=0)} == {202603}
    assert SummaryState.objects.get().won_time_zone == "UTC"
    assert won_maintained() == won_recomputed()


def test_an_account_import_and_its_undo_move_the_won_deals(org, reason, tmp_path):  # noqa: F811
    """An account import in update mode that changes an account's industry (a bulk
    write past the account services) moves its won deals' WonCount rows to the new
    industry, and the import's undo moves them back."""
    from loudou.imports.services import undo

    from .test_imports_jobs import media, run, write  # noqa: F401 (media: a fixture)

    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    account = create_account(actor=org.east_rep, name="ACME Co., Ltd.", industry="old")
    opp = services.create_opportunity(actor=org.east_rep, pipeline=pipeline, account=account,
                                      name="x", amount=Decimal("99.00"))  # fmt: skip
    services.win_opportunity(opp, actor=org.east_rep)

    def industries() -> dict:
        rows = WonCount.objects.filter(dimension="industry").exclude(count=0)
        return {r.key: (r.count, r.amount_cents) for r in rows}

    path = write(tmp_path / "a.csv", ["客户名称", "客户行业"],
                 [{"客户名称": "acme inc", "客户行业": "new"}])  # fmt: skip
    job = run(org.admin, "accounts", path, on_duplicate="update")
    assert job.counts["updated"] == 1, job.errors
    assert industries() == {"new": (1, 9900)}
    assert won_maintained() == won_recomputed()
    undo(job, actor=org.admin)
    assert industries() == {"old": (1, 9900)}
    assert won_maintained() == won_recomputed()


def test_merging_two_accounts_moves_their_won_deals(org, reason):  # noqa: F811
    """Merging an account into another (its deals repointed, the region taken from the
    removed one) moves both accounts' won deals to the kept account's new region and
    industry in WonCount."""
    from loudou.leads.merge import merge

    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    keep = create_account(actor=org.east_rep, name="恒信", region=org.east_region,
                          industry="制造")  # fmt: skip
    lose = create_account(actor=org.east_rep, name="恒信集团", region=org.south_region,
                          industry="零售")  # fmt: skip
    for account, amount in ((keep, "10.00"), (lose, "20.00")):
        opp = services.create_opportunity(
            actor=org.east_rep, pipeline=pipeline, account=account, name=amount,
            amount=Decimal(amount),
        )  # fmt: skip
        services.win_opportunity(opp, actor=org.east_rep)
    merge("account", keep.pk, lose.pk, actor=org.admin, take=["region"])
    grouped = WonCount.objects.exclude(count=0).filter(dimension__in=["region", "industry"])
    rows = {(r.dimension, r.key): (r.count, r.amount_cents) for r in grouped}
    south = str(org.south_region.pk)
    assert rows == {("region", south): (2, 3000), ("industry", "制造"): (2, 3000)}
    assert won_maintained() == won_recomputed()


def test_an_admin_edit_of_the_region_moves_the_won_deals(org, reason, rf):  # noqa: F811
    """Saving an account in the Django admin (past the account services) with another
    region moves its won deals to that region in WonCount."""
    from django.contrib import admin

    from loudou.customers.models import Account

    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    account = create_account(actor=org.east_rep, name="恒信", region=org.east_region)
    opp = services.create_opportunity(actor=org.east_rep, pipeline=pipeline, account=account,
                                      name="x", amount=Decimal("5.00"))  # fmt: skip
    services.win_opportunity(opp, actor=org.east_rep)
    account.refresh_from_db()
    account.region = org.south_region
    request = rf.post("/admin/")
    request.user = org.admin
    with transaction.atomic():
        admin.site._registry[Account].save_model(request, account, None, True)
    rows = WonCount.objects.filter(dimension="region").exclude(count=0)
    assert {r.key: r.count for r in rows} == {str(org.south_region.pk): 1}
    assert won_maintained() == won_recomputed()


@pytest.mark.parametrize(
    "zone",
    ["Asia/Shanghai", "UTC", "Europe/Berlin", "America/Santiago", "Australia/Lord_Howe",
     "Asia/Kathmandu", "America/St_Johns"],
)  # fmt: skip
def test_a_recount_puts_each_win_in_its_local_month_in_any_zone(org, reason, settings, zone):  # noqa: F811
    """A rebuild's months (on SQLite a CASE over the UTC moments at which the company's
    months begin, summaries._sqlite_months) are the months month_of gives each win, in
    zones with whole-hour, half-hour and 45-minute offsets and with summer time — for wins
    a microsecond, a minute, half an hour, an hour and two hours either side of each
    month's start. Newfoundland set its clock back at 00:01 on 1 November 2009, so moments
    after that month's start fall in October again: no clean edge, and the rebuild takes
    month_expression there (the CASE is not used)."""
    settings.TIME_ZONE = zone
    tz = ZoneInfo(zone)
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    account = create_account(actor=org.east_rep, name="恒信")
    edges = [datetime(year, month, 1, tzinfo=tz) for year, months in ((2009, range(9, 13)),
             (2023, (1, 3, 4, 10, 11))) for month in months]  # fmt: skip
    offsets = [timedelta(microseconds=1), timedelta(minutes=1), timedelta(minutes=30),
               timedelta(hours=1), timedelta(hours=2)]  # fmt: skip
    moments = [edge.astimezone(ZoneInfo("UTC")) + sign * offset for edge in edges
               for offset in offsets for sign in (-1, 1)]  # fmt: skip
    opp = services.create_opportunity(actor=org.east_rep, pipeline=pipeline, account=account,
                                      name="模板", amount=Decimal("10.00"))  # fmt: skip
    services.win_opportunity(opp, actor=org.east_rep)
    won = Opportunity.objects.get(pk=opp.pk)
    copies = []
    for i, moment in enumerate(moments):
        won.pk, won.name, won.closed_at = None, f"赢{i}", moment
        copies.append(copy.copy(won))
    Opportunity.objects.bulk_create(copies)
    summaries.rebuild_summaries()
    assert won_maintained() == won_recomputed()
    assert len({month for (_p, _d, month, _o, _k) in won_recomputed()}) >= 8
    cases = summaries._sqlite_months(Opportunity.objects.filter(status=Status.WON))
    assert (cases is None) == (zone == "America/St_Johns")
