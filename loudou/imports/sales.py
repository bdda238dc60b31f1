"""Importing contracts and out-of-funnel orders, and payments received (回款).

Contracts and orders (kind ``orders``): the rules of ``loudou.sales.services`` hold — a
contract belongs to a *won* opportunity (named in the row, at the row's account), an
order has none and stays strictly below ``LOUDOU_OUT_OF_FUNNEL_THRESHOLD``; without a
kind column, a row naming an opportunity is a contract and one without is an order. The
file's number (合同编号) is kept when it is free; otherwise a number of the year is given
as the services do (HT-2026-00001, DD-2026-00001). A duplicate is a contract with the
same number, or the same account, title, sign date and amount.

Payments (kind ``payments``): each names its contract by number; a negative amount is a
refund and may not take back more than was received; a cancelled contract takes no new
money. A payment id column (回款编号) becomes the payment's idempotency key
(``import:<id>``), so the same payment imported twice is stored once even by two imports
at the same time; without one a duplicate is a payment of the same contract, day, amount
and reference. The contracts' kept figures (received, plan coverage, next due date) are
recomputed by ``sales.services.recompute_contract`` once per contract touched.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext as _

from loudou.core.money import default_currency
from loudou.pipeline.choices import Status
from loudou.pipeline.models import Opportunity
from loudou.sales import services as sales_services
from loudou.sales.choices import ContractKind, ContractStatus, PaymentMethod
from loudou.sales.models import Contract, Payment

from . import bulk
from .activities import _choice, _words
from .importers import Importer, _text, normalize_company, visible_accounts
from .models import OnDuplicate
from .values import BadValue, parse_date, parse_decimal

ZERO = Decimal("0.00")
MAX_AMOUNT = Decimal("999999999999.99")

KIND_WORDS = _words({
    ContractKind.CONTRACT: ["合同", "销售合同", "contract"],
    ContractKind.ORDER: ["订单", "销售订单", "小单", "order", "out-of-funnel order"],
})  # fmt: skip
STATUS_WORDS = _words({
    ContractStatus.DRAFT: ["草稿", "待审核", "审核中", "draft"],
    ContractStatus.ACTIVE: ["执行中", "生效", "已生效", "进行中", "审核通过", "active",
                            "activated", "signed"],
    ContractStatus.COMPLETED: ["已完成", "完成", "结束", "已结束", "completed", "closed"],
    ContractStatus.CANCELLED: ["作废", "已作废", "取消", "已取消", "终止", "cancelled",
                               "canceled", "void"],
})  # fmt: skip
METHOD_WORDS = _words({
    PaymentMethod.BANK_TRANSFER: ["银行转账", "转账", "电汇", "对公转账", "bank transfer",
                                  "wire", "transfer"],
    PaymentMethod.CASH: ["现金", "cash"],
    PaymentMethod.CHEQUE: ["支票", "check", "cheque"],
    PaymentMethod.ALIPAY: ["支付宝", "alipay"],
    PaymentMethod.WECHAT: ["微信", "微信支付", "wechat pay", "wechat"],
    PaymentMethod.ACCEPTANCE_BILL: ["承兑", "承兑汇票", "汇票", "银行承兑", "acceptance bill"],
    PaymentMethod.OTHER: ["其他", "其它", "other"],
})  # fmt: skip


def parse_money(value, *, negative=False) -> Decimal | None:
    """An amount with two decimals; refunds (negative) only where ``negative``."""
    number = parse_decimal(value)
    if number is None:
        return None
    if number < 0 and not negative:
        raise BadValue(_("negative amount"))
    number = number.quantize(Decimal("0.01"))
    if abs(number) > MAX_AMOUNT:
        raise BadValue(_("amount too large"))
    return number


class ContractImporter(Importer):
    """Contracts (of won opportunities) and out-of-funnel orders."""

    kind, file = "orders", "orders"
    parsers = {
        "number": _text(30), "kind": _choice(KIND_WORDS, _("kind (contract or order)")),
        "title": _text(200), "account": _text(200), "opportunity": _text(200),
        "amount": parse_money, "currency": lambda v: _text(3)(v).upper(),
        "sign_date": parse_date, "start_date": parse_date, "end_date": parse_date,
        "status": _choice(STATUS_WORDS, _("status"), ContractStatus.ACTIVE),
        "owner": _text(), "notes": _text(),
    }  # fmt: skip

    def before(self, table, mapping) -> None:
        self.threshold = sales_services.out_of_funnel_threshold()
        self.currency = default_currency()
        self.sequences: dict[str, int] = {}

    def indexes_kept(self) -> dict:
        return {Contract: ["account"]}

    def check(self, number, data) -> None:
        self.required(number, data, "title", "account", "sign_date")
        owner_cell = data.get("owner", "")
        self.owner(number, data)
        data["_owner_given"] = bool(owner_cell)
        if data.get("start_date") and data.get("end_date") and \
                data["end_date"] < data["start_date"]:  # fmt: skip
            self.bad(number, "end_date", _("the term ends before it starts"))

    def write_batch(self, batch) -> None:
        actor = self.ctx.actor
        parsed = self.parse_batch(batch, self.check)
        accounts = visible_accounts(actor, {normalize_company(d["account"]) for _n, d in parsed})
        account_ids = set(accounts.values())
        opportunities = {}
        for pk, account_id, name, status, owner, currency in (
            Opportunity.objects.visible_to(actor).filter(account_id__in=account_ids)
            .order_by("pk")
            .values_list("pk", "account_id", "name", "status", "owner_id", "currency")
        ):  # fmt: skip
            opportunities.setdefault((account_id, name.casefold()), (pk, status, owner, currency))
        numbers = {d.get("number") for _n, d in parsed if d.get("number")}
        taken = {n for (n,) in bulk.lookup(Contract, ("number",), "number", numbers)}
        existing = {}
        for pk, account_id, title, sign_date, amount in bulk.lookup(
            Contract, ("id", "account_id", "title", "sign_date", "amount"), "account", account_ids
        ):
            existing.setdefault((account_id, title, str(sign_date), _cents(amount)), pk)
        mode = self.mode
        rows, seen = [], set()
        for number, data in parsed:
            account_id = accounts.get(normalize_company(data["account"]))
            if account_id is None:
                self.bad(number, "account", _("no such account (or not yours to see)"))
                continue
            opp = None
            if data.get("opportunity"):
                opp = opportunities.get((account_id, data["opportunity"].casefold()))
                if opp is None:
                    self.bad(number, "opportunity", _("no such opportunity at this account"))
                    continue
            kind = data.get("kind") or (ContractKind.CONTRACT if opp else ContractKind.ORDER)
            amount = data.get("amount")
            if amount is None:
                self.bad(number, "amount", _("required"))
                continue
            if kind == ContractKind.CONTRACT:
                if opp is None:
                    self.bad(number, "opportunity", _("a contract belongs to a won opportunity: "
                                                      "name it, or import an order"))  # fmt: skip
                    continue
                if opp[1] != Status.WON:
                    self.bad(number, "opportunity", _("the opportunity is not won"))
                    continue
            else:
                if opp is not None:
                    self.bad(number, "opportunity", _("an order has no opportunity"))
                    continue
                if amount <= 0 or amount >= self.threshold:
                    self.bad(number, "amount", _("an order is above zero and below %s; larger "
                                                 "sales go through the funnel")
                             % f"{self.threshold:,.2f}")  # fmt: skip
                    continue
            key = (account_id, data["title"], str(data["sign_date"]), _cents(amount))
            given = data.get("number", "")
            if mode != OnDuplicate.CREATE and (
                (given and given in taken) or key in existing or key in seen
            ):
                self.count("duplicate")
                seen.add(key)
                continue
            seen.add(key)
            if given in taken:
                given = ""  # "create": the file's number is in use; give a new one
            if given:
                taken.add(given)
            owner = data["owner_id"]
            if opp is not None and not data["_owner_given"] and opp[2]:
                owner = opp[2]
            rows.append(self.stamp({
                "number": given or self._number(kind, data["sign_date"], taken), "kind": kind,
                "title": data["title"], "account_id": account_id,
                "opportunity_id": opp[0] if opp else None, "amount": amount,
                "currency": data.get("currency") or (opp[3] if opp else "") or self.currency,
                "sign_date": data["sign_date"], "start_date": data.get("start_date"),
                "end_date": data.get("end_date"), "status": data.get("status")
                or ContractStatus.ACTIVE, "notes": data.get("notes", ""), "owner_id": owner,
                "created_by_id": actor.pk, "received": ZERO, "next_due_date": None,
                "cancel_reason": "", "version": 1,
            }))  # fmt: skip
        self.insert_new(Contract, rows)

    def _number(self, kind, day, taken) -> str:
        """The next number of the year, as ``sales.services`` numbers (HT-/DD-): the
        first free one is read once, then counted on inside the write transaction."""
        prefix = "DD" if kind == ContractKind.ORDER else "HT"
        stem = f"{prefix}-{day.year}-"
        if stem not in self.sequences:
            first = sales_services.next_number(Contract, prefix, day)
            self.sequences[stem] = int(first[len(stem) :]) - 1
        while True:
            self.sequences[stem] += 1
            number = f"{stem}{self.sequences[stem]:05d}"
            if number not in taken:
                taken.add(number)
                return number


def recompute_contracts(ids) -> None:
    """``sales.services.recompute_contract`` for each (locked) contract of ``ids``: after
    an import's payments, and after an undo took them away."""
    ids = sorted(ids)
    for start in range(0, len(ids), 2_000):
        chunk = ids[start : start + 2_000]
        for contract in Contract.objects.filter(pk__in=chunk).select_for_update():
            sales_services.recompute_contract(contract)


def _cents(amount) -> int:
    return int(Decimal(amount) * 100)


class PaymentImporter(Importer):
    """Payments (and refunds) against contracts named by number."""

    kind, file = "payments", "payments"
    parsers = {
        "external_id": _text(90), "contract": _text(30),
        "amount": lambda v: parse_money(v, negative=True), "paid_on": parse_date,
        "method": _choice(METHOD_WORDS, _("payment method"), PaymentMethod.BANK_TRANSFER),
        "reference": _text(100), "note": _text(300),
    }  # fmt: skip

    def before(self, table, mapping) -> None:
        self.received: dict[int, Decimal] = {}
        self.touched: set[int] = set()

    def run(self) -> None:
        super().run()
        recompute_contracts(self.touched)

    def indexes_kept(self) -> dict:
        return {Payment: ["contract"]}

    def check(self, number, data) -> None:
        self.required(number, data, "contract", "paid_on")
        if "amount" in data and not data["amount"]:
            self.bad(number, "amount", _("required (and not zero)"))

    def write_batch(self, batch) -> None:
        actor = self.ctx.actor
        parsed = self.parse_batch(batch, self.check)
        contracts = {}
        for pk, contract_number, status, received in (
            Contract.objects.visible_to(actor)
            .filter(number__in={d["contract"] for _n, d in parsed})
            .values_list("pk", "number", "status", "received")
        ):  # fmt: skip
            contracts[contract_number] = (pk, status)
            self.received.setdefault(pk, received)
        keys = {f"import:{d['external_id']}" for _n, d in parsed if d.get("external_id")}
        by_key = dict(bulk.lookup(Payment, ("idempotency_key", "id"), "idempotency_key", keys))
        ids = {c[0] for c in contracts.values()}
        existing = set()
        for contract_id, paid_on, amount, reference in bulk.lookup(
            Payment, ("contract_id", "paid_on", "amount", "reference"), "contract", ids
        ):
            existing.add((contract_id, str(paid_on), _cents(amount), reference))
        mode = self.mode
        rows, seen = [], set()
        for number, data in parsed:
            found = contracts.get(data["contract"])
            if found is None:
                self.bad(number, "contract", _("no such contract (or not yours to see)"))
                continue
            contract_id, status = found
            amount = data["amount"]
            key = f"import:{data['external_id']}" if data.get("external_id") else None
            same = (contract_id, str(data["paid_on"]), _cents(amount), data.get("reference", ""))
            if key and (key in by_key or key in seen):
                self.count("duplicate")  # the key is unique: never stored twice
                continue
            if not key and mode != OnDuplicate.CREATE and (same in existing or same in seen):
                self.count("duplicate")
                continue
            if amount > 0 and status == ContractStatus.CANCELLED:
                self.bad(number, "amount", _("the contract is cancelled: refunds only"))
                continue
            if amount < 0 and self.received[contract_id] + amount < 0:
                self.bad(number, "amount", _("a refund cannot exceed what was received (%s)")
                         % f"{self.received[contract_id]:,.2f}")  # fmt: skip
                continue
            seen.add(key or same)
            self.received[contract_id] += amount
            self.touched.add(contract_id)
            method, reference, note = data["method"], data.get("reference", ""), \
                data.get("note", "")  # fmt: skip
            rows.append(self.stamp({
                "contract_id": contract_id, "plan_id": None, "amount": amount,
                "paid_on": data["paid_on"], "method": method, "reference": reference,
                "note": note, "idempotency_key": key,
                "fingerprint": sales_services.payment_fingerprint(
                    contract_id, amount, data["paid_on"], method, None, reference, note),
                "recorded_by_id": actor.pk,
            }))  # fmt: skip
        self.insert_new(Payment, rows)
