"""Sales pages: scoped like the rest (generic permission checks), payments through the
contract, forms with field errors, double-submit safety, exports, both languages and a
fixed number of queries per list page."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loudou.org.models import User
from loudou.sales import services, testing
from loudou.sales.models import Contract, Payment
from tests.permissions import PermissionChecks

pytestmark = pytest.mark.django_db


class TestContractPermissions(PermissionChecks):
    page_urls = ("/sales/{obj.pk}/", "/sales/{obj.pk}/edit/")
    list_url = "/sales/"
    api_url = "/api/v1/contracts/{obj.pk}"
    api_list_url = "/api/v1/contracts"
    edit_url = "/sales/{obj.pk}/edit/"

    def make_object(self, org, owner):
        return testing.contract(owner, amount="1000")

    def edit_data(self, obj):
        return {
            "version": obj.version,
            "title": "Renamed",
            "amount": "1000",
            "status": "active",
            "sign_date": "2026-01-15",
            "owner": obj.owner_id,
            "lines-TOTAL_FORMS": "0",
            "lines-INITIAL_FORMS": "0",
        }

    def api_patch_data(self, obj):
        return {"version": obj.version, "title": "Renamed"}


class TestContractPermissionsInSubteam(TestContractPermissions):
    """The same checks for a contract owned in the sub-team, to prove subtree scope."""

    owner = "sub_rep"
    team_rep = "east_rep"


class TestQuotePermissions(PermissionChecks):
    page_urls = ("/sales/quotes/{obj.pk}/", "/sales/quotes/{obj.pk}/edit/")
    list_url = "/sales/quotes/"
    api_url = "/api/v1/quotes/{obj.pk}"
    api_list_url = "/api/v1/quotes"

    def make_object(self, org, owner):
        return services.create_quote(
            actor=owner,
            account=testing.account(owner),
            title="报价",
            lines=[{"product": "p", "quantity": 1, "unit_price": "10"}],
        )

    def api_patch_data(self, obj):
        return {"version": obj.version, "title": "Renamed"}


@pytest.mark.parametrize("who", ["team_rep", "other_rep", "other_mgr"])
def test_payment_out_of_scope_is_404_and_writes_nothing(org, client, bearer, who):
    """Payments are reached through their contract: out of scope, the page form and the
    API both answer 404 and no payment is stored."""
    user = {"team_rep": org.east_rep2, "other_rep": org.south_rep, "other_mgr": org.south_mgr}[who]
    contract = testing.contract(org.east_rep, amount="1000")
    client.force_login(user)
    page = client.post(
        f"/sales/{contract.pk}/payments/",
        {"amount": "10", "paid_on": "2026-02-01", "method": "cash"},
    )
    api = client.post(
        f"/api/v1/contracts/{contract.pk}/payments",
        {"amount": "10", "paid_on": "2026-02-01"},
        "application/json",
        headers=bearer(user),
    )
    assert (page.status_code, api.status_code) == (404, 404)
    assert (
        client.get(f"/api/v1/contracts/{contract.pk}/payments", headers=bearer(user)).status_code
        == 404
    )
    assert not Payment.objects.exists()


def test_double_submitted_payment_form_is_stored_once(org, client):
    """The payment form carries a hidden key: the same form posted twice (a double
    click) stores one payment, and the second post says it was already recorded."""
    contract = testing.contract(org.east_rep, amount="1000")
    client.force_login(org.east_rep)
    form = {
        "amount": "250",
        "paid_on": "2026-02-01",
        "method": "wechat",
        "idempotency_key": "form-key-1",
    }
    first = client.post(f"/sales/{contract.pk}/payments/", form)
    second = client.post(f"/sales/{contract.pk}/payments/", form, follow=True)
    assert first.status_code == 302
    assert Payment.objects.count() == 1
    assert "already recorded" in second.content.decode() or second.status_code == 200
    contract.refresh_from_db()
    assert contract.receivable == Decimal("750")


def test_payment_form_shows_field_error(org, client, english):
    """A refund larger than what was received comes back as an error on the amount."""
    contract = testing.contract(org.east_rep, amount="1000")
    client.force_login(org.east_rep)
    response = client.post(
        f"/sales/{contract.pk}/payments/",
        {"amount": "-5", "paid_on": "2026-02-01", "method": "cash"},
    )
    assert response.status_code == 422
    assert response.context["payment_form"].errors["amount"]
    assert not Payment.objects.exists()


def test_order_form_above_threshold_tells_to_create_opportunity(org, client, settings, english):
    """The order form refuses an amount at the threshold with a field error on amount."""
    settings.LOUDOU_OUT_OF_FUNNEL_THRESHOLD = "20000"
    account = testing.account(org.east_rep)
    client.force_login(org.east_rep)
    data = {
        "account": account.pk,
        "title": "大单",
        "amount": "20000",
        "sign_date": "2026-02-01",
        "owner": org.east_rep.pk,
        "status": "active",
        "lines-TOTAL_FORMS": "0",
        "lines-INITIAL_FORMS": "0",
    }
    response = client.post("/sales/new-order/", data)
    assert response.status_code == 200
    assert "opportunity" in " ".join(response.context["form"].errors["amount"])
    assert not Contract.objects.exists()


def test_stale_edit_form_is_refused(org, client, english):
    """An edit form from an outdated copy shows the conflict and overwrites nothing."""
    contract = testing.contract(org.east_rep, amount="1000")
    services.update_contract(contract, actor=org.east_rep, version=1, title="Newer")
    client.force_login(org.east_rep)
    data = {**TestContractPermissions().edit_data(contract), "version": 1, "title": "Older"}
    response = client.post(f"/sales/{contract.pk}/edit/", data)
    assert response.status_code == 200
    assert "changed by someone else" in response.content.decode()
    contract.refresh_from_db()
    assert contract.title == "Newer"


def test_cancel_needs_confirmation(org, client):
    """Cancelling without ticking the confirmation changes nothing; with it, it cancels."""
    contract = testing.contract(org.east_rep)
    client.force_login(org.east_rep)
    url = f"/sales/{contract.pk}/cancel/"
    assert client.post(url, {"version": 1}).status_code == 422
    contract.refresh_from_db()
    assert contract.status == "active"
    assert client.post(url, {"version": 1, "confirm": "on"}).status_code == 302
    contract.refresh_from_db()
    assert contract.status == "cancelled"


def test_contract_create_from_won_opportunity_page(org, client):
    """The create page makes a contract with lines for a won deal."""
    opp = testing.opportunity(org.east_rep, won_on=date(2026, 3, 1))
    client.force_login(org.east_rep)
    data = {
        "title": "合同",
        "sign_date": "2026-03-02",
        "status": "active",
        "lines-TOTAL_FORMS": "2",
        "lines-INITIAL_FORMS": "0",
        "lines-0-product": "A",
        "lines-0-quantity": "2",
        "lines-0-unit_price": "10.5",
        "lines-1-product": "",
        "lines-1-quantity": "",
        "lines-1-unit_price": "",
    }
    response = client.post(f"/sales/from-opportunity/{opp.pk}/", data)
    assert response.status_code == 302
    contract = Contract.objects.get()
    assert (contract.amount, contract.lines.count()) == (Decimal("21.00"), 1)


def test_opportunity_page_offers_contract_only_when_won(org, client):
    """The opportunity page shows "Create contract" for a won deal, not an open one."""
    won = testing.opportunity(org.east_rep, won_on=date(2026, 3, 1))
    open_ = testing.opportunity(org.east_rep)
    client.force_login(org.east_rep)
    assert 'data-testid="create-contract"' in client.get(won.get_absolute_url()).content.decode()
    assert (
        'data-testid="create-contract"' not in client.get(open_.get_absolute_url()).content.decode()
    )


def test_account_page_shows_contracts_and_receivable(org, client, english):
    """The customer 360 lists the account's contracts with received and overdue money."""
    today = timezone.localdate()
    acct = testing.account(org.east_rep)
    contract = testing.contract(
        org.east_rep,
        amount="1000",
        acct=acct,
        plans=[{"due_date": today - timedelta(days=3), "amount": "600"}],
    )
    services.record_payment(contract, actor=org.east_rep, amount=Decimal("100"), paid_on=today)
    client.force_login(org.east_rep)
    html = client.get(acct.get_absolute_url()).content.decode()
    assert contract.number in html
    assert "¥500" in html  # overdue: 600 due − 100 paid
    assert "¥900" in html  # receivable


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_pages_render_in_both_languages(org, client, lang):
    """Every sales page renders in Chinese and English, with data and empty."""
    user = User.objects.get(pk=org.east_rep.pk)
    user.language = lang
    user.save(update_fields=["language"])
    client.force_login(user)
    empty = [
        "/sales/",
        "/sales/receivables/",
        "/sales/quotes/",
        "/sales/new-order/",
        "/sales/quotes/new/",
    ]
    for url in empty:
        response = client.get(url)
        assert response.status_code == 200, url
        assert f'lang="{lang}"' in response.content.decode(), url
    contract = testing.contract(org.east_rep, amount="1000")
    services.record_payment(contract, actor=user, amount=Decimal(10), paid_on=date(2026, 1, 2))
    quote = services.create_quote(actor=user, account=contract.account, title="Q")
    for url in [
        "/sales/",
        f"/sales/{contract.pk}/",
        f"/sales/{contract.pk}/edit/",
        "/sales/receivables/",
        f"/sales/quotes/{quote.pk}/",
        f"/sales/quotes/{quote.pk}/edit/",
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert (
            contract.number in response.content.decode()
            or quote.number in response.content.decode()
        )


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_exports_hold_only_visible_filtered_rows(org, client, fmt):
    """The downloads follow the filters and the user's scope."""
    mine = testing.contract(org.east_rep, amount="1000")
    theirs = testing.contract(org.south_rep, amount="1000")
    client.force_login(org.east_rep)
    for url in ("/sales/", "/sales/receivables/"):
        response = client.get(url, {"format": fmt})
        assert response.status_code == 200
        body = response.content if fmt == "xlsx" else response.content.decode("utf-8-sig")
        if fmt == "csv":
            assert mine.number in body and theirs.number not in body
    response = client.get("/sales/", {"format": "csv", "status": "cancelled"})
    assert mine.number not in response.content.decode("utf-8-sig")


def test_list_pages_query_count_does_not_grow(org, client, django_assert_max_num_queries):
    """The contract list and receivables pages cost the same queries for 3 or 30 rows."""
    client.force_login(org.east_rep)
    for _ in range(3):
        testing.contract(org.east_rep, amount="1000")
    counts = {}
    for url in ("/sales/", "/sales/receivables/", "/sales/quotes/"):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        counts[url] = len(ctx.captured_queries)
    for _ in range(27):
        testing.contract(org.east_rep, amount="1000")
    for url, count in counts.items():
        with django_assert_max_num_queries(count):
            assert client.get(url).status_code == 200
