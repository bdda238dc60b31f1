"""Logging an activity in a real browser: a rep logs a call on an opportunity from its
page, pressing Enter, and the call appears in the timeline without a reload."""

from decimal import Decimal

import pytest

from loudou.activities.models import Activity
from loudou.customers.services import create_account
from loudou.pipeline import services
from tests.conftest import PASSWORD


@pytest.fixture
def deal(org, transactional_db):
    account = create_account(actor=org.east_rep, name="上海恒信科技有限公司")
    pipeline = services.create_pipeline_from_template("dcba")
    return services.create_opportunity(
        actor=org.east_rep, pipeline=pipeline, account=account, name="年度框架采购",
        amount=Decimal(80_000),
    )  # fmt: skip


def test_rep_logs_call_on_opportunity_without_reload(page, deal, login, screenshot):
    """The rep picks the outcome, types a note and presses Enter: the call is saved on
    the opportunity (and its account), is listed at the top of the Timeline above the
    creation, the form is empty again, and the page was not reloaded."""
    login(page, "east_rep", PASSWORD)
    page.goto(f"/pipeline/opportunities/{deal.pk}/")
    page.evaluate("window.__notReloaded = true")
    timeline = page.get_by_test_id("timeline")
    assert timeline.get_by_test_id("timeline-activity").count() == 0
    page.get_by_test_id("activity-kind").select_option("call")
    page.get_by_test_id("activity-outcome").select_option("not_reached")
    notes = page.get_by_test_id("activity-notes")
    notes.fill("客户没接，下午再打")
    notes.press("Enter")
    entry = timeline.get_by_test_id("timeline-activity").first
    entry.wait_for()
    assert "客户没接，下午再打" in entry.inner_text()
    first = timeline.locator("li").first
    assert first.get_attribute("data-testid") == "timeline-activity"
    assert page.evaluate("window.__notReloaded") is True
    assert page.get_by_test_id("activity-notes").input_value() == ""
    saved = Activity.objects.get()
    assert (saved.opportunity_id, saved.account_id, saved.kind, saved.outcome) == (
        deal.pk, deal.account_id, "call", "not_reached",
    )  # fmt: skip
    screenshot(page, "activity-logged-on-opportunity.png")
