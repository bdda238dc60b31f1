"""The analytics pages (funnel, reps vs team, forecast, reverse planner), their downloads
and the dashboard's pipeline headline: who sees what, filters that narrow and never widen,
downloads with the page's numbers, and query counts that do not grow with the data."""

import csv
import io
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from python_calamine import CalamineWorkbook

from loudou.analytics import exports
from loudou.analytics.periods import containing
from loudou.customers.services import create_account
from loudou.pipeline import services
from loudou.pipeline.models import LostReason, Opportunity

PAGES = [
    "/analytics/", "/analytics/reps/", "/analytics/forecast/", "/analytics/reverse/",
    "/analytics/leads/", "/analytics/breakdown/",
]  # fmt: skip
TARGET = "?target=1000000"


@pytest.fixture
def dcba(db):
    services.ensure_lost_reasons()
    return services.create_pipeline_from_template("dcba")


def make_history(owner, pipeline, count, *, start=0, account=None):
    """``count`` deals of ``owner`` in a repeating pattern of five outcomes:
    lost at D, lost at C, won, open at C, open at D (amounts 1000 + i)."""
    account = account or create_account(actor=owner, name=f"Account of {owner.username}")
    d, c = list(pipeline.open_stages())[:2]
    reason = LostReason.objects.first()
    for i in range(start, start + count):
        deal = services.create_opportunity(
            actor=owner, pipeline=pipeline, account=account, name=f"Deal {i}",
            amount=Decimal(1000 + i), stage=d,
        )  # fmt: skip
        kind = i % 5
        if kind == 0:
            services.lose_opportunity(deal, reason, actor=owner)
            continue
        if kind in (1, 2, 3):
            deal = services.move_opportunity(deal, c, actor=owner, checklist=d.checklist)
        if kind == 1:
            services.lose_opportunity(deal, reason, actor=owner)
        elif kind == 2:
            for stage in list(pipeline.open_stages())[2:]:
                deal = services.move_opportunity(
                    deal, stage, actor=owner, checklist=deal.stage.checklist
                )
            services.win_opportunity(deal, actor=owner, checklist=deal.stage.checklist)
    return account


# --- access --------------------------------------------------------------------------


@pytest.mark.parametrize("url", [*PAGES, "/analytics/reverse/" + TARGET])
@pytest.mark.parametrize("username", ["east_rep", "east_mgr", "admin"])
def test_pages_open_for_every_role(client, org, dcba, url, username):
    """Every analytics page answers 200 to a rep, a manager and an admin."""
    make_history(org.east_rep, dcba, 5)
    client.force_login(getattr(org, username))
    response = client.get(url)
    assert response.status_code == 200
    assert response.context["nav"] == "analytics"


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_is_sent_to_login(client, db, url):
    """Nobody logged in: each page redirects to the login page with ``next``."""
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith("/login/?next=/analytics/")


def test_nav_links_to_analytics(client, org, dcba):
    """The main navigation has the Analytics item."""
    client.force_login(org.east_rep)
    assert 'href="/analytics/"' in client.get("/").content.decode()


# --- the funnel page -------------------------------------------------------------------


def test_funnel_page_shows_the_funnel_of_the_users_scope(client, org, dcba):
    """Ten deals of east_rep (2 lost at D, 2 lost at C, 2 won, 2 open at C, 2 open at D):
    D entered 10, C 6, B and A 2 (the won ones); conversion D = 6/8; totals 2/4/4.
    south_rep's deals are not in east_mgr's funnel."""
    make_history(org.east_rep, dcba, 10)
    make_history(org.south_rep, dcba, 5)
    client.force_login(org.east_mgr)
    response = client.get("/analytics/")
    report = response.context["report"]
    assert [s["entered"] for s in report["stages"]] == [10, 6, 2, 2]
    assert report["stages"][0]["conversion"] == 6 / 8
    assert (report["won"], report["lost"], report["open"]) == (2, 4, 4)
    html = response.content.decode()
    assert 'id="chart-funnel"' in html and 'id="chart-data"' in html
    assert "vendor/echarts/echarts.min.js" in html
    assert "not yet stable" in html or "尚未稳定" in html or 'data-testid="unstable"' in html


def test_funnel_chart_data_is_the_report(client, org, dcba):
    """The JSON behind the charts carries the entered counts and the Wilson interval of
    the report, stage by stage."""
    make_history(org.east_rep, dcba, 10)
    client.force_login(org.east_rep)
    response = client.get("/analytics/")
    funnel, conversion = response.context["charts"]
    stages = response.context["report"]["stages"]
    assert funnel["type"] == "funnel" and funnel["values"] == [10, 6, 2, 2]
    assert conversion["low"] == [s["ci_low"] for s in stages]
    assert conversion["high"] == [s["ci_high"] for s in stages]


def test_empty_scope_shows_an_empty_state(client, org, dcba):
    """Without any opportunity the funnel page says so and draws no chart."""
    client.force_login(org.east_rep)
    response = client.get("/analytics/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="empty"' in html
    assert 'id="chart-funnel"' not in html


# --- filters ---------------------------------------------------------------------------


def test_owner_filter_narrows_the_funnel(client, org, dcba):
    """A manager filtering on one rep sees only that rep's deals."""
    make_history(org.east_rep, dcba, 10)
    make_history(org.east_rep2, dcba, 5)
    client.force_login(org.east_mgr)
    everyone = client.get("/analytics/").context["report"]
    one = client.get(f"/analytics/?owner={org.east_rep2.pk}").context["report"]
    assert everyone["stages"][0]["entered"] == 15
    assert one["stages"][0]["entered"] == 5


def test_rep_cannot_filter_on_another_teams_rep(client, org, dcba):
    """A rep asking for a rep of another team gets a 422 with the error on the owner
    field and none of that rep's figures."""
    make_history(org.south_rep, dcba, 10)
    client.force_login(org.east_rep)
    for url in PAGES:
        response = client.get(f"{url}?owner={org.south_rep.pk}&target=1000")
        assert response.status_code == 422, url
        assert "owner" in response.context["form"].errors
        assert "report" not in response.context
    response = client.get(f"/analytics/?owner={org.south_rep.pk}&format=csv")
    assert response.status_code == 422
    assert response["Content-Type"].startswith("text/html")


def test_rep_cannot_filter_on_another_team(client, org, dcba):
    """A team the user cannot see is refused like an owner."""
    client.force_login(org.east_rep)
    response = client.get(f"/analytics/?team={org.south.pk}")
    assert response.status_code == 422
    assert "team" in response.context["form"].errors


def test_offered_owners_and_teams_are_the_visible_ones(client, org, dcba):
    """The owner list is what the user may see; the teams are those of these people."""
    client.force_login(org.east_mgr)
    form = client.get("/analytics/").context["form"]
    owners = set(form.fields["owner"].queryset.values_list("username", flat=True))
    teams = set(form.fields["team"].queryset.values_list("name", flat=True))
    assert owners == {"east_mgr", "east_rep", "east_rep2", "sub_rep"}
    assert teams == {"East", "East Sub"}


def test_date_filter_and_shortcut(client, org, dcba):
    """``range=quarter`` fills from/to with this quarter's first and last day, and deals
    created before it drop out."""
    make_history(org.east_rep, dcba, 5)
    old = timezone.now() - timedelta(days=400)
    Opportunity.objects.filter(name="Deal 0").update(created_at=old)
    client.force_login(org.east_rep)
    response = client.get("/analytics/?range=quarter")
    quarter = containing("quarter", timezone.localdate())
    form = response.context["form"]
    assert form.cleaned_data["from"] == quarter.start
    assert form.cleaned_data["to"] == quarter.end - timedelta(days=1)
    assert response.context["report"]["stages"][0]["entered"] == 4
    assert f"from={quarter.start.isoformat()}" in response.context["query"]


def test_reversed_dates_are_refused(client, org, dcba):
    """``to`` before ``from`` is a 422 naming the field."""
    client.force_login(org.east_rep)
    response = client.get("/analytics/?from=2026-05-01&to=2026-04-01")
    assert response.status_code == 422
    assert "to" in response.context["form"].errors


# --- reps ----------------------------------------------------------------------------


def test_rep_sees_only_themself_against_the_team(client, org, dcba):
    """On the reps page a rep has one row, their own, and the team's pooled rates,
    even when a colleague's deal is shared with them."""
    make_history(org.east_rep, dcba, 10)
    make_history(org.east_rep2, dcba, 10)
    shared = Opportunity.objects.filter(owner=org.east_rep2).first()
    shared.shared_with.add(org.east_rep)
    client.force_login(org.east_rep)
    report = client.get("/analytics/reps/").context["report"]
    assert [r["username"] for r in report["reps"]] == ["east_rep"]
    assert report["team"][0]["n"] == 16  # both reps' resolved D deals, pooled


def test_manager_sees_each_rep_and_weak_steps(client, org, dcba):
    """A rep whose D conversion is far below the team's is flagged: the cell is
    table-danger with the words "weak step"."""
    make_history(org.east_rep, dcba, 40)
    account = create_account(actor=org.east_rep2, name="Weak account")
    reason = LostReason.objects.first()
    for i in range(12):  # all lost at D: conversion 0 with n = 12
        deal = services.create_opportunity(
            actor=org.east_rep2, pipeline=dcba, account=account, name=f"Weak {i}",
            amount=Decimal(1000),
        )  # fmt: skip
        services.lose_opportunity(deal, reason, actor=org.east_rep2)
    client.force_login(org.east_mgr)
    response = client.get("/analytics/reps/")
    rows = {r["username"]: r for r in response.context["report"]["reps"]}
    assert set(rows) == {"east_rep", "east_rep2"}
    assert rows["east_rep2"]["stages"][0]["weak"] is True
    assert rows["east_rep"]["stages"][0]["weak"] is False
    html = response.content.decode()
    assert 'class="table-danger" data-testid="weak"' in html
    assert "bi-exclamation-triangle-fill" in html


# --- forecast and reverse --------------------------------------------------------------


def test_forecast_defaults_to_this_quarter_and_takes_a_target(client, org, dcba):
    """Without a period the forecast is for this quarter; the target typed in gives the
    coverage."""
    make_history(org.east_rep, dcba, 10)
    client.force_login(org.east_rep)
    response = client.get("/analytics/forecast/?target=10000")
    report = response.context["report"]
    assert report["period"] == containing("quarter", timezone.localdate()).label
    assert report["target"] == "10000.00"
    assert report["coverage"] == pytest.approx(float(Decimal(report["forecast"]) / 10000))
    assert response.context["charts"][0]["value"] == report["coverage"]


def test_forecast_shortcut_sets_the_period(client, org, dcba):
    """On the forecast page the shortcuts choose the period, not creation dates."""
    client.force_login(org.east_rep)
    response = client.get("/analytics/forecast/?range=month")
    assert response.context["report"]["period"] == containing("month", timezone.localdate()).label
    assert response.context["form"].cleaned_data["from"] is None


@pytest.mark.parametrize("period", ["2026Q7", "0001", "0001W01", "9999W52", "1999W53"])
@pytest.mark.parametrize("url", ["/analytics/forecast/", "/analytics/reverse/?target=5&"])
def test_bad_period_is_refused(client, org, dcba, url, period):
    """A period that does not parse, or lies at the ends of the calendar (where time zone
    arithmetic overflows), is a 422 on the period field, not a 500."""
    client.force_login(org.east_rep)
    sep = "" if url.endswith("&") else "?"
    response = client.get(f"{url}{sep}period={period}")
    assert response.status_code == 422
    assert "period" in response.context["form"].errors


def test_reverse_asks_for_a_target_first(client, org, dcba):
    """The planner opens without error and asks for the target; an empty target sent is
    a 422 on the target field."""
    client.force_login(org.east_rep)
    response = client.get("/analytics/reverse/")
    assert response.status_code == 200
    assert response.context["waiting"] is True
    response = client.get("/analytics/reverse/?target=")
    assert response.status_code == 422
    assert "target" in response.context["form"].errors


def test_reverse_flags_stages_to_replenish(client, org, dcba):
    """With a target far above what is open, every plannable stage needs more and its
    row is marked table-warning with "replenish this stage"."""
    make_history(org.east_rep, dcba, 10)
    client.force_login(org.east_rep)
    response = client.get("/analytics/reverse/?target=1000000&avg_deal=1000")
    stages = response.context["report"]["stages"]
    assert stages[0]["replenish"] is True
    assert stages[0]["needed"] > stages[0]["open"]
    html = response.content.decode()
    assert html.count('class="table-warning"') == sum(s["replenish"] for s in stages)
    assert 'data-testid="replenish-alert"' in html


# --- downloads -------------------------------------------------------------------------


def read_csv(response):
    content = response.content
    assert content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for Chinese
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def read_xlsx(response):
    return (
        CalamineWorkbook.from_filelike(io.BytesIO(response.content))
        .get_sheet_by_index(0)
        .to_python()
    )


def test_funnel_csv_has_the_page_numbers(client, org, dcba, english):
    """``?format=csv`` downloads funnel-<date>.csv: a header row, one row per stage with
    the page's entered, n, conversion and weighted amount."""
    make_history(org.east_rep, dcba, 10)
    client.force_login(org.east_rep)
    page = client.get("/analytics/").context["report"]
    response = client.get("/analytics/?format=csv")
    today = timezone.localdate().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="funnel-{today}.csv"'
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    header, *rows = read_csv(response)
    assert header[:3] == ["Stage", "Entered", "Advanced"]
    col = {name: i for i, name in enumerate(header)}
    assert [r[col["Stage"]] for r in rows] == [s["name"] for s in page["stages"]]
    assert [int(r[col["Entered"]]) for r in rows] == [s["entered"] for s in page["stages"]]
    assert [int(r[col["Resolved (n)"]]) for r in rows] == [s["n"] for s in page["stages"]]
    assert rows[0][col["Conversion"]] == f"{page['stages'][0]['conversion'] * 100:.1f}%"
    assert [r[col["Weighted amount"]] for r in rows] == [
        s["weighted_amount"] for s in page["stages"]
    ]


def test_funnel_xlsx_has_the_page_numbers(client, org, dcba, english):
    """``?format=xlsx`` is a workbook with the same header and numbers as numbers."""
    make_history(org.east_rep, dcba, 10)
    client.force_login(org.east_rep)
    page = client.get("/analytics/").context["report"]
    response = client.get("/analytics/?format=xlsx")
    assert response["Content-Disposition"].endswith('.xlsx"')
    header, *rows = read_xlsx(response)
    col = {name: i for i, name in enumerate(header)}
    assert [r[col["Entered"]] for r in rows] == [s["entered"] for s in page["stages"]]
    assert rows[0][col["Conversion"]] == pytest.approx(page["stages"][0]["conversion"])
    assert rows[0][col["Open amount"]] == float(page["stages"][0]["open_amount"])


def test_downloads_follow_the_filters(client, org, dcba, english):
    """The download of a filtered page has the filtered numbers."""
    make_history(org.east_rep, dcba, 10)
    make_history(org.east_rep2, dcba, 5)
    client.force_login(org.east_mgr)
    response = client.get(f"/analytics/?owner={org.east_rep2.pk}&format=csv")
    header, *rows = read_csv(response)
    assert rows[0][header.index("Entered")] == "5"


@pytest.mark.parametrize(
    ("url", "name", "first_header"),
    [
        ("/analytics/reps/", "reps", "Rep"),
        ("/analytics/forecast/?target=5000", "forecast", "Figure"),
        ("/analytics/reverse/?target=5000", "reverse", "Stage"),
        ("/analytics/leads/", "lead-conversion", "Source"),
        ("/analytics/breakdown/?by=rep", "breakdown-rep", "Rep"),
    ],
)
def test_every_page_downloads(client, org, dcba, english, url, name, first_header):
    """Reps, forecast and reverse tables download as CSV and xlsx with a header row."""
    make_history(org.east_rep, dcba, 10)
    client.force_login(org.east_mgr)
    sep = "&" if "?" in url else "?"
    csv_rows = read_csv(client.get(f"{url}{sep}format=csv"))
    xlsx_rows = read_xlsx(client.get(f"{url}{sep}format=xlsx"))
    assert csv_rows[0][0] == first_header == xlsx_rows[0][0]
    assert len(csv_rows) == len(xlsx_rows) > 1
    assert client.get(f"{url}{sep}format=xlsx")["Content-Disposition"].startswith(
        f'attachment; filename="{name}-'
    )


def test_forecast_download_has_the_page_figures(client, org, dcba, english):
    """The forecast CSV lists each figure with the page's value and what it means."""
    make_history(org.east_rep, dcba, 10)
    client.force_login(org.east_rep)
    report = client.get("/analytics/forecast/?target=5000").context["report"]
    rows = {r[0]: r for r in read_csv(client.get("/analytics/forecast/?target=5000&format=csv"))}
    assert rows["Forecast"][1] == report["forecast"]
    assert rows["Completed"][1] == report["completed"]
    assert rows["Weighted pipeline"][1] == report["weighted_pipeline"]
    assert rows["Coverage"][1] == f"{report['coverage'] * 100:.1f}%"
    assert "completed + Σ open amount × stage win rate" in rows["Forecast"][2]


def test_rep_download_has_only_their_rows(client, org, dcba, english):
    make_history(org.east_rep, dcba, 5)
    make_history(org.east_rep2, dcba, 5)
    client.force_login(org.east_rep)
    header, *rows = read_csv(client.get("/analytics/reps/?format=csv"))
    assert {r[header.index("Username")] for r in rows} == {"east_rep"}


def test_export_helper_keeps_formulas_out():
    """Text that starts like a formula is written as text in CSV and xlsx."""
    response = exports.table_response("csv", "test", ["Name"], [["=1+1"], ["-2"], ["ok"]])
    assert read_csv(response)[1:] == [["'=1+1"], ["'-2"], ["ok"]]
    response = exports.table_response("xlsx", "test", ["Name"], [["=1+1"], [Decimal("2.50")]])
    assert read_xlsx(response)[1:] == [["=1+1"], [2.5]]


def test_export_helper_writes_types():
    """Each type of cell is written as what it is: money with two decimals, a Percent as
    a percentage, None empty."""
    rows = [[Decimal("1234.5"), exports.Percent(0.5472), None, 3, True]]
    with translation.override("en"):
        response = exports.table_response("csv", "t", ["a", "b", "c", "d", "e"], rows)
    assert read_csv(response)[1] == ["1234.50", "54.7%", "", "3", "yes"]
    with pytest.raises(ValueError):
        exports.table_response("pdf", "t", [], [])


# --- query counts ----------------------------------------------------------------------


def count_queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


@pytest.mark.parametrize(
    "url",
    [
        "/analytics/",
        "/analytics/reps/",
        "/analytics/forecast/?target=100000",
        "/analytics/reverse/?target=100000",
        "/analytics/?format=csv",
        "/analytics/leads/",
        "/analytics/breakdown/?by=region",
        "/",
    ],
)
@pytest.mark.parametrize("username", ["east_rep", "east_mgr"])
def test_query_count_does_not_grow(client, org, dcba, url, username):
    """Each page (and the dashboard) costs as many queries with 30 opportunities over
    three reps as with 5."""
    account = make_history(org.east_rep, dcba, 5)
    client.force_login(getattr(org, username))
    count_queries(client, url)  # warm up: session, language, content types
    few = count_queries(client, url)
    make_history(org.east_rep, dcba, 10, start=5, account=account)
    make_history(org.east_rep2, dcba, 10)
    make_history(org.sub_rep, dcba, 5)
    many = count_queries(client, url)
    assert many == few, f"{url} as {username}: {few} queries for 5 deals, {many} for 30"


# --- dashboard -------------------------------------------------------------------------


def test_dashboard_headline_of_the_default_pipeline(client, org, dcba):
    """The dashboard shows the open deals, the weighted pipeline (as the funnel page) and
    this quarter's won amount of the user's scope."""
    make_history(org.east_rep, dcba, 10)
    make_history(org.south_rep, dcba, 10)
    client.force_login(org.east_rep)
    funnel = client.get("/analytics/").context["report"]
    summary = client.get("/").context["pipeline"]
    assert summary["open_count"] == 4
    weighted = sum(Decimal(s["weighted_amount"]) for s in funnel["stages"])
    assert summary["weighted"] == weighted.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert summary["won_amount"] == Decimal(1002 + 1007)
    assert summary["replenish"] is None  # no target yet


def test_dashboard_alerts_link_to_their_pages(client, org, dcba):
    """A manager sees how many reps have a weak step and how many deals are stale, each
    alert a link to its page."""
    make_history(org.east_rep, dcba, 40)
    account = create_account(actor=org.east_rep2, name="Weak account")
    reason = LostReason.objects.first()
    for i in range(12):
        deal = services.create_opportunity(
            actor=org.east_rep2, pipeline=dcba, account=account, name=f"Weak {i}",
            amount=Decimal(1000),
        )  # fmt: skip
        services.lose_opportunity(deal, reason, actor=org.east_rep2)
    first = dcba.open_stages().first()
    first.stale_after_days = 1
    first.save()
    Opportunity.objects.filter(status="open", stage=first).update(
        stage_entered_at=timezone.now() - timedelta(days=5)
    )
    client.force_login(org.east_mgr)
    response = client.get("/")
    summary = response.context["pipeline"]
    assert summary["weak_reps"] == 1
    assert summary["stale"] == Opportunity.objects.visible_to(org.east_mgr).stale().count() == 8
    html = response.content.decode()
    assert 'href="/analytics/reps/?pipeline=' in html
    assert 'href="/pipeline/opportunities/?stale=true&amp;status=open"' in html

    client.force_login(org.east_rep2)
    summary = client.get("/").context["pipeline"]
    assert summary["weak_steps"] == [first.display_name]


def test_dashboard_without_pipeline(client, org):
    """No pipeline yet: the dashboard opens without the pipeline headline."""
    client.force_login(org.east_rep)
    response = client.get("/")
    assert response.status_code == 200
    assert response.context["pipeline"] is None


# --- lead sources and breakdown ---------------------------------------------------------


def test_leads_page_shows_conversion_by_source(client, org, dcba):
    """The lead-source page shows one row per source of the user's scope with both rates
    and the chart data of the report."""
    from loudou.leads.services import create_lead, disqualify_lead

    lead, _d = create_lead(actor=org.east_rep, owner=org.east_rep, name="L", company="C",
                           mobile="13800000001", source="website")  # fmt: skip
    disqualify_lead(lead, actor=org.east_rep, reason="no budget")
    make_history(org.east_rep, dcba, 5)
    client.force_login(org.east_mgr)
    response = client.get("/analytics/leads/")
    assert response.status_code == 200
    report = response.context["report"]
    assert report["total"]["leads"] == 1 and report["total"]["opportunities"] == 5
    html = response.content.decode()
    assert html.count('data-testid="source-row"') == len(report["sources"])
    assert 'id="chart-sources"' in html
    chart = response.context["charts"][0]
    assert chart["names"] == [r["name"] for r in report["sources"]]


def test_leads_page_of_another_team_is_empty(client, org, dcba):
    make_history(org.east_rep, dcba, 5)
    client.force_login(org.south_rep)
    response = client.get("/analytics/leads/")
    assert 'data-testid="empty"' in response.content.decode()


def test_breakdown_page_by_rep_with_growth(client, org, dcba, english):
    """The breakdown page groups this quarter's wins by the chosen dimension, offers the
    growth columns and downloads the same rows."""
    make_history(org.east_rep, dcba, 10)
    make_history(org.east_rep2, dcba, 5)
    client.force_login(org.east_mgr)
    response = client.get("/analytics/breakdown/?by=rep")
    assert response.status_code == 200
    report = response.context["report"]
    assert {r["key"] for r in report["rows"]} == {"east_rep", "east_rep2"}
    assert report["period"] == containing("quarter", timezone.localdate()).label
    assert all(r["growth_previous"] is None for r in report["rows"])  # nothing before
    header, *rows = read_csv(client.get("/analytics/breakdown/?by=rep&format=csv"))
    assert header[0] == "Rep" and {r[0] for r in rows} == {"east_rep", "east_rep2"}
    assert sorted(r[2] for r in rows) == sorted(r["amount"] for r in report["rows"])


def test_breakdown_refuses_an_unknown_dimension(client, org, dcba):
    client.force_login(org.east_mgr)
    assert client.get("/analytics/breakdown/?by=colour").status_code == 422


# --- targets from the targets module ---------------------------------------------------


def _quarter_target(org, amount, **owner):
    from loudou.targets.models import Measure, PeriodKind, TargetLevel
    from loudou.targets.services import set_target

    level = TargetLevel.REP if "user" in owner else TargetLevel.TEAM
    quarter = containing("quarter", timezone.localdate())
    set_target(org.admin, level=level, measure=Measure.SIGNED, period=PeriodKind.QUARTER,
               start=quarter.start, target=Decimal(amount), **owner)  # fmt: skip


def test_forecast_page_uses_the_target_set_in_targets(client, org, dcba, settings):
    """Without a typed target, the forecast page measures the rep against the quarter
    target set for them in Targets, and says so; a typed one overrides it."""
    settings.LOUDOU_COMPLETED_BASIS = "signed"
    make_history(org.east_rep, dcba, 10)
    _quarter_target(org, 500_000, user=org.east_rep)
    client.force_login(org.east_rep)
    response = client.get("/analytics/forecast/")
    report = response.context["report"]
    assert (report["target"], report["target_source"]) == ("500000.00", "set")
    assert 'data-testid="target-source"' in response.content.decode()
    typed = client.get("/analytics/forecast/?target=1000").context["report"]
    assert (typed["target"], typed["target_source"]) == ("1000.00", "given")


def test_reverse_page_starts_from_the_target_set_in_targets(client, org, dcba, settings):
    settings.LOUDOU_COMPLETED_BASIS = "signed"
    make_history(org.east_rep, dcba, 10)
    _quarter_target(org, 500_000, team=org.east)
    client.force_login(org.east_mgr)
    response = client.get("/analytics/reverse/")
    assert response.status_code == 200 and "waiting" not in response.context
    assert response.context["report"]["target_source"] == "set"


def test_dashboard_flags_low_coverage_against_the_target(client, org, dcba, settings):
    """A manager whose team's quarter target is far above the forecast gets the low
    coverage flag, with the coverage the forecast page computes."""
    settings.LOUDOU_COMPLETED_BASIS = "signed"
    make_history(org.east_rep, dcba, 10)
    _quarter_target(org, 10_000_000, team=org.east)
    client.force_login(org.east_mgr)
    response = client.get("/")
    summary = response.context["pipeline"]
    assert summary["has_target"] and summary["low_coverage"]
    forecast = client.get("/analytics/forecast/").context["report"]
    assert summary["coverage"] == pytest.approx(forecast["coverage"])
    assert 'data-testid="alert-coverage"' in response.content.decode()
    assert 'data-testid="no-alerts"' not in response.content.decode()


def test_dashboard_shows_no_coverage_alert_when_the_target_is_reached(client, org, dcba, settings):
    """With a quarter target below what the forecast already holds, the dashboard raises
    no low-coverage alert."""
    settings.LOUDOU_COMPLETED_BASIS = "signed"
    make_history(org.east_rep, dcba, 10)
    _quarter_target(org, 1, team=org.east)
    client.force_login(org.east_mgr)
    response = client.get("/")
    assert response.context["pipeline"]["low_coverage"] is False
    assert 'data-testid="alert-coverage"' not in response.content.decode()
