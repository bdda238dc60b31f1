"""Leads in a real browser: a rep claims a pooled lead from the pool page, then receives
a lead from their manager and finds it through the bell."""

import re

from loudou.leads import services
from loudou.leads.models import Lead, PublicPool
from loudou.org.models import User
from loudou.web.demo import DEMO_PASSWORD

REP = "zhangwei"
MANAGER = "wangjg"


def bell_count(page) -> int:
    badge = page.get_by_test_id("bell-count")
    return int(badge.inner_text()) if badge.count() else 0


def test_claim_from_pool_then_bell_shows_an_assignment(page, demo, login, screenshot):
    """The rep claims the first lead of their pool (it becomes theirs); the manager gives
    them another lead; on the next page the bell counts one more, its menu lists the new
    lead, and opening it shows the lead and lowers the count."""
    rep = User.objects.get(username=REP)
    pool = PublicPool.objects.visible_to(rep).filter(leads__isnull=False).distinct().first()
    assert pool is not None
    login(page, REP, DEMO_PASSWORD)
    page.goto(pool.get_absolute_url())
    first = Lead.objects.filter(pool=pool).order_by("-created_at", "-pk").first()
    page.locator(f"form[action='/leads/{first.pk}/claim/'] button").click()
    page.wait_for_load_state()
    assert Lead.objects.filter(pk=first.pk, owner=rep, pool=None).exists()
    before = bell_count(page)

    manager = User.objects.get(username=MANAGER)
    given, _dups = services.create_lead(actor=manager, owner=rep, name="浏览器测试客户",
                                        company="上海测试科技有限公司")  # fmt: skip
    page.goto("/leads/")
    assert bell_count(page) == before + 1
    page.get_by_test_id("bell").locator("a.dropdown-toggle").click()
    item = page.locator("#bell-menu a", has_text="浏览器测试客户")
    item.wait_for()
    screenshot(page, "bell-menu-zh.png")
    item.click()
    page.wait_for_url(re.compile(rf"/leads/{given.pk}/$"))
    assert bell_count(page) == before


def test_manager_previews_and_splits_a_leavers_records(page, demo, login, screenshot):
    """The manager chooses the leaving rep, splits their records between two reps,
    previews who gets what (nothing moves), confirms, and lands on the hand-over record
    with its shares; every account went to one of the two, deals with their accounts."""
    from loudou.customers.models import Account
    from loudou.pipeline.models import Opportunity

    leaver = User.objects.get(username=REP)
    a, b = User.objects.get(username="lina"), User.objects.get(username="liuyang")
    owned = list(Account.objects.filter(owner=leaver).values_list("pk", flat=True))
    assert owned
    login(page, MANAGER, DEMO_PASSWORD)
    page.goto(f"/org/handover/?from_user={leaver.pk}")
    page.select_option("#id_receivers", [str(a.pk), str(b.pk)])
    page.get_by_test_id("handover-preview-button").click()
    page.get_by_test_id("handover-preview").wait_for()
    assert Account.objects.filter(owner=leaver).count() == len(owned)
    screenshot(page, "handover-split-zh.png")
    page.check("#id_confirm")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("handover-submit").click()
    page.get_by_test_id("handover-shares").wait_for()
    assert set(Account.objects.filter(pk__in=owned).values_list("owner_id", flat=True)) == {
        a.pk, b.pk
    }  # fmt: skip
    for opp in Opportunity.objects.filter(account_id__in=owned).select_related("account"):
        assert opp.owner_id in (a.pk, b.pk)
