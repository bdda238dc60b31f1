"""The funnel reports computed from real rows through the query layer: the worked
examples of DOMAIN §8, the CLI and API contracts, and identical answers on SQLite and
PostgreSQL."""

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from loudou.analytics import reports
from loudou.analytics.periods import containing, parse_period
from loudou.analytics.queries import Scope
from loudou.customers.services import create_account
from loudou.pipeline import services
from loudou.pipeline.models import LostReason

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dcba(db):
    return services.create_pipeline_from_template("dcba", checklist_mode="advisory")


def _walk(rep, pipeline, account, path, outcome):
    """Create one opportunity, move it along ``path`` (stage codes) and close it."""
    stages = {s.code: s for s in pipeline.open_stages()}
    opp = services.create_opportunity(
        actor=rep, pipeline=pipeline, account=account, name="-".join(path) + outcome,
        stage=stages[path[0]], amount=Decimal(1000),
    )  # fmt: skip
    for code in path[1:]:
        opp = services.move_opportunity(opp, stages[code], actor=rep)
    if outcome == "won":
        services.win_opportunity(opp, actor=rep)
    elif outcome == "lost":
        services.lose_opportunity(opp, LostReason.objects.first(), actor=rep)


def test_conversion_example_from_the_database(org, dcba):
    """The ten opportunities of DOMAIN §8, entered through the services, give entered
    D 10, C 7, B 5, A 4, conversion 7/9, 5/6, 4/5, 2/3 and win rates 2/7, 2/5, 2/4, 2/3."""
    rep = org.east_rep
    account = create_account(actor=rep, name="恒信")
    for path, outcome in [
        ("D", "lost"), ("D", "lost"), ("D", "open"), ("DC", "lost"), ("DC", "open"),
        ("DCB", "lost"), ("DCA", "won"), ("DCBA", "won"), ("DCBA", "lost"), ("DCBA", "open"),
    ]:  # fmt: skip
        _walk(rep, dcba, account, list(path), outcome)
    report = reports.funnel_report(Scope(user=org.admin, pipeline=dcba))
    stages = report["stages"]
    assert [s["entered"] for s in stages] == [10, 7, 5, 4]
    assert [s["advanced"] for s in stages] == [7, 5, 4, 2]
    assert [s["lost"] for s in stages] == [2, 1, 1, 1]
    assert [s["open"] for s in stages] == [1, 1, 0, 1]
    assert [s["conversion"] for s in stages] == [7 / 9, 5 / 6, 4 / 5, 2 / 3]
    assert [s["win_rate_from"] for s in stages] == [2 / 7, 2 / 5, 2 / 4, 2 / 3]
    assert [s["stable"] for s in stages] == [False] * 4
    assert (report["won"], report["lost"], report["open"]) == (2, 5, 3)


def test_forecast_example_from_the_database(org, dcba):
    """Week 6 of DOMAIN §8 without out-of-funnel orders: 300,000 won this quarter and open
    D 500,000, C 400,000, B 300,000, A 200,000 at 10/25/50/80% → weighted 460,000,
    forecast 760,000, coverage 76% of 1,000,000."""
    rep = org.east_rep
    account = create_account(actor=rep, name="恒信")
    stages = {s.code: s for s in dcba.open_stages()}
    for code, amount in [("D", 500_000), ("C", 400_000), ("B", 300_000), ("A", 200_000)]:
        services.create_opportunity(actor=rep, pipeline=dcba, account=account, name=code,
                                    stage=stages[code], amount=Decimal(amount))  # fmt: skip
    won = services.create_opportunity(
        actor=rep, pipeline=dcba, account=account, name="won", stage=stages["A"],
        amount=Decimal(300_000),
    )  # fmt: skip
    services.win_opportunity(won, actor=rep)
    period = containing("quarter", timezone.localdate())
    result = reports.forecast_report(
        Scope(user=org.east_mgr, pipeline=dcba), period, target=Decimal(1_000_000), runs=200
    )
    assert result["completed"] == "300000.00"
    assert result["weighted_pipeline"] == "460000.00"
    assert result["forecast"] == "760000.00"
    assert result["coverage"] == 0.76
    assert Decimal(result["p10"]) >= Decimal("300000.00")


def test_reverse_example_from_the_database(org, dcba):
    """With the example's average deal of 80,000 and nothing won yet, a target of
    577,000 needs W = 7.2125 wins; the stage counts follow the observed conversions."""
    result = reports.reverse_report(
        Scope(user=org.admin, pipeline=dcba), Decimal(577_000), avg_deal=Decimal(80_000)
    )
    assert result["remaining"] == "577000.00"
    assert result["wins_needed"] == 7.2125
    # No history: conversions are unknown, so no stage count can be planned.
    assert [s["needed"] for s in result["stages"]] == [None] * 4


def test_rep_sees_only_own_funnel(org, dcba):
    """A rep's funnel counts only their own deals; the manager's counts the team's."""
    east = create_account(actor=org.east_rep, name="East")
    south = create_account(actor=org.south_rep, name="South")
    _walk(org.east_rep, dcba, east, ["D"], "open")
    _walk(org.south_rep, dcba, south, ["D"], "open")
    _walk(org.east_rep2, dcba, create_account(actor=org.east_rep2, name="E2"), ["D"], "open")
    rep = reports.funnel_report(Scope(user=org.east_rep, pipeline=dcba))
    manager = reports.funnel_report(Scope(user=org.east_mgr, pipeline=dcba))
    assert (rep["open"], manager["open"]) == (1, 2)


def _cli(*args) -> dict:
    out = StringIO()
    call_command("report", *args, "--format", "json", stdout=out)
    return json.loads(out.getvalue())


def test_cli_contract(org, dcba):
    """`loudou report funnel|forecast|reverse --format json` print the keys the issue
    promises, with the non-terminal stages in pipeline order."""
    _walk(org.east_rep, dcba, create_account(actor=org.east_rep, name="A"), ["D", "C"], "won")
    funnel = _cli("funnel", "--pipeline", dcba.name)
    assert [s["name"] for s in funnel["stages"]] == ["D 识别", "C 目标", "B 重点跟进", "A 订单跟进"]
    keys = {"name", "entered", "advanced", "lost", "open", "conversion", "ci_low", "ci_high",
            "stable", "win_rate_from", "open_amount", "weighted_amount"}  # fmt: skip
    assert keys <= set(funnel["stages"][0])
    assert {"pipeline", "stages", "won", "lost", "open"} <= set(funnel)
    forecast = _cli("forecast", "--pipeline", "D/C/B/A grades", "--period", "2026Q4")
    assert {"target", "completed", "out_of_funnel", "weighted_pipeline", "forecast", "coverage",
            "progress", "progress_forecast_delta", "progress_sales_delta", "p10", "p50",
            "p90"} <= set(forecast)  # fmt: skip
    reverse = _cli("reverse", "--pipeline", str(dcba.pk), "--target", "100000")
    assert {"remaining", "wins_needed", "stages"} <= set(reverse)
    assert {"name", "needed", "open", "replenish"} <= set(reverse["stages"][0])


def test_api_matches_cli(client, org, dcba):
    """GET /api/v1/analytics/funnel gives the CLI's payload for the same parameters."""
    _walk(org.east_rep, dcba, create_account(actor=org.east_rep, name="A"), ["D"], "lost")
    client.force_login(org.admin)
    api = client.get(f"/api/v1/analytics/funnel?pipeline={dcba.pk}").json()
    assert api == _cli("funnel", "--pipeline", str(dcba.pk))


def test_bad_parameters_are_422(client, org, dcba):
    """An unknown pipeline, period or owner is a 422 naming the field, not a 500."""
    client.force_login(org.east_rep)
    for query, field in [("pipeline=nope", "pipeline"), ("period=2026Q9", "period"),
                         (f"pipeline={dcba.pk}&owner=south_rep", "owner")]:  # fmt: skip
        response = client.get(f"/api/v1/analytics/forecast?{query}")
        assert response.status_code == 422, query
        assert response.json()["field"] == field


def test_periods():
    """Quarter, month, ISO week and year labels parse to the right half-open ranges."""
    q = parse_period("2026Q4")
    assert (str(q.start), str(q.end)) == ("2026-10-01", "2027-01-01")
    assert str(parse_period("2026-12").end) == "2027-01-01"
    assert str(parse_period("2026W01").start) == "2025-12-29"
    assert parse_period("2026Q1").previous().label == "2025Q4"
    with pytest.raises(ValueError):
        parse_period("2026Q5")


FIXED_NOW = "2026-06-30T12:00:00+08:00"
REPORT_ARGS = [
    ["funnel", "--pipeline", "D/C/B/A grades"],
    ["reps", "--pipeline", "D/C/B/A grades"],
    ["reverse", "--pipeline", "Classic funnel", "--target", "2000000", "--period", "2026Q2"],
    ["leads", "--pipeline", "D/C/B/A grades"],
    ["breakdown", "--pipeline", "D/C/B/A grades", "--by", "region", "--period", "2025"],
    ["breakdown", "--pipeline", "Classic funnel", "--by", "industry", "--period", "2026Q1"],
]


def _without_ids(value):
    """The payload without database ids, which differ between two databases whose
    sequences started elsewhere (a PostgreSQL test database keeps counting)."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in {"id", "owner_id"}}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


SQLITE_SIDE = """
import io, json, sys
from datetime import datetime
import django
django.setup()
from django.core.management import call_command
from django.db import connection
assert connection.vendor == "sqlite"
reports, now = json.loads(sys.argv[1]), datetime.fromisoformat(sys.argv[2])
call_command("generate", opportunities=1500, seed=11, now=now, stdout=io.StringIO())
payloads = []
for args in reports:
    out = io.StringIO()
    call_command("report", *args, "--format", "json", stdout=out)
    payloads.append(json.loads(out.getvalue()))
print(json.dumps(payloads))
"""


# On SQLite both sides would be SQLite: the PostgreSQL pass of `make test` runs it.
@pytest.mark.postgres_only
def test_same_report_on_sqlite_and_this_database(db, tmp_path, sqlite_copy):
    """A generated data set gives identical report JSON on this PostgreSQL test database
    and on a fresh SQLite database filled by the same generator in a separate process:
    the two databases agree."""
    now = datetime.fromisoformat(FIXED_NOW)
    call_command("generate", opportunities=1500, seed=11, now=now, stdout=StringIO())
    here = [_cli(*args) for args in REPORT_ARGS]

    # One child process runs the generator and every report (the CLI's code paths,
    # through call_command) on its own SQLite file: one start-up instead of four.
    database = sqlite_copy(tmp_path / "x.sqlite3")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "loudou.settings",
           "LOUDOU_DATABASE_URL": f"sqlite:///{database}"}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", SQLITE_SIDE, json.dumps(REPORT_ARGS), FIXED_NOW],
                         env=env, cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert _without_ids(here) == _without_ids(there), connection.vendor
    assert here[0]["won"] > 0 and here[0]["lost"] > 0
    # Not vacuous: the generated leads and a year's and a quarter's won deals are in them.
    assert here[3]["total"]["leads"] > 0 and here[3]["total"]["leads_won"] > 0
    assert here[4]["rows"] and here[5]["rows"]


def test_backtest_reports_band_hits(org, dcba):
    """The backtest replays past quarters and counts how often the actual result fell in
    the P10–P90 band; with no history every band is empty and contains the actual zero."""
    result = reports.backtest(
        Scope(user=org.admin, pipeline=dcba), reports.last_periods("quarter", 2), runs=100
    )
    assert result["total"] == 2
    assert result["inside"] == 2
    assert all(row["actual"] == "0.00" for row in result["periods"])


def test_time_in_stage_uses_recorded_stays(org, dcba):
    """Days in stage come from the stays recorded on the history: a deal that spent 4 and
    then 10 days in D (after moving back) gives 2 stays, mean 7.0 days."""
    rep = org.east_rep
    account = create_account(actor=rep, name="恒信")
    stages = {s.code: s for s in dcba.open_stages()}
    start = timezone.now() - timedelta(days=30)
    opp = services.create_opportunity(actor=rep, pipeline=dcba, account=account, name="x",
                                      stage=stages["D"], when=start)  # fmt: skip
    opp = services.move_opportunity(opp, stages["C"], actor=rep, when=start + timedelta(days=4))
    opp = services.move_opportunity(opp, stages["D"], actor=rep, when=start + timedelta(days=6))
    services.move_opportunity(opp, stages["C"], actor=rep, when=start + timedelta(days=16))
    d = reports.funnel_report(Scope(user=rep, pipeline=dcba))["stages"][0]
    assert (d["stays"], d["days_mean"]) == (2, 7.0)


def test_state_at_rebuilds_last_week(org, dcba):
    """The pipeline as it stood a week ago: a deal moved since counts in its old stage,
    one lost since counts as open then, one created since does not count, one reopened
    since (closed a week ago) does not count."""
    rep = org.east_rep
    account = create_account(actor=rep, name="恒信")
    stages = {s.code: s for s in dcba.open_stages()}
    old = timezone.now() - timedelta(days=20)
    week_ago = timezone.now() - timedelta(days=7)

    def deal(name, amount, code="D", when=old):
        return services.create_opportunity(
            actor=rep, pipeline=dcba, account=account, name=name, stage=stages[code],
            amount=Decimal(amount), when=when,
        )  # fmt: skip

    services.move_opportunity(deal("moved", 100), stages["B"], actor=rep)
    services.lose_opportunity(deal("lost", 200, "C"), LostReason.objects.first(), actor=rep)
    deal("new", 400, when=timezone.now() - timedelta(days=1))
    deal("still", 800, "A")
    closed = services.lose_opportunity(
        deal("reopened", 1600), LostReason.objects.first(), actor=rep, when=old
    )
    services.reopen_opportunity(closed, actor=rep)

    from loudou.analytics.queries import state_at

    then = state_at(Scope(user=rep, pipeline=dcba).opportunities(), week_ago)["open"]
    assert {stages_code: then[s.pk]["amount"] for stages_code, s in stages.items()
            if s.pk in then} == {"D": Decimal("100.00"), "C": Decimal("200.00"),
                                 "A": Decimal("800.00")}  # fmt: skip


def test_breakdown_growth(org, dcba):
    """Won amount per rep in a quarter, with growth against the quarter before and the
    same quarter a year earlier: 300 now against 200 before is +50%, none a year ago."""
    account = create_account(actor=org.east_rep, name="恒信")
    quarter = parse_period("2026Q2")
    shanghai = timezone.get_current_timezone()
    for amount, day in [(200, (2026, 2, 10)), (100, (2026, 5, 3)), (200, (2026, 6, 1))]:
        moment = datetime(*day, 12, tzinfo=shanghai)
        opp = services.create_opportunity(
            actor=org.east_rep, pipeline=dcba, account=account, name=str(amount),
            amount=Decimal(amount), when=moment - timedelta(days=5),
        )  # fmt: skip
        services.win_opportunity(opp, actor=org.east_rep, when=moment)
    result = reports.breakdown_report(Scope(user=org.admin, pipeline=dcba), "rep", quarter)
    assert (result["previous"], result["year_ago"]) == ("2026Q1", "2025Q2")
    assert result["rows"] == [{
        "key": "east_rep", "won": 2, "amount": "300.00", "previous_amount": "200.00",
        "year_ago_amount": "0.00", "growth_previous": 0.5, "growth_year": None,
    }]  # fmt: skip


def test_far_periods_are_refused():
    """Periods outside 1900–2999 or weeks that do not exist are a ValueError (a 422 in
    the API), never an overflow."""
    for text in ("9999W52", "0001Q1", "2026W54"):
        with pytest.raises(ValueError):
            parse_period(text)


def test_reverse_compares_with_what_stages_hold_today(org, dcba):
    """The planner's "open" is what each stage holds now: a deal moved back from C to D
    counts in D, although its furthest stage is C."""
    rep = org.east_rep
    account = create_account(actor=rep, name="恒信")
    stages = {s.code: s for s in dcba.open_stages()}
    opp = services.create_opportunity(actor=rep, pipeline=dcba, account=account, name="x")
    opp = services.move_opportunity(opp, stages["C"], actor=rep)
    services.move_opportunity(opp, stages["D"], actor=rep)
    result = reports.reverse_report(Scope(user=rep, pipeline=dcba), Decimal(1000), avg_deal=1)
    assert [s["open"] for s in result["stages"]] == [1, 0, 0, 0]


def test_owner_filter_does_not_shrink_the_team_compared_with(org, dcba):
    """A manager looking at one rep (owner filter) still sees that rep against the whole
    team's pooled rate, not against the rep's own numbers."""
    a1 = create_account(actor=org.east_rep, name="A1")
    a2 = create_account(actor=org.east_rep2, name="A2")
    for _ in range(2):
        _walk(org.east_rep, dcba, a1, ["D"], "lost")
        _walk(org.east_rep2, dcba, a2, ["D", "C"], "open")
    scope = Scope(user=org.east_mgr, pipeline=dcba, owner_id=org.east_rep.pk)
    result = reports.reps_report(scope)
    assert [r["username"] for r in result["reps"]] == ["east_rep"]
    assert result["reps"][0]["stages"][0]["conversion"] == 0.0
    assert result["team"][0]["conversion"] == 0.5


# --- lead conversion by source ---------------------------------------------------------


def _leads_by_source(rep, pipeline):
    """Referral: 4 leads — 2 converted (one of them won), 1 disqualified, 1 open.
    Website: 1 lead, disqualified. One opportunity created directly from a trade show,
    lost."""
    from loudou.leads import services as leads

    stage = pipeline.open_stages().first()
    made = []
    for i, source in enumerate(["referral"] * 4 + ["website"]):
        lead, _dups = leads.create_lead(
            actor=rep, owner=rep, name=f"Lead {i}", company=f"公司{i}", mobile=f"1380000{i:04d}",
            source=source,
        )  # fmt: skip
        made.append(lead)
    for lead, amount in [(made[0], 5000), (made[1], 7000)]:
        leads.convert_lead(lead, actor=rep, pipeline=pipeline, stage=stage,
                           amount=Decimal(amount), contact={"name": lead.name})  # fmt: skip
    won = made[0]
    won.refresh_from_db()
    services.win_opportunity(won.converted_opportunity, actor=rep)
    for lead in (made[2], made[4]):
        leads.disqualify_lead(lead, actor=rep, reason="no budget")
    account = create_account(actor=rep, name="展会客户")
    opp = services.create_opportunity(
        actor=rep, pipeline=pipeline, account=account, name="x", stage=stage,
        amount=Decimal(900), source="exhibition",
    )  # fmt: skip
    services.lose_opportunity(opp, LostReason.objects.first(), actor=rep)


def test_lead_conversion_by_source(org, dcba):
    """Leads → opportunities counts converted against disqualified (open leads wait),
    opportunities → won counts won against lost, per source, with n and the interval."""
    _leads_by_source(org.east_rep, dcba)
    report = reports.leads_report(Scope(user=org.admin, pipeline=dcba))
    rows = {r["source"]: r for r in report["sources"]}
    assert list(rows) == ["referral", "website", "exhibition"]
    referral = rows["referral"]
    assert (referral["leads"], referral["converted"], referral["disqualified"]) == (4, 2, 1)
    assert referral["open_leads"] == 1
    assert referral["lead_conversion"] == 2 / 3 and referral["lead_conversion_n"] == 3
    assert referral["lead_conversion_stable"] is False
    assert 0 < referral["lead_conversion_ci_low"] < 2 / 3 < referral["lead_conversion_ci_high"]
    assert (referral["leads_into_pipeline"], referral["leads_won"]) == (2, 1)
    assert referral["leads_won_amount"] == "5000.00"
    assert (referral["opportunities"], referral["won"], referral["lost"], referral["open"]) == (
        2, 1, 0, 1,
    )  # fmt: skip
    assert referral["win_rate"] == 1.0 and referral["won_amount"] == "5000.00"
    assert rows["website"]["lead_conversion"] == 0.0 and rows["website"]["opportunities"] == 0
    exhibition = rows["exhibition"]
    assert (exhibition["leads"], exhibition["lead_conversion"]) == (0, None)
    assert (exhibition["won"], exhibition["lost"], exhibition["win_rate"]) == (0, 1, 0.0)
    total = report["total"]
    assert (total["leads"], total["converted"], total["disqualified"]) == (5, 2, 2)
    assert (total["opportunities"], total["won"], total["lost"]) == (3, 1, 1)
    assert total["lead_conversion"] == 0.5 and total["win_rate"] == 0.5


def test_lead_conversion_follows_the_scope(org, dcba):
    """A rep of another team sees no lead or deal of the east rep; the CLI and the API
    give the report the pages show."""
    _leads_by_source(org.east_rep, dcba)
    other = reports.leads_report(Scope(user=org.south_rep, pipeline=dcba))
    assert other["sources"] == [] and other["total"]["leads"] == 0
    cli = _cli("leads", "--pipeline", dcba.name)
    assert cli["total"]["leads"] == 5 and [r["source"] for r in cli["sources"]] == [
        "referral", "website", "exhibition",
    ]  # fmt: skip


def test_leads_api_matches_cli(client, org, dcba):
    """GET /api/v1/analytics/leads gives the CLI's payload; a manager sees their team."""
    _leads_by_source(org.east_rep, dcba)
    client.force_login(org.admin)
    api = client.get(f"/api/v1/analytics/leads?pipeline={dcba.pk}").json()
    assert api == _cli("leads", "--pipeline", str(dcba.pk))
    client.force_login(org.east_mgr)
    mine = client.get(f"/api/v1/analytics/leads?pipeline={dcba.pk}&owner=east_rep").json()
    assert mine["total"]["leads"] == 5


# --- completed revenue with out-of-funnel orders, and real targets -----------------------


def _worked_example_weeks(org, dcba):
    """DOMAIN §8 weeks 6 and 7 through the pipeline, sales and targets services: the
    quarter target of the rep set in Targets, funnel wins and out-of-funnel orders.
    Returns (as_of, period): week 6 is the state seven days before ``as_of``."""
    from loudou.sales.services import create_order
    from loudou.targets.models import Measure, PeriodKind, TargetLevel
    from loudou.targets.services import set_target

    rep = org.east_rep
    now = timezone.now()
    period = containing("quarter", timezone.localdate())
    start, _end = period.bounds()
    if (now - start).days < 12:  # too early in the quarter to hold two weeks: use the last one
        period = period.previous()
        now = period.bounds()[1] - timedelta(hours=1)
    week6 = now - timedelta(days=9)  # before "last week" (now − 7 days)
    week7 = now - timedelta(days=2)
    account = create_account(actor=rep, name="恒信")
    stages = {s.code: s for s in dcba.open_stages()}

    def deal(code, amount, when=week6):
        return services.create_opportunity(
            actor=rep, pipeline=dcba, account=account, name=f"{code} {amount}",
            stage=stages[code], amount=Decimal(amount), when=when,
        )  # fmt: skip

    won6 = deal("A", 300_000)
    services.win_opportunity(won6, actor=rep, when=week6 + timedelta(hours=1))
    for code, amounts in [("D", [470_000, 30_000]), ("C", [350_000, 50_000]),
                          ("B", [300_000]), ("A", [100_000, 100_000])]:  # fmt: skip
        made = [deal(code, a) for a in amounts]
        if code == "D":
            lost_later = made[1]
        elif code == "C":
            moved_later = made[1]
        elif code == "A":
            won_later = made[1]
    for amount in (12_000, 8_000):  # week 6: out-of-funnel orders 20,000
        create_order(actor=rep, account=account, title="小单", amount=Decimal(amount),
                     sign_date=timezone.localtime(week6).date())  # fmt: skip
    # Week 7.
    services.win_opportunity(won_later, actor=rep, when=week7)
    services.move_opportunity(moved_later, stages["B"], actor=rep, when=week7)
    deal("D", 40_000, when=week7)
    services.lose_opportunity(lost_later, LostReason.objects.first(), actor=rep, when=week7)
    create_order(actor=rep, account=account, title="小单", amount=Decimal(3_000),
                 sign_date=timezone.localtime(week7).date())  # fmt: skip
    set_target(
        org.admin, level=TargetLevel.REP, user=rep, measure=Measure.SIGNED,
        period=PeriodKind.QUARTER, start=period.start, target=Decimal(1_000_000),
    )  # fmt: skip
    return now, period


@pytest.mark.parametrize("viewer", ["east_rep", "admin"])
def test_worked_example_weeks_6_and_7_with_orders_and_targets(settings, org, dcba, viewer):
    """Week 7 of DOMAIN §8 from real rows: completed 423,000 (3,000 + 20,000 of it
    out-of-funnel), weighted 393,500, forecast 816,500; a week earlier completed 320,000
    and forecast 780,000; progress (36,500 + 103,000) / 1,000,000 = 13.95%, against the
    rep's quarter target set in Targets."""
    settings.LOUDOU_COMPLETED_BASIS = "signed"
    as_of, period = _worked_example_weeks(org, dcba)
    scope = Scope(user=getattr(org, viewer), pipeline=dcba)
    if viewer == "admin":
        scope.owner_id = org.east_rep.pk  # the rep's target, seen by an admin
    result = reports.forecast_report(scope, period, as_of=as_of, runs=200)
    assert (result["target"], result["target_source"]) == ("1000000.00", "set")
    assert result["completed"] == "423000.00"
    assert (result["won_in_funnel"], result["out_of_funnel"]) == ("400000.00", "23000.00")
    assert result["weighted_pipeline"] == "393500.00"
    assert result["forecast"] == "816500.00"
    assert result["forecast_last_week"] == "780000.00"
    assert result["progress_forecast_delta"] == "36500.00"
    assert result["progress_sales_delta"] == "103000.00"
    assert result["progress"] == 0.1395
    assert result["coverage"] == 0.8165
    # An explicit target still overrides the one set in Targets.
    given = reports.forecast_report(scope, period, as_of=as_of, target=Decimal(2_000_000),
                                    runs=50)  # fmt: skip
    assert (given["target"], given["target_source"], given["coverage"]) == (
        "2000000.00", "given", 0.40825,
    )  # fmt: skip


def test_out_of_funnel_run_rate_is_its_own_line(settings, org, dcba):
    """The run-rate = out-of-funnel to date ÷ elapsed fraction × remaining fraction; the
    forecast adds it only when asked."""
    from fractions import Fraction

    settings.LOUDOU_COMPLETED_BASIS = "signed"
    as_of, period = _worked_example_weeks(org, dcba)
    start, end = period.bounds()
    elapsed = Fraction(int((as_of - start).total_seconds()), int((end - start).total_seconds()))
    exact = Fraction(23_000) / elapsed * (1 - elapsed)
    expected = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(Decimal("0.01"))
    scope = Scope(user=org.east_rep, pipeline=dcba)
    plain = reports.forecast_report(scope, period, as_of=as_of, runs=50)
    added = reports.forecast_report(scope, period, as_of=as_of, runs=50, run_rate=True)
    rate = Decimal(plain["out_of_funnel_run_rate"])
    assert abs(rate - expected) <= Decimal("0.01")
    assert Decimal(added["forecast"]) == Decimal(plain["forecast"]) + rate
    assert added["progress"] == plain["progress"]  # the weekly progress is unchanged


def test_reverse_and_cli_read_the_scope_target(settings, org, dcba):
    """Without --target the reverse funnel plans against the target set in Targets, with
    the out-of-funnel orders in what is completed; a manager's team has none set."""
    settings.LOUDOU_COMPLETED_BASIS = "signed"
    as_of, period = _worked_example_weeks(org, dcba)
    result = reports.reverse_report(Scope(user=org.east_rep, pipeline=dcba), period=period)
    assert (result["target"], result["target_source"]) == ("1000000.00", "set")
    if period == containing("quarter", timezone.localdate()):
        assert result["remaining"] == "577000.00"  # the worked example: 1,000,000 − 423,000
    team = reports.reverse_report(Scope(user=org.east_mgr, pipeline=dcba), period=period)
    assert (team["target"], team["remaining"], team["target_source"]) == (None, None, None)
    cli = _cli("reverse", "--pipeline", str(dcba.pk), "--owner", "east_rep",
               "--period", period.label)  # fmt: skip
    assert cli["target_source"] == "set" and cli["target"] == "1000000.00"


def test_whole_pipeline_reads_history_by_stage_with_the_same_answer(org, dcba):
    """For an admin without filters the stays and last week's pipeline are read by stage
    (index only); they equal the answers read through the opportunities, and another
    pipeline's history does not leak in."""
    from loudou.analytics import queries

    other = services.create_pipeline_from_template("classic", checklist_mode="advisory")
    account = create_account(actor=org.east_rep, name="恒信")
    start = timezone.now() - timedelta(days=20)
    for pipeline in (dcba, other):
        first, second = list(pipeline.open_stages())[:2]
        for i in range(3):
            opp = services.create_opportunity(
                actor=org.east_rep, pipeline=pipeline, account=account, name=f"x{i}",
                stage=first, amount=Decimal(1000 + i), when=start,
            )  # fmt: skip
            when = start + timedelta(days=4 + 6 * i)
            services.move_opportunity(opp, second, actor=org.east_rep, when=when)
    scope = Scope(user=org.admin, pipeline=dcba)
    assert scope.is_whole_pipeline()
    ids = list(dcba.stages.values_list("pk", flat=True))
    qs = scope.opportunities()
    assert queries.stay_histograms(qs, stages=ids) == queries.stay_histograms(qs)
    moment = timezone.now() - timedelta(days=7)
    assert queries.state_at(qs, moment, stages=ids) == queries.state_at(qs, moment)
    team = Scope(user=org.east_mgr, pipeline=dcba)
    assert not team.is_whole_pipeline()
    # Last week's pipeline of a narrower scope: changes selected by stage, then narrowed.
    mine = Scope(user=org.admin, pipeline=dcba, owner_id=org.east_rep.pk).opportunities()
    then = queries.state_at(mine, moment)["open"]
    assert queries.state_at(mine, moment, stages=ids)["open"] == then
    first, second = list(dcba.open_stages())[:2]
    assert (then[first.pk]["count"], then[second.pk]["count"]) == (1, 2)  # moved 4 days ago
    assert queries.state_at(mine, timezone.now())["open"][second.pk]["count"] == 3


def test_collected_basis_counts_payments_once(settings, org, dcba):
    """On the collected basis completed revenue is the money received this quarter (for
    a won deal's contract and an out-of-funnel order alike), not the won amounts; the
    target is read on the collected measure."""
    from loudou.sales.services import create_contract_from_opportunity, record_payment
    from loudou.targets.models import Measure, PeriodKind, TargetLevel
    from loudou.targets.services import set_target

    settings.LOUDOU_COMPLETED_BASIS = "collected"
    rep = org.east_rep
    today = timezone.localdate()
    period = containing("quarter", today)
    _walk(rep, dcba, create_account(actor=rep, name="恒信"), ["D"], "won")  # 1,000 won
    won = dcba.opportunities.get(status="won")
    contract = create_contract_from_opportunity(won, actor=rep)
    record_payment(contract, actor=rep, amount=Decimal(400), paid_on=today)
    from loudou.sales.services import create_order

    order = create_order(actor=rep, account=won.account, title="小单", amount=Decimal(900),
                         sign_date=today)  # fmt: skip
    record_payment(order, actor=rep, amount=Decimal(300), paid_on=today)
    set_target(
        org.admin, level=TargetLevel.REP, user=rep, measure=Measure.COLLECTED,
        period=PeriodKind.QUARTER, start=period.start, target=Decimal(7_000),
    )  # fmt: skip
    result = reports.forecast_report(Scope(user=rep, pipeline=dcba), period, runs=20)
    assert result["completed_basis"] == "collected"
    assert result["completed"] == "700.00"
    assert (result["won_in_funnel"], result["out_of_funnel"]) == ("1000.00", "900.00")
    assert (result["target"], result["target_source"]) == ("7000.00", "set")


def test_far_as_of_dates_are_refused_not_500(client, org, dcba):
    """An as-of date in the year 757 is a 422 on ``as_of`` (found by the schema fuzzer)."""
    client.force_login(org.admin)
    response = client.get("/api/v1/analytics/forecast?as_of=0757-12-30")
    assert response.status_code == 422 and response.json()["field"] == "as_of"


def _replayed_state(qs, moment):
    """The open pipeline at ``moment`` by the definition, in Python: a deal with no
    change after the moment is as it is now; otherwise its first change after the moment
    says where it stood (not yet created, or its from-stage and that change's amount)."""
    from loudou.pipeline.models import StageChange

    result = {}
    for opp in qs:
        later = sorted(
            StageChange.objects.filter(opportunity=opp, changed_at__gt=moment).select_related(
                "from_stage"
            ),
            key=lambda c: (c.changed_at, c.pk),
        )
        if not later:
            where = (opp.stage_id, opp.amount) if opp.status == "open" else None
        elif later[0].kind != "created" and later[0].from_stage.kind == "open":
            where = (later[0].from_stage_id, later[0].amount)
        else:
            where = None
        if where is not None:
            entry = result.setdefault(where[0], {"count": 0, "amount": Decimal(0)})
            entry["count"] += 1
            entry["amount"] += where[1]
    return result


def test_last_weeks_pipeline_equals_a_replay_of_the_history(org, dcba):
    """Last week's pipeline (one ranked pass over the changes since then; for a whole
    pipeline without testing the scope) equals the replay of each deal's history, for
    deals moved, won, lost, reopened, re-priced, created after the moment and untouched,
    for an admin, a manager, a rep and an owner filter, with another pipeline beside."""
    from loudou.analytics import queries

    other = services.create_pipeline_from_template("classic", checklist_mode="advisory")
    services.ensure_lost_reasons()
    reason = LostReason.objects.first()
    account = create_account(actor=org.east_rep, name="恒信")
    now = timezone.now()
    moment = now - timedelta(days=7)
    reps = [org.east_rep, org.east_rep2, org.sub_rep, org.south_rep]
    for pipeline in (dcba, other):
        d, c, b = list(pipeline.open_stages())[:3]
        for i in range(12):
            rep = reps[i % 4]
            born = moment - timedelta(days=10) if i % 3 else moment + timedelta(days=1)
            opp = services.create_opportunity(
                actor=rep, pipeline=pipeline, account=account, name=f"x{i}", stage=d,
                amount=Decimal(1000 * (i + 1)), when=born,
            )  # fmt: skip
            t = max(born, moment - timedelta(days=3)) + timedelta(hours=i)
            if i % 4 == 1:
                opp = services.move_opportunity(opp, c, actor=rep, when=t)
                opp = services.move_opportunity(opp, b, actor=rep, when=t + timedelta(days=1))
            if i % 4 == 2:
                opp = services.move_opportunity(opp, c, actor=rep, when=t - timedelta(days=5))
                opp = services.update_opportunity(opp, actor=rep, amount=Decimal(77 * i))
                opp = services.win_opportunity(opp, actor=rep, when=t + timedelta(days=8))
            if i % 4 == 3:
                opp = services.lose_opportunity(opp, reason, actor=rep, when=t + timedelta(days=8))
                if i % 3 == 0:
                    services.reopen_opportunity(opp, actor=rep, when=t + timedelta(days=9))
    ids = list(dcba.stages.values_list("pk", flat=True))
    scopes = [
        Scope(user=org.admin, pipeline=dcba),
        Scope(user=org.east_mgr, pipeline=dcba),
        Scope(user=org.east_rep, pipeline=dcba),
        Scope(user=org.admin, pipeline=dcba, owner_id=org.sub_rep.pk),
    ]
    for scope in scopes:
        qs = scope.opportunities()
        expected = _replayed_state(qs, moment)
        assert queries.state_at(qs, moment)["open"] == expected, scope
        fast = queries.state_at(qs, moment, stages=ids, whole=scope.is_whole_pipeline())
        assert fast["open"] == expected, scope
    assert sum(v["count"] for v in _replayed_state(scopes[0].opportunities(), moment).values())


def test_report_query_counts_do_not_grow_with_the_data(org, dcba, django_assert_max_num_queries):
    """The funnel, per-rep, forecast and reverse reports ask the database the same number
    of queries for 8 deals of 2 reps as for 48 deals of 4 reps (an admin and a manager):
    everything is grouped in the database or read from the summaries."""
    from django.test.utils import CaptureQueriesContext

    services.ensure_lost_reasons()
    account = create_account(actor=org.east_rep, name="恒信")
    quarter = containing("quarter", timezone.localdate())

    def add(n, reps):
        for i in range(n):
            rep = reps[i % len(reps)]
            path, outcome = [("D", "open"), ("DC", "won"), ("DCB", "lost"), ("DCBA", "open")][i % 4]
            _walk(rep, dcba, account, list(path), outcome)

    def run(scope):
        reports.funnel_report(scope)
        reports.reps_report(scope)
        reports.forecast_report(scope, quarter, target=Decimal(10**6), runs=50)
        reports.reverse_report(scope, Decimal(10**6))

    scopes = [Scope(user=org.admin, pipeline=dcba), Scope(user=org.east_mgr, pipeline=dcba)]
    add(8, [org.east_rep, org.east_rep2])
    counts = []
    for scope in scopes:
        run(scope)  # warm (caches of the settings and the stages)
        with CaptureQueriesContext(connection) as small:
            run(scope)
        counts.append(len(small.captured_queries))
    add(40, [org.east_rep, org.east_rep2, org.sub_rep, org.south_rep])
    for scope, count in zip(scopes, counts, strict=True):
        with django_assert_max_num_queries(count):
            run(scope)
