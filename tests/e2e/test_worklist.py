"""The Today page in a real browser: the prepared data set is listed in DOMAIN §7's
order, a task ticked on the page leaves the list, an item added to the PDCA plan
appears in it, and the page fits a phone."""

from loudou.tasks.models import Task
from loudou.worklist.models import PlanItem
from tests.conftest import PASSWORD
from tests.unit.test_worklist_queries import EXPECTED, build

LINES = """() => [...document.querySelectorAll('[data-testid=wl-item]')].map(el => [
    el.closest('[data-testid=band]').dataset.band, el.dataset.kind,
    el.querySelector('[data-testid=wl-title]').innerText])"""


def test_order_tick_and_plan(page, org, login, screenshot):
    """The lines come band by band in DOMAIN §7's order with overdue ones first; ticking
    a due task removes it; a new plan item shows in the plan."""
    data = build(org)
    login(page, "east_rep", PASSWORD)
    page.goto("/today/")
    lines = page.evaluate(LINES)
    assert [(band, kind) for band, kind, _title in lines] == [(b, k) for b, k, _t in EXPECTED]
    for (_band, _kind, shown), (_b, _k, expected) in zip(lines, EXPECTED, strict=True):
        assert expected in shown
    screenshot(page, "worklist-desktop-zh.png")

    task = data["report_task"]
    line = page.locator(f"#wl-task-{task.pk}")
    line.get_by_test_id("task-done").click()
    line.wait_for(state="detached")
    page.get_by_test_id("wl-flash").wait_for()
    assert Task.objects.get(pk=task.pk).done_at is not None
    assert len(page.evaluate(LINES)) == len(EXPECTED) - 1

    page.get_by_test_id("plan-new-text").fill("拜访恒信科技，确认预算")
    page.get_by_test_id("plan-add").click()
    page.get_by_test_id("plan-text").filter(has_text="拜访恒信科技，确认预算").wait_for()
    assert list(PlanItem.objects.values_list("text", flat=True)) == ["拜访恒信科技，确认预算"]
    assert page.get_by_test_id("plan-count").inner_text() == "1/7"


def test_phone_fits(phone_page, org, login, screenshot):
    """On a 390 px phone the page does not scroll sideways and the worklist comes first."""
    build(org)
    page = phone_page
    login(page, "east_rep", PASSWORD)
    page.goto("/today/")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390
    worklist_top = page.get_by_test_id("worklist").bounding_box()["y"]
    plan_top = page.get_by_test_id("plan").bounding_box()["y"]
    assert worklist_top < plan_top
    screenshot(page, "worklist-phone-zh.png")
