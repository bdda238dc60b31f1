"""Tasks in a real browser: a rep adds a task from an opportunity's task panel without a
reload, finds it on the calendar and ticks it done there from the task list."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loudou.customers.services import create_account
from loudou.pipeline import services
from loudou.tasks.models import Task
from tests.conftest import PASSWORD


@pytest.fixture
def deal(org, transactional_db):
    account = create_account(actor=org.east_rep, name="上海恒信科技有限公司")
    pipeline = services.create_pipeline_from_template("dcba")
    return services.create_opportunity(
        actor=org.east_rep, pipeline=pipeline, account=account, name="年度框架采购",
        amount=Decimal(80_000),
    )  # fmt: skip


def test_add_task_on_opportunity_see_it_on_calendar_and_tick_it(
    page, phone_page, deal, login, screenshot
):
    """The rep types a title, sets tomorrow 10:00 and presses Enter in the opportunity's
    task panel: the task is listed without a reload, linked to the deal. The week
    calendar shows it on tomorrow's day; its checkbox in the task list marks it done.
    On a phone the calendar still shows the task."""
    login(page, "east_rep", PASSWORD)
    page.goto(f"/pipeline/opportunities/{deal.pk}/")
    page.evaluate("window.__notReloaded = true")
    panel = page.get_by_test_id("task-panel")
    assert panel.get_by_test_id("task-panel-empty").count() == 1
    tomorrow = timezone.localdate() + timedelta(days=1)
    panel.get_by_test_id("task-due-date").fill(tomorrow.isoformat())
    panel.get_by_test_id("task-due-time").fill("10:00")
    title = panel.get_by_test_id("task-title")
    title.fill("发正式报价单")
    title.press("Enter")
    item = page.get_by_test_id("task-panel").get_by_test_id("task-panel-item").first
    item.wait_for()
    assert "发正式报价单" in item.inner_text()
    assert page.evaluate("window.__notReloaded") is True
    task = Task.objects.get()
    assert (task.opportunity_id, task.account_id, task.owner.username) == (
        deal.pk, deal.account_id, "east_rep",
    )  # fmt: skip
    assert timezone.localtime(task.due_at).strftime("%Y-%m-%d %H:%M") == (
        f"{tomorrow.isoformat()} 10:00"
    )
    screenshot(page, "task-added-on-opportunity.png")

    page.goto(f"/tasks/calendar/?view=week&date={tomorrow.isoformat()}")
    cell = page.locator(f'[data-testid="cal-cell"][data-day="{tomorrow.isoformat()}"]')
    entry = cell.get_by_test_id("cal-item")
    assert entry.count() == 1 and "10:00" in entry.inner_text()
    screenshot(page, "task-calendar-week.png")

    page.goto("/tasks/")
    row = page.get_by_test_id("task-row").first
    with page.expect_response(lambda r: r.url.endswith(f"/tasks/{task.pk}/done/")):
        row.get_by_test_id("task-done").check()
    # the answer swaps the row in: now ticked, and its checkbox would reopen the task
    page.locator(f'#task-{task.pk} [hx-post="/tasks/{task.pk}/reopen/"]:checked').wait_for()
    task.refresh_from_db()
    assert task.done_at is not None and task.done_by.username == "east_rep"

    login(phone_page, "east_rep", PASSWORD)
    phone_page.goto(f"/tasks/calendar/?view=month&date={tomorrow.isoformat()}")
    listed = phone_page.get_by_test_id("cal-month-list").get_by_test_id("cal-item")
    assert listed.count() == 1 and listed.first.is_visible()
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone_page, "task-calendar-month-phone.png")
