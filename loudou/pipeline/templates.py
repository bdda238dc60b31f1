"""The four pipeline templates of DOMAIN §3, in Chinese and English.

Each stage: (code, 中文, English, default win rate %, stale after days, guidance, checklist).
Users pick a template per pipeline and edit the stages afterwards.
"""

from django.utils.translation import gettext_lazy as _

WON = ("won", "成交", "Won")
LOST = ("lost", "输单", "Lost")

TEMPLATES = {
    "classic": {
        "name": ("经典销售漏斗", "Classic funnel"),
        "label": _("Classic: interest → inquiry → proposal → won"),
        "stages": [
            ("interest", "感兴趣", "Interest", 10, 14, "确认客户的兴趣点和需求背景。",
             ["已确认客户需求", "已记录联系人"]),
            ("inquiry", "询价", "Inquiry", 30, 14, "明确数量、预算和时间，准备报价。",
             ["已了解预算", "已了解采购时间"]),
            ("proposal", "提方案", "Proposal", 60, 21, "提交方案和报价，约定决策时间。",
             ["方案已发送", "已约定决策时间"]),
        ],
    },
    "dcba": {
        "name": ("D/C/B/A 客户分级漏斗", "D/C/B/A grades"),
        "label": _("D/C/B/A grades: identify → target → key follow-up → order follow-up → won"),
        "stages": [
            ("D", "D 识别", "D · Identify", 10, 30,
             "需求尚未验证。大量电话筛选，找到有需求的客户。", ["已初步沟通"]),
            ("C", "C 目标", "C · Target", 25, 30,
             "已联系、需求明确、有支付能力。定期电话，告知新品和优惠。",
             ["需求明确", "有支付能力"]),
            ("B", "B 重点跟进", "B · Key follow-up", 50, 21,
             "价格/产品谈判中。准备要点后再打电话；下一步：决策流程与决策人、预算、方案/合同内容。",
             ["已找到决策人", "已确认预算", "方案/合同内容已沟通"]),
            ("A", "A 订单跟进", "A · Order follow-up", 80, 14,
             "合同已发送或同意发送。保持紧密、频繁的联系。", ["合同已发送"]),
        ],
    },
    "key_account": {
        "name": ("大客户六步法", "Key account, six steps"),
        "label": _("Key account: six steps from analysis to payment"),
        "stages": [
            ("analysis", "客户分析", "Account analysis", 5, 30, "研究客户的组织、业务和采购方式。",
             ["已完成客户背景调研"]),
            ("trust", "建立信任", "Build trust", 15, 30, "与关键人建立联系和信任。", ["已接触关键人"]),
            ("needs", "挖掘需求", "Uncover needs", 30, 30, "挖掘并确认客户的真实需求。",
             ["需求已书面确认"]),
            ("value", "呈现价值", "Present value", 50, 21, "呈现方案价值，处理异议。", ["方案已演示"]),
            ("commit", "赢取承诺", "Win commitment", 75, 14, "争取客户的采购承诺。", ["已获口头承诺"]),
            ("collect", "回收账款", "Collect payment", 90, 30, "签约后跟进回款。", ["合同已签订"]),
        ],
    },
    "foreign_trade": {
        "name": ("外贸金字塔", "Foreign trade pyramid"),
        "label": _("Foreign trade: cold prospect → inquiry → opportunity → PI signed → paid"),
        "stages": [
            ("cold", "潜在客户", "Cold prospect", 5, 30, "开发信和社媒触达。", []),
            ("inquiry", "询盘", "Inquiry", 20, 14, "24 小时内回复询盘，确认需求。", ["已回复询盘"]),
            ("opportunity", "商机", "Opportunity", 40, 21, "寄样、报价、确认规格。", ["已报价"]),
            ("pi", "签订PI", "PI signed", 80, 30, "PI 已签订，跟进付款。", ["PI 已签回"]),
        ],
    },
}  # fmt: skip

TEMPLATE_CHOICES = [(key, t["label"]) for key, t in TEMPLATES.items()]

DEFAULT_LOST_REASONS = [
    ("价格太高", "Price too high"),
    ("选择了竞争对手", "Chose a competitor"),
    ("没有预算", "No budget"),
    ("需求取消", "Need went away"),
    ("联系不上", "Could not reach them"),
    ("产品不满足需求", "Product does not fit"),
    ("其他", "Other"),
]
