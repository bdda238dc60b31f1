"""Follow-up rules in a real browser: a rep logs an unanswered call on a lead and the
WeChat and e-mail tasks of the default rule appear in the lead's task panel without a
reload (DOMAIN §6 "if the phone is not answered, add WeChat and send an e-mail")."""

import pytest

from loudou.leads.services import create_lead
from loudou.tasks.models import Task
from loudou.web.demo import install_defaults
from tests.conftest import PASSWORD


@pytest.fixture
def lead(org, transactional_db):
    install_defaults()  # the browser tests' database is flushed between tests
    lead, _dups = create_lead(
        actor=org.east_rep, owner=org.east_rep, name="王小明", company="上海恒信科技"
    )
    return lead


def test_unanswered_call_shows_wechat_and_email_tasks(page, lead, login, screenshot):
    """The rep logs a call "not reached" from the lead's page: the task panel refreshes
    itself and lists the two new tasks (add on WeChat, send an e-mail), both stored for
    the rep and linked to the call."""
    login(page, "east_rep", PASSWORD)
    page.goto(f"/leads/{lead.pk}/")
    page.evaluate("window.__notReloaded = true")
    panel = page.get_by_test_id("task-panel")
    assert panel.get_by_test_id("task-panel-item").count() == 0
    page.get_by_test_id("activity-kind").select_option("call")
    page.get_by_test_id("activity-outcome").select_option("not_reached")
    notes = page.get_by_test_id("activity-notes")
    notes.fill("没人接")
    notes.press("Enter")
    items = page.get_by_test_id("task-panel").get_by_test_id("task-panel-item")
    items.nth(1).wait_for()
    assert items.count() == 2
    text = page.get_by_test_id("task-panel").inner_text()
    assert page.evaluate("window.__notReloaded") is True
    tasks = Task.objects.filter(lead=lead)
    assert sorted(tasks.values_list("kind", flat=True)) == ["email", "wechat"]
    assert {t.owner.username for t in tasks} == {"east_rep"}
    assert all(t.origin_activity is not None and t.source == "rule" for t in tasks)
    assert all(t.title in text for t in tasks)
    screenshot(page, "rules-unanswered-call-tasks.png")
