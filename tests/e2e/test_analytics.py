"""The analytics pages in a real browser: the charts are drawn (ECharts puts a <canvas> in
each chart box), the tables show the report's numbers, and the pages fit a phone."""

from decimal import Decimal

import pytest
from django.conf import settings

from loudou.customers.services import create_account
from loudou.pipeline import services
from loudou.pipeline.models import LostReason
from tests.conftest import PASSWORD


@pytest.fixture
def history(org, transactional_db):
    """Ten deals of east_rep in D/C/B/A, committed for the live server: 2 lost at D,
    2 lost at C, 2 won, 2 open at C, 2 open at D. Entered: D 10, C 6, B 2, A 2."""
    services.ensure_lost_reasons()
    pipeline = services.create_pipeline_from_template("dcba")
    rep = org.east_rep
    account = create_account(actor=rep, name="上海恒信科技有限公司")
    stages = list(pipeline.open_stages())
    reason = LostReason.objects.first()
    for i in range(10):
        deal = services.create_opportunity(
            actor=rep, pipeline=pipeline, account=account, name=f"Deal {i}",
            amount=Decimal(50_000 + 1_000 * i),
        )  # fmt: skip
        kind = i % 5
        if kind == 0:
            services.lose_opportunity(deal, reason, actor=rep)
            continue
        if kind in (1, 2, 3):
            deal = services.move_opportunity(
                deal, stages[1], actor=rep, checklist=stages[0].checklist
            )
        if kind == 1:
            services.lose_opportunity(deal, reason, actor=rep)
        elif kind == 2:
            for stage in stages[2:]:
                deal = services.move_opportunity(
                    deal, stage, actor=rep, checklist=deal.stage.checklist
                )
            services.win_opportunity(deal, actor=rep, checklist=deal.stage.checklist)
    return {"pipeline": pipeline, "stages": stages}


def wait_for_chart(page, chart_id):
    page.locator(f"#{chart_id} canvas").first.wait_for()


@pytest.fixture(autouse=True)
def still_charts(request):
    """Charts drawn without animation (as for users who ask for reduced motion), so a
    screenshot never catches a bar half-grown."""
    for name in ("page", "phone_page"):
        if name in request.fixturenames:
            request.getfixturevalue(name).emulate_media(reduced_motion="reduce")


def test_funnel_page_draws_its_charts_and_table(page, history, login, screenshot):
    """The funnel page (in Chinese) draws the funnel and the conversion chart, and its
    table shows 10, 6, 2, 2 entered from D to A."""
    login(page, "east_mgr", PASSWORD)
    page.goto("/analytics/")
    wait_for_chart(page, "chart-funnel")
    wait_for_chart(page, "chart-conversion")
    box = page.locator("#chart-funnel canvas").first.bounding_box()
    assert box["width"] > 200 and box["height"] > 200
    entered = page.locator("[data-testid=stage-row] [data-testid=entered]").all_inner_texts()
    assert entered == ["10", "6", "2", "2"]
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.get_by_test_id("total-won").inner_text() == "2"
    screenshot(page, "analytics-funnel-zh.png")


def test_forecast_page_in_english(page, history, login, screenshot):
    """The forecast page with a target draws the coverage gauge and the Monte Carlo band
    and shows the forecast figures, in English after the language switch."""
    login(page, "east_mgr", PASSWORD)
    page.goto("/analytics/forecast/")
    with page.expect_navigation():
        page.locator("nav form button[name=language]", has_text="English").click()
    page.locator("#id_target").fill("500000")
    with page.expect_navigation():
        page.locator("[data-testid=analytics-filters] button[type=submit]").first.click()
    wait_for_chart(page, "chart-coverage")
    wait_for_chart(page, "chart-band")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_test_id("target").inner_text() == "¥500,000"
    assert "target=500000" in page.url
    screenshot(page, "analytics-forecast-en.png")


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_pages_fit_a_phone(phone_page, history, login, screenshot, live_server, language):
    """On a 390 px wide phone every analytics page, in Chinese and in (longer) English,
    draws its chart inside the screen and does not scroll sideways (wide tables scroll
    in their own box)."""
    page = phone_page
    login(page, "east_mgr", PASSWORD)
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
    )
    pages = (
        ("/analytics/", "chart-funnel"),
        ("/analytics/reps/", "chart-reps"),
        ("/analytics/forecast/?target=500000", "chart-band"),
        ("/analytics/reverse/?target=500000", "chart-reverse"),
        ("/analytics/leads/", "chart-sources"),
        ("/analytics/breakdown/?by=rep", "chart-breakdown"),
    )
    for url, chart in pages:
        page.goto(url)
        wait_for_chart(page, chart)
        box = page.locator(f"#{chart} canvas").first.bounding_box()
        assert 0 < box["x"] and box["x"] + box["width"] <= 390, url
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, url
    if language != "zh-hans":
        return
    page.goto("/analytics/")
    wait_for_chart(page, "chart-conversion")
    screenshot(page, "analytics-funnel-phone.png")


def test_reverse_planner_and_download(page, history, login):
    """The planner shows what each stage needs, and the download menu saves the table
    as reverse-<date>.csv with the current filters."""
    login(page, "east_rep", PASSWORD)
    page.goto("/analytics/reverse/?target=1000000")
    wait_for_chart(page, "chart-reverse")
    assert page.get_by_test_id("reverse-row").count() == 4
    assert page.get_by_test_id("replenish-alert").is_visible()
    page.get_by_test_id("export").locator("button").click()
    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    download = info.value
    assert download.suggested_filename.startswith("reverse-")
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), "rb") as f:
        assert f.read(3) == b"\xef\xbb\xbf"


def test_breakdown_and_lead_sources_in_english(page, history, login, screenshot, live_server):
    """The breakdown tab groups this quarter's wins by rep with growth columns; the lead
    sources tab draws both rates per source; both in English."""
    login(page, "east_mgr", PASSWORD)
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": "en", "url": live_server.url}]
    )
    page.goto("/analytics/breakdown/")
    page.locator("#id_by").select_option("rep")
    with page.expect_navigation():
        page.locator("[data-testid=analytics-filters] button[type=submit]").first.click()
    wait_for_chart(page, "chart-breakdown")
    rows = page.get_by_test_id("breakdown-row")
    assert rows.count() == 1 and "east_rep" in rows.first.inner_text()
    assert "by=rep" in page.url
    screenshot(page, "analytics-breakdown-en.png")
    page.goto("/analytics/leads/")
    wait_for_chart(page, "chart-sources")
    assert page.get_by_test_id("source-total").get_by_test_id("leads").inner_text() == "0"
    screenshot(page, "analytics-leads-en.png")
