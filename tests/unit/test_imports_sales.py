"""Importing contracts, out-of-funnel orders and payments: the sales rules (won deal,
threshold, refunds, cancelled contracts), numbers, idempotency keys, kept figures, undo."""

from datetime import date
from decimal import Decimal

import pytest

from loudou.customers.services import create_account
from loudou.imports.models import JobStatus
from loudou.imports.services import create_job, run_job, undo
from loudou.pipeline import services as pipeline_services
from loudou.sales.models import Contract, Payment
from loudou.sales.services import create_order, record_payment

from .test_imports_jobs import write

ORDERS = ["合同编号", "合同名称", "客户名称", "商机名称", "合同金额", "签约日期", "结束日期",
          "合同状态", "负责人", "类型"]  # fmt: skip
PAYMENTS = ["回款编号", "合同编号", "回款金额", "回款日期", "回款方式", "流水号", "备注"]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def deals(org):
    """An account with a won and an open deal (east_rep)."""
    pipeline_services.ensure_lost_reasons()
    pipeline = pipeline_services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    acme = create_account(actor=org.admin, name="恒信科技有限公司", owner=org.east_rep)
    won = pipeline_services.create_opportunity(actor=org.east_rep, pipeline=pipeline,
                                               name="一期", account=acme,
                                               amount=Decimal(300000))  # fmt: skip
    pipeline_services.win_opportunity(won, actor=org.east_rep)
    pipeline_services.create_opportunity(actor=org.east_rep, pipeline=pipeline, name="二期",
                                         account=acme, amount=Decimal(50000))  # fmt: skip
    return acme


def test_contracts_and_orders_follow_the_sales_rules(org, deals, tmp_path, settings, english):
    """A row naming a won deal is a contract (its owner by default); one without is an
    order below the threshold; a contract of an open deal, a contract without a deal and
    an order at the threshold are refused with reasons; the file's number is kept and a
    missing one is given as the services number."""
    settings.LOUDOU_OUT_OF_FUNNEL_THRESHOLD = 20000
    good = write(tmp_path / "合同.csv", ORDERS, [
        {"合同编号": "HT-X-1", "合同名称": "一期合同", "客户名称": "恒信科技", "商机名称": "一期",
         "合同金额": "¥300,000", "签约日期": "2024/3/1", "结束日期": "2025-02-28",
         "合同状态": "执行中"},
        {"合同名称": "配件", "客户名称": "恒信科技", "合同金额": "1.5万", "签约日期": "2024-04-02",
         "负责人": "east_rep2"},
    ])  # fmt: skip
    job = run_job(create_job(actor=org.east_mgr, kind="orders", file=good))
    assert job.status == JobStatus.DONE, job.errors
    assert job.layout == "zh" and job.counts["new"] == 2
    contract = Contract.objects.get(number="HT-X-1")
    assert (contract.kind, contract.opportunity.name, contract.owner, contract.amount) == (
        "contract",
        "一期",
        org.east_rep,
        Decimal("300000.00"),
    )
    order = Contract.objects.get(title="配件")
    assert (order.kind, order.number, order.owner, order.amount) == (
        "order",
        "DD-2024-00001",
        org.east_rep2,
        Decimal("15000.00"),
    )
    bad = write(tmp_path / "bad.csv", ORDERS, [
        {"合同名称": "二期合同", "客户名称": "恒信科技", "商机名称": "二期", "合同金额": "50000",
         "签约日期": "2024-05-01"},
        {"合同名称": "无商机", "客户名称": "恒信科技", "类型": "合同", "合同金额": "5000",
         "签约日期": "2024-05-01"},
        {"合同名称": "大单", "客户名称": "恒信科技", "合同金额": "20000", "签约日期": "2024-05-01"},
        {"合同名称": "", "客户名称": "不存在", "合同金额": "-1", "签约日期": "明天"},
    ])  # fmt: skip
    job = run_job(create_job(actor=org.east_mgr, kind="orders", file=bad))
    assert job.status == JobStatus.REFUSED and Contract.objects.count() == 2
    reasons = {(e["row"], e["column"]): e["reason"] for e in job.errors}
    assert reasons[(2, "商机名称")] == "the opportunity is not won"
    assert reasons[(3, "商机名称")].startswith("a contract belongs to a won opportunity")
    assert reasons[(4, "合同金额")].startswith("an order is above zero and below 20,000.00")
    assert {(5, "合同名称"), (5, "合同金额"), (5, "签约日期")} <= set(reasons)
    again = run_job(create_job(actor=org.east_mgr, kind="orders", file=good))
    assert (again.counts["new"], again.counts["duplicate"]) == (0, 2)


def test_payments_refunds_keys_and_kept_figures(org, deals, tmp_path, english):
    """Payments find their contract by number; the contract's received figure is
    recomputed; a refund beyond what was received and money into a cancelled contract are
    refused; a payment id becomes the idempotency key, so importing it again stores
    nothing; undo removes the payments and restores the figures."""
    order = create_order(actor=org.admin, account=deals, title="小单", sign_date=date(2024, 1, 5),
                         amount=Decimal(10000))  # fmt: skip
    record_payment(order, actor=org.admin, amount=Decimal(1000), paid_on=date(2024, 1, 10))
    cancelled = create_order(actor=org.admin, account=deals, title="作废单",
                             sign_date=date(2024, 1, 6), amount=Decimal(500))  # fmt: skip
    Contract.objects.filter(pk=cancelled.pk).update(status="cancelled")
    path = write(tmp_path / "回款.csv", PAYMENTS, [
        {"回款编号": "P1", "合同编号": order.number, "回款金额": "4,000", "回款日期": "2024-02-01",
         "回款方式": "支付宝", "流水号": "2024A"},
        {"回款编号": "P2", "合同编号": order.number, "回款金额": "-500", "回款日期": "2024-02-03",
         "回款方式": "银行转账"},
    ])  # fmt: skip
    job = run_job(create_job(actor=org.admin, kind="payments", file=path))
    assert job.status == JobStatus.DONE, job.errors
    order.refresh_from_db()
    assert order.received == Decimal("4500.00")
    first = Payment.objects.get(idempotency_key="import:P1")
    assert (first.method, first.reference, first.recorded_by) == ("alipay", "2024A", org.admin)
    again = run_job(create_job(actor=org.admin, kind="payments", file=path,
                               on_duplicate="create"))  # fmt: skip
    assert (again.counts["new"], again.counts["duplicate"]) == (0, 2)
    bad = write(tmp_path / "bad.csv", PAYMENTS, [
        {"合同编号": order.number, "回款金额": "-9000", "回款日期": "2024-03-01"},
        {"合同编号": cancelled.number, "回款金额": "100", "回款日期": "2024-03-01"},
        {"合同编号": "HT-NONE", "回款金额": "100", "回款日期": "2024-03-01"},
        {"合同编号": order.number, "回款金额": "0", "回款日期": "2024-03-01"},
    ])  # fmt: skip
    refused = run_job(create_job(actor=org.admin, kind="payments", file=bad))
    reasons = {(e["row"], e["column"]): e["reason"] for e in refused.errors}
    assert refused.status == JobStatus.REFUSED and refused.counts["invalid"] == 4
    assert reasons[(2, "回款金额")].startswith("a refund cannot exceed what was received")
    assert reasons[(3, "回款金额")] == "the contract is cancelled: refunds only"
    assert reasons[(4, "合同编号")].startswith("no such contract")
    undo(job, actor=org.admin)
    order.refresh_from_db()
    assert order.received == Decimal("1000.00") and Payment.objects.count() == 1
