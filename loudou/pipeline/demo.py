"""Demo pipelines and about 600 opportunities with twelve months of stage history.

Opportunities are created over the past year and walked through their pipeline with the
real services (``when=`` in the past), so that the history, the furthest stages, account
grades and every later report rest on the same rows a real team would produce. Each rep
has their own strengths, so that "rep vs team" shows a real weak step.
"""

import random
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from . import services
from .models import LostReason, ProductLine

OPPORTUNITY_NAMES = ["年度采购", "系统升级", "二期扩容", "新产线配套", "集团统采", "试点项目",
                     "续约", "维保服务", "数据中心", "门店改造"]  # fmt: skip
COMPETITORS = ["", "", "金蝶", "用友", "华为", "海康", "本地代理商"]
NEXT_STEPS = ["电话确认需求", "发送方案", "约见决策人", "提交报价", "安排演示", "跟进合同"]

# Base chance to advance from each stage index; reps scale it (see REP_SKILL).
ADVANCE = [0.55, 0.62, 0.68, 0.78, 0.8, 0.85]
REP_SKILL = {  # (overall factor, index of the rep's weak stage or None)
    "zhangwei": (1.1, None), "lina": (1.0, 1), "liuyang": (0.85, 0),
    "zhaomin": (1.05, None), "sunhao": (0.95, 2), "zhoujie": (1.1, None),
    "wufang": (1.0, 1), "zhengkai": (0.8, 0),
}  # fmt: skip


def load_pipelines(rng: random.Random, ctx: dict) -> None:
    cloud = ProductLine.objects.create(code="cloud", name="云平台", name_en="Cloud platform")
    hardware = ProductLine.objects.create(
        code="hardware", name="智能硬件", name_en="Smart hardware"
    )
    services.ensure_lost_reasons()
    dcba = services.create_pipeline_from_template("dcba", product_line=cloud, learn_win_rates=True)
    classic = services.create_pipeline_from_template(
        "classic", product_line=hardware, checklist_mode="advisory"
    )
    ctx["pipelines"] = [dcba, classic]
    reasons = list(LostReason.objects.all())
    now = timezone.now()
    accounts = ctx["accounts"]
    for index in range(ctx.get("opportunities", 600)):
        account = accounts[index % len(accounts)] if index < len(accounts) else rng.choice(accounts)
        pipeline = dcba if rng.random() < 0.6 else classic
        created = now - timedelta(days=365 * rng.random() ** 1.6, minutes=rng.randint(0, 600))
        _simulate(rng, account, pipeline, created, now, reasons)


def _amount(rng, pipeline) -> Decimal:
    base = 80_000 if pipeline.template == "dcba" else 25_000
    return Decimal(int(base * rng.lognormvariate(0, 0.7)) // 100 * 100)


def _simulate(rng, account, pipeline, created, now, reasons):
    owner = account.owner
    skill, weak = REP_SKILL.get(owner.username, (1.0, None))
    stages = list(pipeline.open_stages())
    contacts = list(account.contacts.all())
    opp = services.create_opportunity(
        actor=owner, pipeline=pipeline, account=account, when=created,
        name=f"{account.name[:-4]}{rng.choice(OPPORTUNITY_NAMES)}",
        amount=_amount(rng, pipeline), product_line=pipeline.product_line,
        source=account.source, competitors=rng.choice(COMPETITORS),
        contacts=rng.sample(contacts, k=min(len(contacts), rng.randint(1, 2))),
    )  # fmt: skip
    when, index = created, 0
    while True:
        stay = timedelta(days=rng.expovariate(1 / 20) + 1, hours=rng.randint(0, 8))
        if when + stay > now:
            break  # still open today
        when += stay
        chance = ADVANCE[index] * skill * (0.6 if index == weak else 1.0)
        ticks = stages[index].checklist
        if rng.random() < min(chance, 0.95):
            if index == len(stages) - 1:
                opp = services.win_opportunity(opp, actor=owner, checklist=ticks, when=when)
                return
            step = 2 if rng.random() < 0.06 and index + 2 < len(stages) else 1
            index += step
            opp = services.move_opportunity(
                opp, stages[index], actor=owner, checklist=ticks, when=when
            )
        elif rng.random() < 0.1 and index > 0:
            index -= 1  # the customer went back a step
            opp = services.move_opportunity(opp, stages[index], actor=owner, when=when)
        else:
            opp = services.lose_opportunity(opp, rng.choice(reasons), actor=owner, when=when)
            return
    # Still open: a plausible close date, a next step, and the checklist partly done.
    close = (now + timedelta(days=rng.randint(-10, 100))).date()
    fields = {"expected_close_date": close, "next_step": rng.choice(NEXT_STEPS),
              "next_step_date": (now + timedelta(days=rng.randint(-3, 14))).date()}  # fmt: skip
    if rng.random() < 0.15:
        fields["probability"] = Decimal(rng.choice([20, 40, 60, 70, 90]))
    opp = services.update_opportunity(opp, actor=owner, **fields)
    if stages[index].checklist and rng.random() < 0.6:
        services.tick_checklist(opp, stages[index].checklist, actor=owner)
