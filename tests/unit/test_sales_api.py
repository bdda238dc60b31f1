"""The sales API: contracts and orders, idempotent payments over HTTP, versions, quotes,
receivables, and the query count of the lists."""

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loudou.sales import services, testing
from loudou.sales.models import Contract, Payment

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture
def call(client, bearer, english):
    def do(method, user, path, body=None, headers=None, **params):
        h = {**bearer(user), **(headers or {})}
        if method == "get":
            return client.get(API + path, params, headers=h)
        return getattr(client, method)(
            API + path, json.dumps(body or {}), "application/json", headers=h
        )

    return do


def test_create_contract_from_won_deal(org, call):
    """POST /contracts for a won deal answers 201 with the lines and the plan."""
    opp = testing.opportunity(org.east_rep, won_on=date(2026, 2, 1))
    body = {
        "opportunity_id": opp.pk,
        "lines": [{"product": "A", "quantity": "2", "unit_price": "150.25"}],
        "plans": [{"due_date": "2026-03-01", "amount": "300.50"}],
    }
    response = call("post", org.east_rep, "/contracts", body)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["amount"] == "300.50" and data["receivable"] == "300.50"
    assert data["sign_date"] == "2026-02-01"
    assert [p["amount"] for p in data["plans"]] == ["300.50"]


def test_contract_for_open_deal_is_422(org, call):
    """POST /contracts for an open deal is a 422 naming the opportunity."""
    opp = testing.opportunity(org.east_rep)
    response = call("post", org.east_rep, "/contracts", {"opportunity_id": opp.pk})
    assert response.status_code == 422
    assert response.json()["field"] == "opportunity"


def test_contract_for_invisible_deal_is_refused(org, call):
    """A deal outside the caller's scope cannot be used, and nothing is written."""
    opp = testing.opportunity(org.south_rep, won_on=date(2026, 2, 1))
    response = call("post", org.east_rep, "/contracts", {"opportunity_id": opp.pk})
    assert response.status_code == 422
    assert not Contract.objects.exists()


def test_order_above_threshold_is_422_on_amount(org, call, settings):
    """POST /orders at the threshold: 422 on ``amount`` telling to open an opportunity."""
    settings.LOUDOU_OUT_OF_FUNNEL_THRESHOLD = "20000"
    account = testing.account(org.east_rep)
    body = {"account_id": account.pk, "title": "t", "amount": "20000", "sign_date": "2026-01-02"}
    response = call("post", org.east_rep, "/orders", body)
    assert response.status_code == 422
    assert response.json()["field"] == "amount"
    assert "opportunity" in response.json()["detail"]
    body["amount"] = "19999.99"
    assert call("post", org.east_rep, "/orders", body).status_code == 201


def test_payment_retry_with_same_key_returns_first(org, call):
    """The same Idempotency-Key and body twice: 201 then 200 with the same id, one row."""
    contract = testing.contract(org.east_rep, amount="1000")
    body = {"amount": "400.00", "paid_on": "2026-02-01", "method": "alipay"}
    headers = {"Idempotency-Key": "abc-123"}
    url = f"/contracts/{contract.pk}/payments"
    first = call("post", org.east_rep, url, body, headers)
    second = call("post", org.east_rep, url, body, headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Payment.objects.count() == 1
    other = call("post", org.east_rep, url, {**body, "amount": "401.00"}, headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert Payment.objects.count() == 1
    contract.refresh_from_db()
    assert contract.receivable == Decimal("600.00")


def test_payments_without_key_are_separate(org, call):
    """Without a key, two identical payments are two payments (two instalments)."""
    contract = testing.contract(org.east_rep, amount="1000")
    body = {"amount": "100", "paid_on": "2026-02-01"}
    for _ in range(2):
        assert (
            call("post", org.east_rep, f"/contracts/{contract.pk}/payments", body).status_code
            == 201
        )
    assert Payment.objects.count() == 2


def test_stale_patch_is_409(org, call):
    """A PATCH with an old version is a 409 and changes nothing."""
    contract = testing.contract(org.east_rep)
    url = f"/contracts/{contract.pk}"
    assert call("patch", org.east_rep, url, {"version": 1, "title": "A"}).status_code == 200
    response = call("patch", org.east_rep, url, {"version": 1, "title": "B"})
    assert response.status_code == 409
    contract.refresh_from_db()
    assert contract.title == "A"


def test_cancelled_contract_refuses_payment_over_api(org, call):
    """After cancelling, a payment is a 409 and no row is written."""
    contract = testing.contract(org.east_rep)
    assert (
        call("post", org.east_rep, f"/contracts/{contract.pk}/cancel", {"version": 1}).status_code
        == 200
    )
    body = {"amount": "1", "paid_on": "2026-02-01"}
    response = call("post", org.east_rep, f"/contracts/{contract.pk}/payments", body)
    assert response.status_code == 409
    assert not Payment.objects.exists()


def test_quote_accept_gives_contract(org, call):
    """A quote created, sent and accepted over the API becomes a contract (201)."""
    account = testing.account(org.east_rep)
    body = {"account_id": account.pk, "title": "Q",
            "lines": [{"product": "p", "quantity": "1", "unit_price": "99"}]}  # fmt: skip
    quote = call("post", org.east_rep, "/quotes", body).json()
    sent = call("post", org.east_rep, f"/quotes/{quote['id']}/send", {"version": 1})
    assert sent.json()["status"] == "sent"
    accepted = call("post", org.east_rep, f"/quotes/{quote['id']}/accept", {"version": 2})
    assert accepted.status_code == 201
    assert accepted.json()["amount"] == "99.00" and accepted.json()["kind"] == "order"


def test_receivables_overdue_first_and_summary(org, call):
    """The receivables list puts overdue contracts first; the summary adds them up."""
    today = timezone.localdate()
    current = testing.contract(org.east_rep, amount="500")
    late = testing.contract(
        org.east_rep,
        amount="300",
        plans=[{"due_date": today - timedelta(days=40), "amount": "300"}],
    )
    items = call("get", org.east_rep, "/receivables").json()["items"]
    assert [i["id"] for i in items] == [late.pk, current.pk]
    assert items[0]["overdue_amount"] == "300.00" and items[0]["days_overdue"] == 40
    summary = call("get", org.east_rep, "/receivables/summary").json()
    assert summary["owed"] == "800.00" and summary["buckets"]["31-60"] == "300.00"
    overdue = call("get", org.east_rep, "/receivables/overdue").json()["items"]
    assert [o["contract"]["id"] for o in overdue] == [late.pk]


def test_list_query_count_does_not_grow(org, call, django_assert_max_num_queries):
    """The contract and receivable lists cost a fixed number of queries per page."""
    for _ in range(12):
        services.record_payment(
            testing.contract(org.east_rep, amount="100"),
            actor=org.east_rep,
            amount=Decimal(10),
            paid_on=date(2026, 2, 1),
        )
    for path in ("/contracts", "/receivables"):
        with django_assert_max_num_queries(8):
            response = call("get", org.east_rep, path)
        assert response.json()["count"] == 12
