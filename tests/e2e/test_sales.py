"""Recording a payment in a real browser, on a phone: the form opens from the contract
page, a double click stores one payment, and the receivable drops by its amount."""

from decimal import Decimal

from django.db.models import F

from loudou.org.models import User
from loudou.sales.models import Contract, Payment
from loudou.web.demo import DEMO_PASSWORD
from loudou.web.templatetags.loudou import money

REP = "zhangwei"


def test_record_payment_double_click_stores_one(phone_page, demo, login, screenshot):
    """The rep opens an owing contract, records 1,234.56 with a double click on the
    button: one payment is stored, the page says so and shows the lower receivable."""
    page = phone_page
    rep = User.objects.get(username=REP)
    contract = (
        Contract.objects.visible_to(rep).signed().filter(owner=rep, amount__gt=F("received") + 2000)
        .order_by("pk").first()
    )  # fmt: skip
    assert contract is not None and contract.receivable > Decimal("1234.56")
    before = Payment.objects.filter(contract=contract).count()
    login(page, REP, DEMO_PASSWORD)
    page.goto(contract.get_absolute_url())
    page.get_by_test_id("record-payment").click()
    form = page.get_by_test_id("payment-form")
    form.locator("input[name=amount]").wait_for(state="visible")
    form.locator("input[name=amount]").fill("1234.56")
    screenshot(page, "sales-payment-form-phone.png")
    form.locator("button[type=submit]").dblclick()
    page.wait_for_load_state()
    page.get_by_text("¥1,234.56").first.wait_for()
    assert Payment.objects.filter(contract=contract).count() == before + 1
    contract.refresh_from_db()
    assert page.get_by_test_id("receivable").inner_text() == money(contract.receivable, "CNY")
    screenshot(page, "sales-payment-recorded-phone.png")
