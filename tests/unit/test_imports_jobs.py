"""Import jobs end to end: layouts of other CRMs, stage history, modes, duplicates, undo
and permissions. Fixture files are written here from the documented header lists of
each CRM (never copied from third parties)."""

import csv
from datetime import datetime
from decimal import Decimal

import pytest

from loudou.core.exceptions import Conflict, NotPermitted
from loudou.customers.models import Account, Contact
from loudou.imports.models import ImportJob, JobStatus
from loudou.imports.services import create_job, run_job, undo
from loudou.leads.models import Lead, PoolEvent
from loudou.org.models import User
from loudou.pipeline.models import Opportunity, Pipeline, StageChange

SF_OPPORTUNITY = [
    "Id", "IsDeleted", "AccountId", "Name", "Description", "StageName", "Amount",
    "Probability", "ExpectedRevenue", "CloseDate", "Type", "NextStep", "LeadSource",
    "IsClosed", "IsWon", "ForecastCategory", "ForecastCategoryName", "CampaignId",
    "HasOpportunityLineItem", "Pricebook2Id", "OwnerId", "CreatedDate", "CreatedById",
    "LastModifiedDate", "LastModifiedById", "SystemModstamp", "LastActivityDate",
    "FiscalQuarter", "FiscalYear", "Fiscal", "LastStageChangeDate", "ContactId",
    "CurrencyIsoCode",
]  # fmt: skip
SF_HISTORY = [
    "Id", "OpportunityId", "CreatedById", "CreatedDate", "StageName", "Amount",
    "ExpectedRevenue", "CloseDate", "Probability", "ForecastCategory", "PrevAmount",
    "PrevCloseDate", "SystemModstamp", "IsDeleted",
]  # fmt: skip
SF_ACCOUNT = ["Id", "Name", "Industry", "Phone", "Website", "BillingCity", "AccountSource",
              "OwnerId"]  # fmt: skip
HUBSPOT = ["Record ID", "Deal Name", "Deal Stage", "Pipeline", "Amount", "Close Date",
           "Create Date", "Deal owner", "Deal Type", "Associated Company",
           "Last Activity Date"]  # fmt: skip
PIPEDRIVE = [
    "Deal - ID", "Deal - Title", "Deal - Creator", "Deal - Owner", "Deal - Value",
    "Deal - Currency", "Deal - Weighted value", "Deal - Probability", "Deal - Organization",
    "Deal - Pipeline", "Deal - Contact person", "Deal - Stage", "Deal - Label",
    "Deal - Status", "Deal - Deal created", "Deal - Update time", "Deal - Last stage change",
    "Deal - Next activity date", "Deal - Last activity date", "Deal - Won time",
    "Deal - Lost time", "Deal - Lost reason", "Deal - Expected close date",
]  # fmt: skip
ZOHO = ["Record Id", "Deal Owner", "Deal Name", "Account Name", "Type", "Lead Source",
        "Campaign Source", "Contact Name", "Amount", "Closing Date", "Next Step", "Stage",
        "Probability (%)", "Expected Revenue", "Created By", "Modified By", "Created Time",
        "Modified Time", "Description"]  # fmt: skip
ODOO_TECH = ["id", "name", "partner_id", "partner_name", "contact_name", "email_from",
             "phone", "user_id", "team_id", "stage_id", "expected_revenue", "probability",
             "date_deadline", "date_closed", "date_last_stage_update", "create_date",
             "lost_reason_id", "tag_ids", "type", "source_id", "medium_id",
             "campaign_id"]  # fmt: skip
ODOO_LABELS = ["Opportunity", "Customer", "Company Name", "Contact Name", "Email", "Phone",
               "Salesperson", "Sales Team", "Stage", "Expected Revenue", "Probability",
               "Expected Closing", "Closed Date", "Last Stage Update", "Created on",
               "Lost Reason", "Tags", "Type"]  # fmt: skip
ZH_OPPORTUNITY = ["商机名称", "客户名称", "商机金额", "预计成交日期", "备注", "商机状态组",
                  "商机阶段", "最后跟进时间", "负责人", "相关团队", "所属部门", "更新时间",
                  "创建时间", "创建人"]  # fmt: skip


def write(path, header, rows, encoding="utf-8"):
    """A CSV with ``header``; each row is a dict of the columns it fills."""
    with open(path, "w", newline="", encoding=encoding) as handle:
        out = csv.writer(handle)
        out.writerow(header)
        for row in rows:
            out.writerow([row.get(h, "") for h in header])
    return path


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def run(actor, kind, path, **options):
    job = create_job(actor=actor, kind=kind, file=path, **options)
    return run_job(job)


def sf_event(opp, day, stage, **more):
    """One OpportunityHistory row, made at 08:00 UTC on ``day``."""
    return {"OpportunityId": opp, "CreatedDate": f"{day}T08:00:00.000Z", "StageName": stage,
            **more}  # fmt: skip


def history_of(opp):
    return [
        (c.kind, c.from_stage and c.from_stage.name, c.to_stage.name, c.stay_seconds)
        for c in opp.stage_changes.order_by("changed_at", "pk").select_related(
            "from_stage", "to_stage"
        )
    ]


def test_salesforce_opportunities_with_history_and_accounts(org, tmp_path):
    """A Salesforce export (Opportunity + OpportunityHistory + Account, API names): the
    pipeline is created with its stages ordered by probability, Closed Won/Lost become
    the terminals, accounts are found by AccountId, and the history is rebuilt in time
    order with the stay in each stage."""
    accounts = write(tmp_path / "Account.csv", SF_ACCOUNT, [
        {"Id": "001A", "Name": "Acme Co., Ltd.", "Industry": "Manufacturing",
         "OwnerId": "east_rep"},
        {"Id": "001B", "Name": "北京星河有限公司", "OwnerId": "east_rep2"},
    ])  # fmt: skip
    opps = write(tmp_path / "Opportunity.csv", SF_OPPORTUNITY, [
        {"Id": "006A", "AccountId": "001A", "Name": "Big deal", "StageName": "Closed Won",
         "Amount": "1200000", "Probability": "100", "CloseDate": "2024-03-01", "IsClosed": "true",
         "IsWon": "true", "OwnerId": "east_rep", "CreatedDate": "2024-01-01T08:00:00.000Z"},
        {"Id": "006B", "AccountId": "001B", "Name": "Lost one", "StageName": "Closed Lost",
         "Amount": "5000", "Probability": "0", "CloseDate": "2024-02-20", "IsClosed": "true",
         "IsWon": "false", "OwnerId": "east_rep2", "CreatedDate": "2024-01-05T08:00:00.000Z"},
        {"Id": "006C", "AccountId": "001B", "Name": "Open one", "StageName": "Qualification",
         "Amount": "700", "Probability": "10", "CloseDate": "2024-06-30", "IsClosed": "false",
         "IsWon": "false", "OwnerId": "east_rep2", "CreatedDate": "2024-02-01T08:00:00.000Z"},
    ])  # fmt: skip
    history = write(tmp_path / "OpportunityHistory.csv", SF_HISTORY, [
        sf_event("006A", "2024-01-01", "Prospecting", Probability="10"),
        sf_event("006A", "2024-01-11", "Proposal/Price Quote", Probability="75"),
        sf_event("006A", "2024-01-21", "Proposal/Price Quote", Amount="1200000"),
        sf_event("006A", "2024-03-01", "Closed Won", Probability="100"),
        sf_event("006B", "2024-01-05", "Prospecting", Probability="10"),
        sf_event("006B", "2024-01-15", "Needs Analysis", Probability="20"),
        sf_event("006B", "2024-02-20", "Closed Lost", Probability="0"),
    ])  # fmt: skip
    job = create_job(actor=org.admin, kind="opportunities", file=opps, history=history,
                     accounts=accounts)  # fmt: skip
    job = run_job(job)
    assert job.status == JobStatus.DONE, job.errors
    assert job.layout == "salesforce"
    assert job.counts["new"] == 3 and job.counts["accounts_new"] == 2
    pipeline = Pipeline.objects.get(name="Salesforce")
    assert [(s.name, s.kind) for s in pipeline.stages.order_by("position")] == [
        ("Prospecting", "open"), ("Qualification", "open"), ("Needs Analysis", "open"),
        ("Proposal/Price Quote", "open"), ("Closed Won", "won"), ("Closed Lost", "lost"),
    ]  # fmt: skip
    big = Opportunity.objects.get(name="Big deal")
    assert big.status == "won" and big.account.name == "Acme Co., Ltd."
    assert big.owner == org.east_rep
    assert big.furthest_stage.name == "Proposal/Price Quote"
    assert history_of(big) == [
        ("created", None, "Prospecting", None),
        ("moved", "Prospecting", "Proposal/Price Quote", 10 * 86400),
        ("won", "Proposal/Price Quote", "Closed Won", 50 * 86400),
    ]
    lost = Opportunity.objects.get(name="Lost one")
    assert lost.status == "lost" and lost.stage.name == "Needs Analysis"
    assert lost.lost_reason is not None
    assert history_of(lost)[-1] == ("lost", "Needs Analysis", "Closed Lost", 36 * 86400)
    open_one = Opportunity.objects.get(name="Open one")
    assert open_one.status == "open" and open_one.stage.name == "Qualification"
    assert history_of(open_one) == [("created", None, "Qualification", None)]


def test_hubspot_date_entered_columns_are_history(org, tmp_path):
    """HubSpot's "Date entered <stage> (<pipeline>)" columns become the stage history."""
    header = HUBSPOT + ['Date entered "Appointment Scheduled (Sales Pipeline)"',
                        'Date entered "Qualified To Buy (Sales Pipeline)"',
                        'Date entered "Closed Won (Sales Pipeline)"']  # fmt: skip
    path = write(tmp_path / "hubspot.csv", header, [
        {"Record ID": "1", "Deal Name": "HS deal", "Deal Stage": "Closed Won",
         "Pipeline": "Sales Pipeline", "Amount": "1,000", "Create Date": "2024-01-01 09:00",
         "Associated Company": "Hub Co", header[-3]: "2024-01-01 09:00",
         header[-2]: "2024-01-03 09:00", header[-1]: "2024-01-10 09:00"},
    ])  # fmt: skip
    job = run(org.admin, "opportunities", path)
    assert job.status == JobStatus.DONE, job.errors
    assert job.layout == "hubspot"
    deal = Opportunity.objects.get(name="HS deal")
    assert deal.pipeline.name == "Sales Pipeline"
    assert history_of(deal) == [
        ("created", None, "Appointment Scheduled", None),
        ("moved", "Appointment Scheduled", "Qualified To Buy", 2 * 86400),
        ("won", "Qualified To Buy", "Closed Won", 7 * 86400),
    ]


@pytest.mark.parametrize(
    ("header", "row", "layout"),
    [
        (
            PIPEDRIVE,
            {
                "Deal - ID": "9",
                "Deal - Title": "PD deal",
                "Deal - Value": "¥2,000",
                "Deal - Organization": "PD Org",
                "Deal - Stage": "Negotiations started",
                "Deal - Status": "lost",
                "Deal - Lost time": "2024-02-01 10:00:00",
                "Deal - Deal created": "2024-01-01 10:00:00",
                "Deal - Lost reason": "Too expensive",
            },
            "pipedrive",
        ),
        (
            ZOHO,
            {
                "Record Id": "zcrm_1",
                "Deal Name": "PD deal",
                "Account Name": "PD Org",
                "Amount": "2000",
                "Stage": "Closed Lost",
                "Closing Date": "02/01/2024",
                "Probability (%)": "0",
                "Created Time": "01/01/2024 10:00 AM",
            },
            "zoho",
        ),
        (
            ODOO_TECH,
            {
                "id": "__export__.crm_lead_1",
                "name": "PD deal",
                "partner_id": "PD Org",
                "stage_id": "Qualified",
                "expected_revenue": "2000",
                "probability": "20",
                "create_date": "2024-01-01 10:00:00",
            },
            "odoo",
        ),
        (
            ODOO_LABELS,
            {
                "Opportunity": "PD deal",
                "Customer": "PD Org",
                "Stage": "New",
                "Expected Revenue": "2,000.00",
                "Expected Closing": "2024-05-01",
                "Created on": "2024-01-01 10:00:00",
            },
            "odoo",
        ),
        (
            ZH_OPPORTUNITY,
            {
                "商机名称": "PD deal",
                "客户名称": "PD Org",
                "商机金额": "￥2,000",
                "预计成交日期": "2024年5月1日",
                "商机阶段": "验证客户",
                "创建时间": "2024/1/1 10:00",
            },
            "zh",
        ),
    ],
)
def test_known_layouts_are_recognised(org, tmp_path, header, row, layout):
    """Pipedrive, Zoho, Odoo (both header styles) and Chinese exports are recognised by
    their headers alone and import one opportunity with its amount and account."""
    job = run(org.admin, "opportunities", write(tmp_path / "x.csv", header, [row]))
    assert job.status == JobStatus.DONE, (job.errors, job.message)
    assert job.layout == layout
    deal = Opportunity.objects.get(name="PD deal")
    assert deal.amount == Decimal("2000.00") and deal.account.name == "PD Org"
    if layout == "pipedrive":  # lost from the stage it was in, with the reason as a note
        assert deal.status == "lost" and deal.stage.name == "Negotiations started"
        assert deal.lost_note == "Too expensive"


def test_every_bad_cell_of_a_row_is_reported_and_nothing_written(org, tmp_path):
    """All-or-nothing: a row whose every cell is bad refuses the job; each bad cell is
    reported with its Excel row number and header; nothing at all is written."""
    header = ["商机名称", "客户名称", "商机金额", "预计成交日期", "商机阶段", "负责人", "创建时间",
              "可能性"]  # fmt: skip
    path = write(tmp_path / "bad.csv", header, [
        {"商机名称": "好商机", "客户名称": "好客户", "商机金额": "100", "商机阶段": "验证客户"},
        {"商机名称": "", "客户名称": "", "商机金额": "一百", "预计成交日期": "2024-13-45",
         "商机阶段": "", "负责人": "nobody-here", "创建时间": "yesterday", "可能性": "150%"},
    ])  # fmt: skip
    before = (Account.objects.count(), Pipeline.objects.count(), User.objects.count())
    job = run(org.east_mgr, "opportunities", path)
    assert job.status == JobStatus.REFUSED
    bad = sorted((e["row"], e["column"]) for e in job.errors)
    assert bad == sorted((3, c) for c in header)  # every column of row 3, each once
    assert job.counts["invalid"] == 1
    assert Opportunity.objects.count() == 0
    assert (Account.objects.count(), Pipeline.objects.count(), User.objects.count()) == before
    assert job.created_objects == {}


def test_skip_bad_rows_commits_the_good_ones_and_records_where_it_stopped(org, tmp_path, english):
    """Skip-bad-rows: the good rows are written, the bad one reported, the job knows the
    last committed row; undo then removes exactly what it created."""
    header = ["商机名称", "客户名称", "商机金额", "商机阶段"]
    path = write(tmp_path / "mixed.csv", header, [
        {"商机名称": "一", "客户名称": "甲公司", "商机金额": "1", "商机阶段": "初步接洽"},
        {"商机名称": "二", "客户名称": "乙公司", "商机金额": "bad", "商机阶段": "初步接洽"},
        {"商机名称": "三", "客户名称": "甲公司", "商机金额": "3", "商机阶段": "初步接洽"},
    ])  # fmt: skip
    existing = Account.objects.create(name="丙公司", name_key="丙")
    job = run(org.admin, "opportunities", path, skip_bad_rows=True)
    assert job.status == JobStatus.DONE
    assert job.counts["new"] == 2 and job.counts["invalid"] == 1
    assert job.errors == [{"file": "opportunities", "row": 3, "column": "商机金额",
                           "reason": "not a number"}]  # fmt: skip
    assert job.resume_after_row == 4
    assert sorted(Opportunity.objects.values_list("name", flat=True)) == ["一", "三"]
    assert StageChange.objects.count() == 2
    undo(job, actor=org.admin)
    assert Opportunity.objects.count() == 0 and StageChange.objects.count() == 0
    assert list(Account.objects.all()) == [existing]
    assert not Pipeline.objects.exists()
    assert ImportJob.objects.get(pk=job.pk).status == JobStatus.UNDONE


def test_dry_run_counts_without_writing(org, tmp_path):
    """A dry run reports new / duplicate / invalid exactly and writes nothing."""
    Lead.objects.create(name="已有", mobile="13800000001", mobile_key="13800000001")
    header = ["线索名称", "手机", "邮箱", "线索来源"]
    path = write(tmp_path / "leads.csv", header, [
        {"线索名称": "甲", "手机": "+86 138-0000-0001"},
        {"线索名称": "乙", "手机": "13800000002", "线索来源": "展会"},
        {"线索名称": "丙", "手机": "13800000002"},
        {"线索名称": "丁", "邮箱": "not-an-email"},
    ])  # fmt: skip
    job = create_job(actor=org.admin, kind="leads", file=path, skip_bad_rows=True, dry_run=True)
    job = run_job(job)
    assert job.status == JobStatus.CHECKED
    assert {k: job.counts[k] for k in ("new", "duplicate", "invalid")} == {
        "new": 1, "duplicate": 2, "invalid": 1}  # fmt: skip
    assert Lead.objects.count() == 1 and not PoolEvent.objects.exists()


@pytest.mark.parametrize("mode", ["skip", "update", "create"])
def test_duplicate_modes_for_accounts_and_undo_restores(org, tmp_path, mode):
    """A duplicate (same normalised company name) is skipped, updated or created again,
    as chosen; undo restores the updated account's values and removes created ones."""
    acme = Account.objects.create(name="ACME Co., Ltd.", name_key="acme", industry="old",
                                  owner=org.east_rep)  # fmt: skip
    path = write(tmp_path / "a.csv", ["客户名称", "客户行业"], [
        {"客户名称": "acme inc", "客户行业": "new"},
        {"客户名称": "新客户有限公司", "客户行业": "x"},
    ])  # fmt: skip
    job = run(org.admin, "accounts", path, on_duplicate=mode)
    assert job.status == JobStatus.DONE, job.errors
    acme.refresh_from_db()
    expected = {"skip": (1, 0, 1, "old", 2), "update": (1, 1, 0, "new", 2),
                "create": (2, 0, 0, "old", 3)}[mode]  # fmt: skip
    counts = (job.counts["new"], job.counts["updated"], job.counts["duplicate"])
    assert (*counts, acme.industry, Account.objects.count()) == expected
    undo(job, actor=org.admin)
    acme.refresh_from_db()
    assert acme.industry == "old" and acme.version == 1
    assert list(Account.objects.all()) == [acme]


def test_leads_straight_into_a_pool_with_pool_events(org, tmp_path):
    """Leads can go straight into a public pool: unowned, with the pool's CREATE event
    the services would write."""
    from loudou.leads.models import PublicPool

    pool = PublicPool.objects.create(name="公海")
    path = write(tmp_path / "l.csv", ["线索名称", "手机", "客户来源"], [
        {"线索名称": "甲", "手机": "13900000001", "客户来源": "网站"}])  # fmt: skip
    job = run(org.admin, "leads", path, pool=pool.pk)
    assert job.status == JobStatus.DONE, job.errors
    lead = Lead.objects.get()
    assert (lead.owner, lead.pool, lead.source, lead.mobile_key) == (
        None, pool, "website", "13900000001")  # fmt: skip
    assert PoolEvent.objects.get().kind == "create"


def test_contacts_attach_to_accounts_by_name(org, tmp_path):
    """Contacts find their account by normalised name; an unknown account is a bad row."""
    acme = Account.objects.create(name="上海恒信科技有限公司", name_key="上海恒信科技")
    path = write(tmp_path / "c.csv", ["姓名", "客户名称", "手机", "邮箱"], [
        {"姓名": "王五", "客户名称": "上海 恒信 科技", "手机": "13700000000"},
        {"姓名": "赵六", "客户名称": "不存在公司"},
    ])  # fmt: skip
    job = run(org.admin, "contacts", path, skip_bad_rows=True)
    assert Contact.objects.get().account == acme
    assert job.errors[0]["row"] == 3 and job.errors[0]["column"] == "客户名称"


def test_reps_may_not_import(org, tmp_path):
    """Only managers and admins import."""
    path = write(tmp_path / "a.csv", ["客户名称"], [{"客户名称": "X"}])
    with pytest.raises(NotPermitted):
        create_job(actor=org.east_rep, kind="accounts", file=path)
    assert not ImportJob.objects.exists()


def test_a_manager_may_only_give_records_to_assignable_users(org, tmp_path):
    """A manager's file naming a user outside their team is refused for that row, and
    an unknown name is not turned into a placeholder user (only admins may)."""
    path = write(tmp_path / "a.csv", ["客户名称", "负责人"], [
        {"客户名称": "X", "负责人": "east_rep"},
        {"客户名称": "Y", "负责人": "south_rep"},
        {"客户名称": "Z", "负责人": "Stranger"},
    ])  # fmt: skip
    job = run(org.east_mgr, "accounts", path, skip_bad_rows=True)
    assert Account.objects.get().owner == org.east_rep
    assert [e["row"] for e in job.errors] == [3, 4]
    assert not User.objects.filter(username__startswith="imported-").exists()


def test_admin_unknown_owners_become_inactive_placeholders_or_follow_the_map(org, tmp_path):
    """For an admin, an unknown owner becomes one inactive placeholder user; an
    owner-map entry sends a name to an existing user instead."""
    path = write(tmp_path / "a.csv", ["客户名称", "负责人"], [
        {"客户名称": "X", "负责人": "Old Rep"}, {"客户名称": "Y", "负责人": "Old Rep"},
        {"客户名称": "Z", "负责人": "小王"},
    ])  # fmt: skip
    job = run(org.admin, "accounts", path, owner_map={"小王": "east_rep"})
    placeholder = User.objects.get(username__startswith="imported-")
    assert not placeholder.is_active and placeholder.name == "Old Rep"
    assert Account.objects.get(name="Z").owner == org.east_rep
    assert Account.objects.filter(owner=placeholder).count() == 2
    undo(job, actor=org.admin)
    assert not User.objects.filter(pk=placeholder.pk).exists()


def test_undo_refuses_when_others_built_on_imported_records(org, tmp_path):
    """Undo deletes nothing when someone has since added an opportunity to an imported
    account: the whole undo is refused."""
    from loudou.pipeline.services import create_opportunity, create_pipeline_from_template

    job = run(org.admin, "accounts", write(tmp_path / "a.csv", ["客户名称"], [{"客户名称": "X"}]))
    pipeline = create_pipeline_from_template("classic")
    create_opportunity(actor=org.admin, pipeline=pipeline, name="later",
                       account=Account.objects.get(), when=datetime.now().astimezone())  # fmt: skip
    with pytest.raises(Conflict):
        undo(job, actor=org.admin)
    assert Account.objects.count() == 1
    assert ImportJob.objects.get(pk=job.pk).status == JobStatus.DONE


def test_unreadable_file_fails_the_job_with_a_reason(org, tmp_path):
    """A damaged workbook fails the job with a readable message, writing nothing."""
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    job = run(org.admin, "accounts", path)
    assert job.status == JobStatus.FAILED and job.message
    assert not Account.objects.exists()


def test_an_unexpected_error_fails_the_job_instead_of_leaving_it_running(
    org, tmp_path, monkeypatch
):
    """A bug or database refusal mid-run marks the job failed (never stuck "running")
    and, all-or-nothing, leaves nothing written."""
    from loudou.imports import importers

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(importers.bulk, "insert_rows", explode)
    job = run(org.admin, "accounts", write(tmp_path / "a.csv", ["客户名称"], [{"客户名称": "X"}]))
    assert job.status == JobStatus.FAILED and "disk on fire" in job.message
    assert not Account.objects.exists()


@pytest.mark.parametrize(
    "language, reason, pipeline",
    [("en", "not a number", "Imported opportunities"), ("zh-hans", "不是数字", "导入的商机")],
)
def test_a_queued_import_speaks_the_language_it_was_queued_in(
    org, tmp_path, language, reason, pipeline
):
    """The worker, which has no request, runs a queued job in the language of whoever
    queued it (the page's or the API caller's), not in its own: the reason given for a
    bad row and the name of the pipeline the import creates."""
    from django.utils import translation

    from loudou.imports.tasks import enqueue, run_import

    header = ["商机名称", "客户名称", "商机金额", "商机阶段"]
    path = write(tmp_path / "deals.csv", header, [
        {"商机名称": "华东仓储", "客户名称": "远航物流", "商机金额": "1200", "商机阶段": "谈判"},
        {"商机名称": "华南门店", "客户名称": "明珠百货", "商机金额": "abc", "商机阶段": "谈判"},
    ])  # fmt: skip
    job = create_job(actor=org.admin, kind="opportunities", file=path, skip_bad_rows=True)
    with translation.override(language):
        enqueue(job, dry_run=False)
    with translation.override("zh-hans" if language == "en" else "en"):  # the worker's own
        run_import.call(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    assert [(e["row"], e["reason"]) for e in job.errors] == [(3, reason)]
    assert list(Opportunity.objects.values_list("pipeline__name", flat=True)) == [pipeline]
