"""Importing activities (跟进记录): links by name among what the importer may see, the
rules of the activities service, duplicates, the follow-up state, undo."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loudou.activities.models import Activity
from loudou.activities.services import log_activity
from loudou.customers.models import Account, Contact
from loudou.customers.services import create_account, create_contact
from loudou.imports.models import JobStatus
from loudou.imports.services import create_job, run_job, undo
from loudou.leads.services import create_lead
from loudou.pipeline import services as pipeline_services
from loudou.rules.models import AccountFollowUp

from .test_imports_jobs import write

ZH = ["客户名称", "联系人", "商机名称", "线索名称", "跟进方式", "跟进目的", "跟进结果",
      "跟进时间", "时长", "跟进内容", "跟进人"]  # fmt: skip


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def crm(org):
    """An account of east_rep with a contact and an open deal; a lead; an account of the
    south team the east manager may not see."""
    pipeline_services.ensure_lost_reasons()
    pipeline = pipeline_services.create_pipeline_from_template("dcba")
    acme = create_account(actor=org.admin, name="上海恒信科技有限公司", owner=org.east_rep)
    create_contact(acme, actor=org.admin, name="王经理", mobile="13800000001")
    pipeline_services.create_opportunity(actor=org.east_rep, pipeline=pipeline, name="一期项目",
                                         account=acme, amount=Decimal(100000))  # fmt: skip
    lead, _dupes = create_lead(actor=org.admin, name="李四", mobile="13900000002",
                               owner=org.east_rep)  # fmt: skip
    create_account(actor=org.admin, name="南方公司", owner=org.south_rep)
    return {"acme": acme, "lead": lead}


def test_chinese_follow_up_export_links_by_name_and_derives_purpose(org, crm, tmp_path):
    """A Chinese 跟进记录 sheet is recognised; rows link to the account (name written
    differently), its contact and deal, or a lead by mobile; words become choices; the
    purpose follows from the links when not given (open deal → follow-up, lead →
    prospecting); a missing outcome is recorded as "other"; the follow-up state of the
    account is refreshed once."""
    path = write(tmp_path / "跟进记录.csv", ZH, [
        {"客户名称": "上海 恒信科技", "联系人": "王经理", "商机名称": "一期项目",
         "跟进方式": "电话", "跟进结果": "已接通", "跟进时间": "2024/3/5 14:30",
         "时长": "15分钟", "跟进内容": "确认需求", "跟进人": "east_rep"},
        {"线索名称": "139-0000-0002", "跟进方式": "微信", "跟进时间": "2024-03-06",
         "跟进内容": "加了微信", "跟进人": "east_rep"},
        {"客户名称": "上海恒信科技有限公司", "跟进方式": "拜访", "跟进目的": "回访",
         "跟进结果": "已拜访", "跟进时间": "2024-03-07 10:00", "跟进人": "east_rep2"},
    ])  # fmt: skip
    job = run_job(create_job(actor=org.east_mgr, kind="activities", file=path))
    assert job.status == JobStatus.DONE, job.errors
    assert job.layout == "zh" and job.counts["new"] == 3
    call, wechat, visit = Activity.objects.order_by("occurred_at")
    acme = crm["acme"]
    assert (call.kind, call.outcome, call.purpose, call.duration_minutes) == (
        "call",
        "reached",
        "follow_up",
        15,
    )
    assert call.account == acme and call.contact.name == "王经理"
    assert call.opportunity.name == "一期项目" and call.owner == org.east_rep
    assert timezone.localtime(call.occurred_at).strftime("%Y-%m-%d %H:%M") == "2024-03-05 14:30"
    assert (wechat.lead, wechat.kind, wechat.purpose, wechat.outcome) == (
        crm["lead"],
        "wechat",
        "prospecting",
        "other",
    )
    assert (visit.purpose, visit.owner, visit.created_by) == ("service", org.east_rep2,
                                                               org.east_mgr)  # fmt: skip
    state = AccountFollowUp.objects.get(account=acme)
    assert state.contact_count == 2 and state.last_contact_at == visit.occurred_at


def test_bad_rows_report_every_reason_and_refuse_the_job(org, crm, tmp_path, english):
    """Out of sight, unknown, future, wrong duration, unknown kind, no link at all: each
    is reported with its row and column, and nothing is written."""
    future = (timezone.localtime() + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
    path = write(tmp_path / "bad.csv", ZH, [
        {"客户名称": "南方公司", "跟进方式": "电话", "跟进时间": "2024-03-05"},
        {"客户名称": "上海恒信科技", "联系人": "不存在", "跟进方式": "飞鸽传书",
         "跟进时间": future, "时长": "2000"},
        {"跟进方式": "电话", "跟进时间": "2024-03-05"},
        {"客户名称": "上海恒信科技", "跟进方式": "电话", "跟进时间": ""},
    ])  # fmt: skip
    job = run_job(create_job(actor=org.east_mgr, kind="activities", file=path))
    assert job.status == JobStatus.REFUSED and Activity.objects.count() == 0
    reasons = {(e["row"], e["column"]): e["reason"] for e in job.errors}
    assert reasons[(2, "客户名称")].startswith("no such account")
    assert {(3, "跟进方式"), (3, "跟进时间"), (3, "时长"), (3, "联系人")} <= set(reasons)
    assert reasons[(4, "客户名称")].startswith("link the activity")
    assert reasons[(5, "跟进时间")] == "required"
    assert job.counts["invalid"] == 4


def test_duplicates_skip_and_undo_refuses_after_new_work(org, crm, tmp_path):
    """The same activity (owner, kind, moment, records) imported again is a duplicate;
    undo removes the imported activities — unless someone has since logged work that
    hangs on what the import created."""
    header = ["account", "kind", "outcome", "occurred_at", "owner", "notes"]
    rows = [
        {
            "account": "上海恒信科技有限公司",
            "kind": "call",
            "outcome": "reached",
            "occurred_at": "2024-03-05T06:30:00Z",
            "owner": "east_rep",
            "notes": "n",
        }
    ]
    path = write(tmp_path / "a.csv", header, rows)
    first = run_job(create_job(actor=org.admin, kind="activities", file=path))
    assert first.status == JobStatus.DONE and first.layout == "native"
    again = run_job(create_job(actor=org.admin, kind="activities", file=path))
    assert (again.counts["new"], again.counts["duplicate"]) == (0, 1)
    undo(first, actor=org.admin)
    assert Activity.objects.count() == 0
    # An account imported with its activities, then worked on by a rep: undo refuses.
    accounts = write(tmp_path / "acc.csv", ["name", "owner"],
                     [{"name": "新客户", "owner": "east_rep"}])  # fmt: skip
    job = run_job(create_job(actor=org.admin, kind="accounts", file=accounts, format="native"))
    new = Account.objects.get(name="新客户")
    log_activity(org.east_rep, account=new, kind="call", outcome="reached")
    from loudou.core.exceptions import Conflict

    with pytest.raises(Conflict):
        undo(job, actor=org.admin)
    assert Account.objects.filter(name="新客户").exists() and Activity.objects.count() == 1
    assert Contact.objects.count() == 1
