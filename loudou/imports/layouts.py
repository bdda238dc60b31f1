"""The file layouts Loudou recognises, as data: for each, which header means which field.

Headers are compared case-insensitively after :func:`reader.header_key` (NFKC, ``*``
stripped). A layout is recognised when at least one of its ``signature`` headers is in
the file; among those, the one naming the most columns wins (ties: the order below).
docs/import.md lists every column; keep the two in step.

Fields of each kind (what the importers understand):

- accounts: external_id, name, industry, phone, website, address, source, owner, notes
- contacts: account, account_external_id, name, title, mobile, phone, email, wechat, notes
- leads: name, company, title, mobile, phone, email, wechat, source, industry, owner, pool,
  notes
- opportunities: external_id, name, account, account_external_id, company, amount,
  currency, pipeline, stage, status, is_won, is_closed, probability, expected_close_date,
  owner, created_at, closed_at, won_at, lost_at, source, next_step, description,
  lost_reason
- history: opportunity (the opportunity's external id), stage, changed_at, amount,
  probability
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from .reader import header_key

KINDS = (
    "accounts",
    "contacts",
    "leads",
    "opportunities",
    "history",
    "activities",
    "orders",
    "payments",
)

FIELDS = {
    "accounts": ["external_id", "name", "industry", "phone", "website", "address", "source",
                 "owner", "notes"],
    "contacts": ["account", "account_external_id", "name", "title", "mobile", "phone",
                 "email", "wechat", "notes"],
    "leads": ["name", "company", "title", "mobile", "phone", "email", "wechat", "source",
              "industry", "owner", "pool", "notes"],
    "opportunities": ["external_id", "name", "account", "account_external_id", "company",
                      "amount", "currency", "pipeline", "stage", "status", "is_won",
                      "is_closed", "probability", "expected_close_date", "owner",
                      "created_at", "closed_at", "won_at", "lost_at", "source", "next_step",
                      "description", "lost_reason"],
    "history": ["opportunity", "stage", "changed_at", "amount", "probability"],
    "activities": ["kind", "purpose", "outcome", "occurred_at", "duration_minutes",
                   "gave_what", "notes", "owner", "lead", "account", "account_external_id",
                   "contact", "opportunity"],
    "orders": ["number", "kind", "title", "account", "opportunity", "amount", "currency",
               "sign_date", "start_date", "end_date", "status", "owner", "notes"],
    "payments": ["external_id", "contract", "amount", "paid_on", "method", "reference",
                 "note"],
}  # fmt: skip

REQUIRED = {
    "accounts": ["name"],
    "contacts": ["name"],
    "leads": ["name"],
    "opportunities": ["name", "stage"],
    "history": ["opportunity", "stage", "changed_at"],
    "activities": ["occurred_at"],
    "orders": ["title", "account", "amount", "sign_date"],
    "payments": ["contract", "amount", "paid_on"],
}

# HubSpot: 'Date entered "Qualified to buy (Sales Pipeline)"' and similar.
DATE_ENTERED = re.compile(r"^date entered\s*[\"'“”]?(.+?)[\"'“”]?$", re.IGNORECASE)
HUBSPOT_PIPELINE_SUFFIX = re.compile(r"\s*\([^()]*\)\s*$")


@dataclass(frozen=True)
class Layout:
    key: str
    label: str
    kind: str
    columns: dict[str, str]
    signature: frozenset[str] = field(default_factory=frozenset)
    date_entered: bool = False  # "Date entered <stage>" columns are stage history

    def field_of(self, key: str) -> str | None:
        return self.columns.get(key)


def _cols(**fields: str) -> dict[str, str]:
    """``field="Header A|Header B"`` → {"header a": field, "header b": field}."""
    out = {}
    for name, headers in fields.items():
        for header in headers.split("|"):
            out[header_key(header)] = name
    return out


def _layout(key, label, kind, signature, /, **fields) -> Layout:
    columns = _cols(**fields)
    return Layout(key, label, kind, columns, frozenset(header_key(s) for s in signature))


NATIVE = "native"
LAYOUTS: list[Layout] = [
    # --- Loudou's own layout (what "export all" writes) ---------------------------------
    _layout("native", _("Loudou"), "opportunities", ["expected_close_date", "furthest_stage"],
            external_id="id", name="name", account="account", amount="amount",
            currency="currency", pipeline="pipeline", stage="stage", status="status",
            probability="probability", expected_close_date="expected_close_date",
            owner="owner", created_at="created_at", closed_at="closed_at", source="source",
            next_step="next_step", description="description", lost_reason="lost_reason"),
    _layout("native", _("Loudou"), "history", ["opportunity_id", "changed_at"],
            opportunity="opportunity_id", stage="stage", changed_at="changed_at",
            amount="amount", probability="probability"),
    _layout("native", _("Loudou"), "accounts", ["name_key", "revisit_status", "account_id"],
            external_id="id|account_id", name="name", industry="industry", phone="phone",
            website="website", address="address", source="source", owner="owner",
            notes="notes"),
    _layout("native", _("Loudou"), "contacts", ["buying_role", "account_id"],
            account="account", account_external_id="account_id", name="name", title="title",
            mobile="mobile", phone="phone", email="email", wechat="wechat", notes="notes"),
    _layout("native", _("Loudou"), "leads", ["mobile", "company", "pool"],
            name="name", company="company", title="title", mobile="mobile", phone="phone",
            email="email", wechat="wechat", source="source", industry="industry",
            owner="owner", pool="pool", notes="notes"),
    # --- Chinese templates (悟空CRM, CordysCRM, 芋道 and home-made Excel sheets) ---------
    _layout("zh", _("Chinese template"), "opportunities", ["商机名称", "商机阶段", "商机金额"],
            external_id="商机编号|业务编码", name="商机名称", account="客户名称|客户",
            amount="商机金额|金额|预计金额", pipeline="商机状态组|销售流程|销售漏斗",
            stage="商机阶段|阶段|销售阶段", status="商机状态|结果",
            probability="可能性|赢率|赢单率",
            expected_close_date="预计成交日期|结束时间|预计签单日期",
            owner="负责人|销售|业务员", created_at="创建时间|创建日期",
            closed_at="成交日期|关闭时间", source="商机来源|来源", next_step="下一步",
            description="备注|备注信息|描述", lost_reason="输单原因|丢单原因"),
    _layout("zh", _("Chinese template"), "history", ["变更时间", "商机编号"],
            opportunity="商机编号|商机名称", stage="商机阶段|阶段", changed_at="变更时间|时间",
            amount="金额|商机金额"),
    _layout("zh", _("Chinese template"), "accounts", ["客户名称"],
            external_id="客户编号", name="客户名称", industry="客户行业|所属行业|行业",
            phone="电话|手机", website="网址|官网", address="详细地址|地址",
            source="客户来源|来源", owner="负责人", notes="备注|客户描述"),
    _layout("zh", _("Chinese template"), "contacts", ["联系人姓名", "姓名"],
            account="客户名称|所属客户", name="联系人姓名|姓名|联系人", title="职务|职位",
            mobile="手机|手机号", phone="电话", email="邮箱|电子邮箱", wechat="微信",
            notes="备注"),
    _layout("zh", _("Chinese template"), "leads", ["线索名称", "线索来源", "手机"],
            name="线索名称|姓名|联系人", company="公司名称|客户名称|公司", title="职务|职位",
            mobile="手机|手机号", phone="电话", email="邮箱", wechat="微信",
            source="线索来源|客户来源|来源", industry="客户行业|所属行业|行业",
            owner="负责人", notes="备注"),
    # --- activities, contracts and orders, payments (native and Chinese) -------------
    _layout("native", _("Loudou"), "activities", ["occurred_at", "duration_minutes"],
            kind="kind", purpose="purpose", outcome="outcome", occurred_at="occurred_at",
            duration_minutes="duration_minutes", gave_what="gave_what", notes="notes",
            owner="owner", lead="lead", account="account", account_external_id="account_id",
            contact="contact", opportunity="opportunity"),
    _layout("zh", _("Chinese template"), "activities", ["跟进时间", "跟进内容", "跟进方式"],
            kind="跟进方式|跟进类型|联系方式|沟通方式", purpose="跟进目的",
            outcome="跟进结果|沟通结果", occurred_at="跟进时间|拜访时间|沟通时间|联系时间",
            duration_minutes="时长|通话时长|时长(分钟)|持续时间", gave_what="提供资料|赠送",
            notes="跟进内容|沟通内容|内容|跟进记录|备注", owner="跟进人|负责人|创建人|销售",
            lead="线索名称|线索", account="客户名称|客户|所属客户", contact="联系人|联系人姓名",
            opportunity="商机名称|商机"),
    _layout("native", _("Loudou"), "orders", ["sign_date"],
            number="number", kind="kind", title="title", account="account",
            opportunity="opportunity", amount="amount", currency="currency",
            sign_date="sign_date", start_date="start_date", end_date="end_date",
            status="status", owner="owner", notes="notes"),
    _layout("zh", _("Chinese template"), "orders",
            ["合同编号", "合同名称", "合同金额", "签约日期", "订单编号"],
            number="合同编号|订单编号|编号", kind="类型|合同类型",
            title="合同名称|订单名称|名称|合同标题", account="客户名称|客户|签约客户",
            opportunity="商机名称|商机", amount="合同金额|订单金额|金额", currency="币种",
            sign_date="签约日期|签订日期|下单日期|签约时间|下单时间",
            start_date="开始日期|合同开始日期", end_date="结束日期|合同结束日期|到期日期",
            status="状态|合同状态|订单状态", owner="负责人|签约人|销售", notes="备注"),
    _layout("native", _("Loudou"), "payments", ["paid_on"],
            external_id="id|payment_id", contract="contract", amount="amount",
            paid_on="paid_on", method="method", reference="reference", note="note"),
    _layout("zh", _("Chinese template"), "payments", ["回款编号", "回款金额", "回款日期"],
            external_id="回款编号", contract="合同编号|订单编号|合同",
            amount="回款金额|金额|实收金额", paid_on="回款日期|回款时间|到账日期|收款日期",
            method="回款方式|付款方式|收款方式", reference="流水号|交易流水号|凭证号",
            note="备注"),
    # --- Salesforce -------------------------------------------------------------------
    _layout("salesforce", "Salesforce", "opportunities",
            ["StageName", "IsWon", "Opportunity Name", "Opportunity ID"],
            external_id="Id|Opportunity ID", name="Name|Opportunity Name",
            account="Account Name|Account.Name", account_external_id="AccountId|Account ID",
            amount="Amount", currency="CurrencyIsoCode|Opportunity Currency",
            stage="StageName|Stage", probability="Probability|Probability (%)",
            expected_close_date="CloseDate|Close Date", next_step="NextStep|Next Step",
            source="LeadSource|Lead Source", is_closed="IsClosed|Closed", is_won="IsWon|Won",
            owner="OwnerId|Owner ID|Opportunity Owner|Owner.Name",
            created_at="CreatedDate|Created Date", description="Description"),
    _layout("salesforce", "Salesforce", "history", ["OpportunityId", "PrevAmount"],
            opportunity="OpportunityId", stage="StageName", changed_at="CreatedDate",
            amount="Amount", probability="Probability"),
    _layout("salesforce", "Salesforce", "accounts", ["BillingCity", "AccountSource", "ParentId"],
            external_id="Id|Account ID", name="Name|Account Name", industry="Industry",
            phone="Phone", website="Website", address="BillingStreet|Billing Street",
            source="AccountSource|Account Source", owner="OwnerId|Account Owner",
            notes="Description"),
    # --- HubSpot ----------------------------------------------------------------------
    _layout("hubspot", "HubSpot", "opportunities", ["Deal Stage", "dealstage", "dealname"],
            external_id="Record ID|hs_object_id", name="Deal Name|dealname",
            stage="Deal Stage|dealstage", pipeline="Pipeline", amount="Amount",
            expected_close_date="Close Date|closedate", created_at="Create Date|createdate",
            owner="Deal owner|hubspot_owner_id", account="Associated Company",
            currency="Currency|deal_currency_code"),
    # --- Pipedrive --------------------------------------------------------------------
    _layout("pipedrive", "Pipedrive", "opportunities", ["Deal - Title", "Deal - Stage"],
            external_id="Deal - ID", name="Deal - Title", owner="Deal - Owner",
            amount="Deal - Value", currency="Deal - Currency",
            probability="Deal - Probability", account="Deal - Organization",
            pipeline="Deal - Pipeline", stage="Deal - Stage", status="Deal - Status",
            created_at="Deal - Deal created", won_at="Deal - Won time",
            lost_at="Deal - Lost time", lost_reason="Deal - Lost reason",
            expected_close_date="Deal - Expected close date"),
    # --- Zoho CRM ---------------------------------------------------------------------
    _layout("zoho", "Zoho CRM", "opportunities", ["Deal Owner", "Closing Date"],
            external_id="Record Id", owner="Deal Owner", name="Deal Name",
            account="Account Name", source="Lead Source", amount="Amount",
            expected_close_date="Closing Date", next_step="Next Step", stage="Stage",
            probability="Probability (%)", created_at="Created Time",
            description="Description"),
    # --- Odoo crm.lead (import-compatible technical names, and labels) -----------------
    _layout("odoo", "Odoo", "opportunities",
            ["stage_id", "expected_revenue", "date_deadline", "Expected Closing",
             "Salesperson"],
            external_id="id", name="name|Opportunity", account="partner_id|Customer",
            company="partner_name|Company Name", owner="user_id|Salesperson",
            stage="stage_id|Stage", amount="expected_revenue|Expected Revenue",
            probability="probability|Probability",
            expected_close_date="date_deadline|Expected Closing",
            closed_at="date_closed|Closed Date", created_at="create_date|Created on",
            lost_reason="lost_reason_id|Lost Reason", source="source_id"),
]  # fmt: skip

FORMATS = ["auto", "native", "salesforce", "hubspot", "pipedrive", "zoho", "odoo", "zh"]


def layout_name(key: str) -> str:
    """How a page names a job's layout: its label with the key (what ``--format`` takes),
    "Chinese template (zh)"; a mapping of the user's own is just "custom"."""
    label = next((layout.label for layout in LAYOUTS if layout.key == key), None)
    return f"{label} ({key})" if label is not None and str(label) != key else key


def layouts_for(kind: str) -> list[Layout]:
    return [layout for layout in LAYOUTS if layout.kind == kind]


def known_headers(kind: str) -> set[str]:
    """Every header any layout of ``kind`` names (to find the header row)."""
    keys = set()
    for layout in layouts_for(kind):
        keys |= set(layout.columns)
    return keys


def stage_of_date_entered(key: str) -> str | None:
    """The stage a HubSpot "Date entered <stage> (<pipeline>)" column is about."""
    match = DATE_ENTERED.match(key)
    if not match:
        return None
    name = HUBSPOT_PIPELINE_SUFFIX.sub("", match[1]).strip(" \"'“”")
    return name or None


@dataclass
class Mapping:
    """Which column holds which field, and which columns are HubSpot-style stage
    history ("Date entered <stage>": column index → stage name)."""

    layout: str
    columns: dict[int, str]
    date_entered: dict[int, str] = field(default_factory=dict)
    unknown: list[int] = field(default_factory=list)

    def missing(self, kind: str) -> list[str]:
        present = set(self.columns.values())
        return [f for f in REQUIRED[kind] if f not in present]


def detect(kind: str, keys: list[str], fmt: str = "auto", headers=None) -> Mapping:
    """The layout of a table with header ``keys`` and its column mapping."""
    candidates = layouts_for(kind)
    if fmt != "auto":
        candidates = [layout for layout in candidates if layout.key == fmt] or candidates
        chosen = candidates[0]
    else:
        present = set(keys)
        scored = [
            (sum(1 for k in keys if k in layout.columns), -i, layout)
            for i, layout in enumerate(candidates)
            if layout.signature & present
        ]
        chosen = max(scored, key=lambda t: t[:2])[2] if scored else None
    columns, entered, unknown = {}, {}, []
    taken = set()
    for index, key in enumerate(keys):
        if not key:
            continue  # an empty header (merged cells): nothing to map
        name = None
        if chosen is not None:
            name = chosen.columns.get(key)
        if name is None and chosen is None:
            name = _any_layout(kind, key)
        if name is not None and name not in taken:
            columns[index] = name
            taken.add(name)
            continue
        written = " ".join(str(headers[index]).split()) if headers else key
        stage = stage_of_date_entered(written) if kind == "opportunities" else None
        if stage:
            entered[index] = stage
        elif name is None:
            unknown.append(index)
    return Mapping(chosen.key if chosen else "custom", columns, entered, unknown)


def _any_layout(kind: str, key: str) -> str | None:
    for layout in layouts_for(kind):
        if key in layout.columns:
            return layout.columns[key]
    return None


def suggest(kind: str, header: str) -> str | None:
    """The field an unknown header most probably means (for the mapping screen)."""
    key = header_key(header)
    aliases = {}
    for layout in layouts_for(kind):
        aliases.update(layout.columns)
    for name in FIELDS[kind]:
        aliases.setdefault(name, name)
    close = difflib.get_close_matches(key, list(aliases), n=1, cutoff=0.6)
    return aliases[close[0]] if close else None
