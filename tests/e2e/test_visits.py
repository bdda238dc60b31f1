"""Visits in a real phone-sized browser: the rep opens today's visit, taps Check in, the
browser gives a (fake) position 320 m from the customer, the page shows the distance and
the record form, and the visit is recorded — without a page reload. When location is
refused, the page says so and the visit can still be recorded without location."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loudou.activities.models import Activity, Visit
from loudou.activities.visits import services
from loudou.customers.models import Account
from loudou.customers.services import create_account
from loudou.tasks.models import Task
from tests.conftest import PASSWORD


@pytest.fixture
def visit(org, transactional_db):
    account = create_account(
        actor=org.east_rep, name="上海恒信科技有限公司", address="上海市人民广场1号"
    )
    Account.objects.filter(pk=account.pk).update(
        latitude=Decimal("31.230400"), longitude=Decimal("121.473700")
    )
    return services.plan_visit(
        org.east_rep, account=account, planned_for=timezone.now() + timedelta(minutes=30),
        topic="演示新版本",
    )  # fmt: skip


def test_phone_check_in_shows_distance_then_records(phone_page, visit, login, screenshot):
    """With location allowed, Check in posts the phone's position: the page shows
    "320 m" from the address and the record form; saving records the visit with its
    activity and completes the task, all without reloading the page."""
    page = phone_page
    page.context.grant_permissions(["geolocation"])
    page.context.set_geolocation({"latitude": 31.23328, "longitude": 121.4737, "accuracy": 15})
    login(page, "east_rep", PASSWORD)
    page.goto("/activities/visits/")
    page.get_by_test_id("visit-row").first.click()
    page.wait_for_url(f"**/activities/visits/{visit.pk}/")
    page.evaluate("window.__notReloaded = true")
    screenshot(page, "visit-phone-before-check-in.png")
    page.get_by_test_id("checkin-button").click()
    result = page.get_by_test_id("checkin-result")
    result.wait_for()
    assert "320" in page.get_by_test_id("checkin-distance").inner_text()
    assert "alert-success" in result.get_attribute("class")
    screenshot(page, "visit-phone-checked-in.png")
    checked = Visit.objects.get(pk=visit.pk)
    assert (checked.distance_m, checked.accuracy_m) == (320, 15)
    form = page.get_by_test_id("record-form")
    assert form.is_visible()
    form.locator("textarea[name=notes]").fill("见了采购，约下周演示")
    form.locator("input[name=gave_something]").check()
    form.locator("input[name=gave_what]").fill("产品手册")
    page.get_by_test_id("record-submit").click()
    page.get_by_test_id("visit-done").wait_for()
    assert page.evaluate("window.__notReloaded") is True
    done = Visit.objects.get(pk=visit.pk)
    activity = Activity.objects.get(pk=done.activity_id)
    assert (done.status, activity.kind, activity.outcome, activity.gave_what) == (
        "done", "visit", "visited", "产品手册",
    )  # fmt: skip
    assert Task.objects.get(pk=done.task_id).done_at is not None
    screenshot(page, "visit-phone-recorded.png")


def test_phone_location_denied_records_without_location(phone_page, visit, login):
    """With location refused, the page explains it and opens the record form; the
    visit is recorded without a check-in and says so."""
    page = phone_page
    page.context.clear_permissions()
    login(page, "east_rep", PASSWORD)
    page.goto(f"/activities/visits/{visit.pk}/")
    page.get_by_test_id("checkin-button").click()
    status = page.get_by_test_id("checkin-status")
    status.locator(".text-danger").wait_for()
    assert page.get_by_test_id("checkin-button").is_enabled()
    form = page.get_by_test_id("record-form")
    form.wait_for(state="visible")
    # The panel slides open (Bootstrap collapse); on a loaded machine a tap during the
    # slide could land before the form is in place, so tap once it has opened.
    page.wait_for_selector("#record-panel.show:not(.collapsing)")
    with page.expect_response(lambda r: r.url.endswith(f"/visits/{visit.pk}/record/")) as sent:
        page.get_by_test_id("record-submit").click()
    assert sent.value.status == 200
    page.get_by_test_id("visit-done").wait_for()
    assert page.get_by_test_id("no-check-in").is_visible()
    done = Visit.objects.get(pk=visit.pk)
    assert (done.status, done.checked_in_at, done.latitude) == ("done", None, None)
