"""Demo leads: a pool per top region, assignment rules, some dozens of leads (owned,
pooled, claimed, released and converted) made with the real services."""

import random
from decimal import Decimal

from loudou.customers.choices import Source

from . import services
from .models import AssignmentRule

LEAD_COUNT = 48


def load_leads(rng: random.Random, ctx: dict) -> None:
    from loudou.web.demo import COMPANY_CORE, COMPANY_TRADE, GIVEN, SURNAMES, TITLES, phone

    regions, users = ctx["regions"], ctx["users"]
    admin = users["admin"]
    pools = {}
    for top in ("华东区", "华南区"):
        pool = services.create_pool(
            actor=admin, name=f"{top}公海", regions=[regions[top]], daily_claim_limit=10,
            max_owned=60, reclaim_block_days=7, no_follow_up_days=30, not_converted_days=90,
        )  # fmt: skip
        pools[top] = pool
    east_reps = [users[u] for u in ("zhangwei", "lina", "liuyang")]
    rule = AssignmentRule.objects.create(
        position=10, name="华东官网线索轮流分配", region=regions["华东区"],
        source=Source.WEBSITE, method="round_robin", capacity=40,
    )  # fmt: skip
    rule.reps.set(east_reps)
    AssignmentRule.objects.create(
        position=20,
        name="华南线索分配给负担最轻的人",
        region=regions["华南区"],
        method="least_open_load",
        capacity=40,
    ).reps.set([users[u] for u in ("zhoujie", "wufang", "zhengkai")])
    AssignmentRule.objects.create(
        position=30, name="其余线索进入华东公海", method="pool", pool=pools["华东区"]
    )
    provinces = [name for name in regions if name not in pools]
    leads = []
    for _ in range(LEAD_COUNT):
        province = rng.choice(provinces)
        core, (trade, industry) = rng.choice(COMPANY_CORE), rng.choice(COMPANY_TRADE)
        lead, _dups = services.create_lead(
            actor=admin, name=rng.choice(SURNAMES) + rng.choice(GIVEN),
            company=f"{province}{core}{trade}有限公司", title=rng.choice(TITLES),
            mobile=phone(rng), source=rng.choice(Source.values), region=regions[province],
            industry=industry,
        )  # fmt: skip
        leads.append(lead)
    owned = [lead for lead in leads if lead.owner_id]
    pipeline = ctx["pipelines"][0]
    for lead in owned[:6]:  # some converted leads
        services.convert_lead(
            lead, actor=lead.owner, pipeline=pipeline,
            amount=Decimal(rng.randint(20, 200) * 1000),
        )  # fmt: skip
    for lead in owned[6:9]:  # released back to the pool with a reason
        services.release_lead(lead, rep=lead.owner, reason="暂无需求，半年后再联系")
    _load_recycling(rng, ctx, pools, owned[9:])
    _load_pooled_accounts(ctx, pools)
    ctx["leads"] = leads


def _load_recycling(rng: random.Random, ctx: dict, pools: dict, owned: list) -> None:
    """Recycle rules on the demo pools, a few leads about to go back (so their owners see
    a warning in the bell) and two that went back, through the real sweep; a welcome
    notification for everyone."""
    from datetime import timedelta

    from django.utils import timezone

    from loudou.notifications.services import notify
    from loudou.pipeline.models import ProductLine

    from .choices import RecycleKind, RecycleTarget
    from .models import Lead, RecycleRule

    cloud = ProductLine.objects.filter(code="cloud").first()
    RecycleRule.objects.create(
        position=10, name="云平台线索14天未跟进收回", kind=RecycleKind.NO_FOLLOW_UP, days=14,
        warn_days_before=3, pool=pools["华东区"], product_interest=cloud,
    )  # fmt: skip
    RecycleRule.objects.create(
        position=20, name="华南线索60天未转化收回", kind=RecycleKind.NOT_CONVERTED, days=60,
        warn_days_before=7, pool=pools["华南区"], region=pools["华南区"].regions.first(),
    )  # fmt: skip
    RecycleRule.objects.create(
        position=30, name="华东D级客户90天未跟进收回", applies_to=RecycleTarget.ACCOUNTS,
        grade="D", kind=RecycleKind.NO_FOLLOW_UP, days=90, warn_days_before=7,
        pool=pools["华东区"],
    )  # fmt: skip
    RecycleRule.objects.create(
        position=40, name="客户一年无成交收回", applies_to=RecycleTarget.ACCOUNTS,
        kind=RecycleKind.NO_WON_DEAL, days=365, warn_days_before=14, pool=pools["华东区"],
    )  # fmt: skip
    now = timezone.now()
    for lead, days in zip(owned[:6], (28, 28, 29, 27, 35, 40), strict=False):
        past = now - timedelta(days=days, hours=rng.randint(0, 6))
        Lead.objects.filter(pk=lead.pk).update(owned_since=past, updated_at=past)
    services.sweep(now=now)
    for user in ctx["users"].values():
        notify(
            user,
            "欢迎使用 Loudou：线索分配、公海回收提醒和交接都会在这里通知你。",
            url="/leads/",
            kind="welcome",
            key="welcome",
        )


def _load_pooled_accounts(ctx: dict, pools: dict) -> None:
    """Two accounts waiting in the East pool (former customers nobody works), so that
    the pool page shows accounts to claim."""
    from loudou.customers.services import create_account

    admin = ctx["users"]["admin"]
    for name, region in (
        ("上海申华包装材料有限公司", "上海"),
        ("杭州云栖文化传媒有限公司", "浙江"),
    ):
        account = create_account(
            actor=admin, name=name, region=ctx["regions"][region], industry="制造",
            notes="老客户，两年未下单",
        )  # fmt: skip
        services.release_account(
            account, rep=admin, reason="长期无人跟进，放入公海", pool=pools["华东区"]
        )
