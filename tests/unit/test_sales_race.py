"""Payments under a real race on PostgreSQL: the same payment posted twice at the same
moment (a double click, a client retrying before the first answer arrived), each request
on its own thread and database connection, through the API (issue 8's quality bar: a
payment recorded twice is stored once)."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from loudou.org.services import create_token
from loudou.sales import testing
from loudou.sales.models import Contract, Payment, PaymentPlan

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def _post_at_once(url, bodies, headers):
    """POST each body at the same moment, one thread and one connection each; returns
    (status, json) in order."""
    barrier = threading.Barrier(len(bodies))

    def post(body):
        client = Client()
        try:
            barrier.wait(timeout=30)
            response = client.post(
                url, json.dumps(body), content_type="application/json", headers=headers
            )
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def _bearer(user, key):
    _token, secret = create_token(user, name="race")
    return {"Authorization": f"Bearer {secret}", "Idempotency-Key": key}


@pytest.mark.parametrize("copies", [2, 8])
def test_same_payment_posted_at_once_is_stored_once(org, copies):
    """``copies`` requests with the same Idempotency-Key and body at the same moment:
    exactly one 201, the others 200 with the same payment id; one Payment row, and the
    contract's received amount, receivable and plan coverage count it once."""
    contract = testing.contract(
        org.east_rep, amount="1000", plans=[{"due_date": date(2026, 2, 15), "amount": "1000"}]
    )
    body = {"amount": "400.00", "paid_on": "2026-02-01", "method": "alipay"}
    answers = _post_at_once(
        f"/api/v1/contracts/{contract.pk}/payments",
        [body] * copies,
        _bearer(org.east_rep, "double-click-1"),
    )
    statuses = sorted(status for status, _data in answers)
    assert statuses == [200] * (copies - 1) + [201], answers
    assert len({data["id"] for _status, data in answers}) == 1
    assert Payment.objects.filter(contract=contract).count() == 1
    contract = Contract.objects.get(pk=contract.pk)
    assert contract.received == Decimal("400.00")
    assert contract.receivable == Decimal("600.00")
    assert PaymentPlan.objects.get(contract=contract).covered == Decimal("400.00")


def test_same_key_different_amount_at_once_one_payment_one_conflict(org):
    """Two requests share a key but not the amount, at the same moment: one is stored
    (201), the other is refused with 409 ``idempotency_conflict``; one Payment row whose
    amount is the winner's."""
    contract = testing.contract(org.east_rep, amount="1000")
    bodies = [
        {"amount": "400.00", "paid_on": "2026-02-01", "method": "alipay"},
        {"amount": "401.00", "paid_on": "2026-02-01", "method": "alipay"},
    ]
    answers = _post_at_once(
        f"/api/v1/contracts/{contract.pk}/payments", bodies, _bearer(org.east_rep, "shared-2")
    )
    statuses = sorted(status for status, _data in answers)
    assert statuses == [201, 409], answers
    winner = next(data for status, data in answers if status == 201)
    loser = next(data for status, data in answers if status == 409)
    assert loser["code"] == "idempotency_conflict"
    payment = Payment.objects.get(contract=contract)
    assert payment.pk == winner["id"]
    assert Contract.objects.get(pk=contract.pk).received == payment.amount
