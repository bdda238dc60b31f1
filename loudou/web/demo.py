"""The demo data set: a realistic Chinese sales organisation with a fixed seed.

Each domain app contributes a step (``DEMO_STEPS``); a step receives a seeded
``random.Random`` and a shared context dict, so that the whole demo is identical on
every machine. Later modules add their objects by appending a step here.
"""

import random
from datetime import date, timedelta
from importlib import import_module

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

DEMO_PASSWORD = "loudou-demo"
DEMO_SEED = 20261122

ORG = {
    "regions": {"华东区": ["上海", "江苏", "浙江"], "华南区": ["广东", "福建"]},
    "teams": [("华东销售部", None), ("苏州小组", "华东销售部"), ("华南销售部", None)],
    "admin": ("admin", "系统管理员"),
    "managers": [
        ("wangjg", "王建国", "华东销售部", "华东区"),
        ("chenlh", "陈丽华", "华南销售部", "华南区"),
    ],
    "reps": [
        ("zhangwei", "张伟", "华东销售部", "上海", "senior"),
        ("lina", "李娜", "华东销售部", "浙江", "junior"),
        ("liuyang", "刘洋", "华东销售部", "上海", "trainee"),
        ("zhaomin", "赵敏", "苏州小组", "江苏", "senior"),
        ("sunhao", "孙浩", "苏州小组", "江苏", "junior"),
        ("zhoujie", "周杰", "华南销售部", "广东", "senior"),
        ("wufang", "吴芳", "华南销售部", "广东", "junior"),
        ("zhengkai", "郑凯", "华南销售部", "福建", "trainee"),
    ],
}

# Weeks since the hire of the demo's newcomers: one still in training, one in months 0–3.
RECENT_HIRES = {"liuyang": 3, "zhengkai": 10}

CITY_WORDS = {"上海": "沪", "江苏": "苏", "浙江": "浙", "广东": "粤", "福建": "闽"}
COMPANY_CORE = [
    "恒信", "华通", "中科", "远航", "金桥", "博远", "瑞丰", "泰和", "新元", "宏达", "安捷",
    "天润", "嘉禾", "星辰", "鼎盛", "正泰", "汇智", "卓越", "明德", "东方",
]  # fmt: skip
COMPANY_TRADE = [
    ("科技", "软件与信息服务"), ("机械", "装备制造"), ("医疗器械", "医疗"), ("物流", "物流运输"),
    ("电子", "电子制造"), ("化工", "化工"), ("食品", "食品饮料"), ("教育科技", "教育"),
]  # fmt: skip
SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭何林罗高"
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "涛", "明", "超", "霞", "平"]
TITLES = ["采购经理", "总经理", "技术总监", "财务经理", "IT主管", "运营总监", "行政主管"]


def phone(rng: random.Random) -> str:
    return f"1{rng.choice('3589')}{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}"


def load_org(rng: random.Random, ctx: dict) -> None:
    """Regions, teams, the admin, two managers and eight reps."""
    from loudou.org.models import Region, Role, Team
    from loudou.org.services import create_user

    regions = {}
    for top, children in ORG["regions"].items():
        parent = Region.objects.create(name=top)
        regions[top] = parent
        for child in children:
            regions[child] = Region.objects.create(name=child, parent=parent)
    teams = {}
    for name, parent in ORG["teams"]:
        teams[name] = Team.objects.create(name=name, parent=teams.get(parent))

    def hired() -> date:
        return timezone.localdate() - timedelta(days=rng.randint(30, 730))

    username, name = ORG["admin"]
    users = {username: create_user(username, password=DEMO_PASSWORD, name=name, role=Role.ADMIN)}
    for username, name, team, region in ORG["managers"]:
        users[username] = create_user(
            username, password=DEMO_PASSWORD, name=name, role=Role.MANAGER, team=teams[team],
            region=regions[region], phone=phone(rng), hire_date=hired(), level="lead",
        )  # fmt: skip
    for username, name, team, region, level in ORG["reps"]:
        mobile, hire_date = phone(rng), hired()  # same draws as always: the demo stays the same
        if username in RECENT_HIRES:  # newcomers, so the onboarding roadmap has someone to track
            hire_date = timezone.localdate() - timedelta(weeks=RECENT_HIRES[username])
        users[username] = create_user(
            username, password=DEMO_PASSWORD, name=name, role=Role.REP, team=teams[team],
            region=regions[region], phone=mobile, hire_date=hire_date, level=level,
        )  # fmt: skip
    ctx.update(regions=regions, teams=teams, users=users)
    ctx["reps"] = [users[r[0]] for r in ORG["reps"]]


def load_accounts(rng: random.Random, ctx: dict) -> None:
    """Accounts with contacts for every rep, in the rep's own province."""
    from loudou.customers.choices import BuyingRole, ContactStyle, Segment, Size, Source
    from loudou.customers.services import create_account, create_contact

    accounts = []
    used = set()
    for rep in ctx["reps"]:
        for _ in range(25):
            while True:
                core, (trade, industry) = rng.choice(COMPANY_CORE), rng.choice(COMPANY_TRADE)
                name = f"{rep.region.name}{core}{trade}有限公司"
                if name not in used:
                    used.add(name)
                    break
            account = create_account(
                actor=rep, name=name, industry=industry, region=rep.region,
                size=rng.choice(Size.values), source=rng.choice(Source.values),
                phone=f"0{rng.randint(10, 99)}-{rng.randint(10_000_000, 99_999_999)}",
                address=f"{rep.region.name}市{rng.choice(['高新区', '工业园区', '开发区'])}"
                f"{rng.randint(1, 999)}号",
                segment=rng.choice(Segment.values[1:]),
            )  # fmt: skip
            for _ in range(rng.randint(1, 3)):
                create_contact(
                    account, actor=rep, name=rng.choice(SURNAMES) + rng.choice(GIVEN),
                    title=rng.choice(TITLES), mobile=phone(rng),
                    buying_role=rng.choice(BuyingRole.values[1:]),
                    style=rng.choice(ContactStyle.values[1:]),
                )  # fmt: skip
            accounts.append(account)
    # A few accounts shared with a teammate, to show collaboration.
    for account in rng.sample(accounts, 4):
        mates = [
            r for r in ctx["reps"] if r.team_id == account.owner.team_id and r != account.owner
        ]
        if mates:
            account.shared_with.add(rng.choice(mates))
    ctx["accounts"] = accounts


DEMO_STEPS = [
    "loudou.web.demo.load_org",
    "loudou.web.demo.load_accounts",
    "loudou.pipeline.demo.load_pipelines",
    "loudou.leads.demo.load_leads",
    "loudou.activities.demo.load_activities",
    "loudou.sales.demo.load_sales",
    "loudou.targets.demo.load_targets",
    "loudou.onboarding.demo.load_onboarding",
    "loudou.activities.demo.load_visits",
    "loudou.tasks.demo.load_tasks",
    "loudou.notifications.demo.load_channels",
    "loudou.rules.demo.load_rules",
    "loudou.worklist.demo.load_worklist",
]


# The starting configuration that data migrations install (lost reasons, the onboarding
# roadmap). A flushed database (``demo --reset``, a transactional test) has lost it, so the
# demo installs it again when it is missing; each installer does nothing when it is there.
DEFAULT_ROWS = [
    ("loudou.pipeline.migrations.0005_default_lost_reasons", "install"),
    ("loudou.onboarding.migrations.0002_default_roadmap", "forwards"),
    ("loudou.rules.migrations.0002_default_rules", "forwards"),
]


def install_defaults() -> None:
    from django.apps import apps

    for module, function in DEFAULT_ROWS:
        getattr(import_module(module), function)(apps, None)


def demo_exists() -> bool:
    from loudou.org.models import User

    return User.objects.filter(username=ORG["admin"][0]).exists()


@transaction.atomic
def load_demo(*, opportunities: int = 600) -> dict:
    """Load the whole demo in one transaction (all or nothing). Tests pass a smaller
    ``opportunities`` to keep the same organisation with less history."""
    install_defaults()
    rng = random.Random(DEMO_SEED)
    ctx: dict = {"opportunities": opportunities}
    for path in DEMO_STEPS:
        import_string(path)(rng, ctx)
    # The funnel summaries (issue 4) from scratch: whatever the steps wrote behind the
    # services' back, the reports start fresh, and a reloaded demo equals the first one.
    from loudou.pipeline.summaries import rebuild_summaries

    rebuild_summaries()
    return ctx


def demo_logins() -> list[tuple[str, str]]:
    """(username, description) of the demo users, if the demo is loaded."""
    if not demo_exists():
        return []
    rows = [(ORG["admin"][0], "admin · 系统管理员")]
    rows += [(u, f"manager · {n} · {t}") for u, n, t, _r in ORG["managers"]]
    rows += [(u, f"rep · {n} · {t}") for u, n, t, _r, _l in ORG["reps"]]
    return rows
