"""Demo data for contracts, orders and payments: a contract with lines and a payment plan
for most won deals (signed the day they were won), payments (some partial, one refund),
overdue instalments, a few invoices and shipments, out-of-funnel orders over the last
twelve months for several reps, and a few quotes. Everything goes through the services
and is deterministic from ``rng``."""

import random
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

from django.utils import timezone

from loudou.pipeline.choices import Status as OpportunityStatus
from loudou.pipeline.models import Opportunity

from . import services
from .choices import PaymentMethod, ShipmentStatus

PRODUCTS = {
    "dcba": [("企业版软件许可", "实施服务"), ("年度订阅", "培训服务"), ("数据平台", "定制开发")],
    "classic": [("工控主机", "安装调试"), ("传感器套装", "运维服务"), ("网关设备", "延保服务")],
}
ORDER_ITEMS = ["耗材补货", "配件订单", "续费小单", "加购许可", "备件", "培训名额"]
METHODS = [PaymentMethod.BANK_TRANSFER] * 6 + [
    PaymentMethod.ALIPAY,
    PaymentMethod.WECHAT,
    PaymentMethod.ACCEPTANCE_BILL,
    PaymentMethod.CHEQUE,
    PaymentMethod.CASH,
]
HUNDRED = Decimal(100)


def _round(amount: Decimal) -> Decimal:
    return (amount / HUNDRED).quantize(Decimal(1), rounding=ROUND_DOWN) * HUNDRED


def load_sales(rng: random.Random, ctx: dict) -> None:
    today = timezone.localdate()
    won = list(
        Opportunity.objects.filter(status=OpportunityStatus.WON)
        .select_related("owner", "account", "pipeline", "product_line")
        .order_by("closed_at", "pk")
    )
    contracts = []
    for opp in won:
        if rng.random() < 0.15 or opp.amount <= 0:
            continue  # a few won deals still wait for their paperwork
        contracts.append(_contract(rng, opp, today))
    _refund(rng, contracts)
    _orders(rng, ctx, today)
    _quotes(rng, ctx, today)
    ctx["contracts"] = contracts


def _contract(rng, opp, today):
    sign = timezone.localtime(opp.closed_at).date()
    first, second = rng.choice(PRODUCTS.get(opp.pipeline.template, PRODUCTS["dcba"]))
    main = _round(opp.amount * Decimal("0.8")) or opp.amount
    lines = [{"product": first, "quantity": 1, "unit_price": main}]
    if opp.amount - main > 0:
        lines.append({"product": second, "quantity": 1, "unit_price": opp.amount - main})
    shares = rng.choice([(Decimal("0.3"), Decimal("0.6")), (Decimal("0.5"),), ()])
    plans, planned = [], Decimal(0)
    for index, share in enumerate(shares):
        amount = _round(opp.amount * share)
        plans.append({"due_date": sign + timedelta(days=15 + 45 * index), "amount": amount})
        planned += amount
    plans.append(
        {"due_date": sign + timedelta(days=30 + 60 * len(shares)), "amount": opp.amount - planned}
    )
    contract = services.create_contract_from_opportunity(
        opp,
        actor=opp.owner,
        lines=lines,
        plans=[p for p in plans if p["amount"] > 0],
        sign_date=sign,
        start_date=sign,
        end_date=sign + timedelta(days=365),
    )
    _pay(rng, contract, today)
    paid_all = contract.received >= contract.amount
    if paid_all and rng.random() < 0.4:
        services.add_invoice(
            contract,
            actor=opp.owner,
            number=f"FP{contract.pk:08d}",
            issued_on=sign + timedelta(days=7),
            amount=contract.amount,
        )
    if rng.random() < 0.25 and opp.pipeline.template == "classic":
        status = (
            ShipmentStatus.DELIVERED
            if sign < today - timedelta(days=20)
            else ShipmentStatus.SHIPPED
        )
        services.add_shipment(
            contract,
            actor=opp.owner,
            shipped_on=min(sign + timedelta(days=10), today),
            items=lines[0]["product"],
            status=status,
        )
    return contract


def _pay(rng, contract, today):
    """Pay the instalments that fell due: mostly in full and on time, some late or in
    part, some not at all (overdue)."""
    for plan in list(contract.plans.all()):
        if plan.due_date > today:
            continue
        roll = rng.random()
        if roll < 0.18:
            continue  # unpaid: overdue
        amount = plan.amount if roll > 0.3 else _round(plan.amount / 2) or plan.amount
        paid_on = min(plan.due_date + timedelta(days=rng.randint(-5, 20)), today)
        services.record_payment(
            contract,
            actor=contract.owner,
            amount=amount,
            paid_on=paid_on,
            method=rng.choice(METHODS),
            plan=plan if rng.random() < 0.5 else None,
            reference=f"回单{rng.randint(100000, 999999)}",
        )
    contract.refresh_from_db()


def _refund(rng, contracts):
    paid = [c for c in contracts if c.received > 0]
    if not paid:
        return
    contract = rng.choice(paid)
    amount = _round(contract.received / 10) or contract.received
    services.record_payment(
        contract,
        actor=contract.owner,
        amount=-amount,
        method=PaymentMethod.BANK_TRANSFER,
        paid_on=max(p.paid_on for p in contract.payments.all()),
        note="部分退款：退货",
    )


def _orders(rng, ctx, today):
    """Out-of-funnel orders over the last twelve months for most reps, below the
    threshold; most paid on the spot."""
    ceiling = services.out_of_funnel_threshold()
    accounts = ctx["accounts"]
    for rep in ctx["reps"]:
        if rng.random() < 0.2:
            continue
        own = [a for a in accounts if a.owner_id == rep.pk] or accounts
        for _ in range(rng.randint(2, 7)):
            amount = _round(Decimal(rng.randint(1500, 18000)))
            if amount >= ceiling:
                amount = _round(ceiling * Decimal("0.8"))
            if amount <= 0:
                continue
            sign = today - timedelta(days=rng.randint(0, 360))
            order = services.create_order(
                actor=rep,
                account=rng.choice(own),
                title=rng.choice(ORDER_ITEMS),
                sign_date=sign,
                lines=[{"product": rng.choice(ORDER_ITEMS), "quantity": 1, "unit_price": amount}],
                plans=[{"due_date": sign + timedelta(days=30), "amount": amount}],
            )
            if rng.random() < 0.85:
                services.record_payment(
                    order,
                    actor=rep,
                    amount=amount,
                    method=rng.choice(METHODS),
                    paid_on=min(sign + timedelta(days=rng.randint(0, 10)), today),
                )


def _quotes(rng, ctx, today):
    """A sent quote for an open deal, a draft, and one accepted into an order."""
    open_opps = list(
        Opportunity.objects.filter(status=OpportunityStatus.OPEN)
        .select_related("account", "owner")
        .order_by("pk")[:40]
    )
    if not open_opps:
        return
    for index, opp in enumerate(rng.sample(open_opps, k=min(3, len(open_opps)))):
        first, second = rng.choice(PRODUCTS["dcba"])
        price = _round(opp.amount * Decimal("0.7")) or Decimal(1000)
        quote = services.create_quote(
            actor=opp.owner,
            account=opp.account,
            opportunity=opp,
            title=f"{opp.name} 报价",
            quote_date=today - timedelta(days=10 * index),
            valid_until=today + timedelta(days=30),
            lines=[
                {"product": first, "quantity": 1, "unit_price": price},
                {"product": second, "quantity": 2, "unit_price": _round(price / 10) or 100},
            ],
        )
        if index < 2:
            services.mark_quote_sent(quote, actor=opp.owner)
    opp = open_opps[0]
    small = services.create_quote(
        actor=opp.owner,
        account=opp.account,
        title="备件报价",
        quote_date=today - timedelta(days=20),
        lines=[{"product": "备件", "quantity": 10, "unit_price": Decimal(300)}],
    )
    services.mark_quote_sent(small, actor=opp.owner)
    services.accept_quote(small, actor=opp.owner, sign_date=today - timedelta(days=15))
