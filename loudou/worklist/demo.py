"""Demo data of this app (a step of loudou.web.demo.DEMO_STEPS): PDCA plans of
yesterday and today for two reps, so the Today page looks lived in. The worklist itself
comes from the other apps' demo data."""

from datetime import time, timedelta

from django.utils import timezone

YESTERDAY_CHECK = {
    "problems": "客户对交付周期有顾虑；决策人本周出差。",
    "risks": "竞争对手报价低 10%，可能影响成交。",
    "countermeasures": "准备分阶段交付方案，下周一约决策人视频会议。",
    "not_finished": "拜访只完成一半，没见到决策人。",
    "not_done_well": "开发电话的开场白太长，约访率低。",
    "not_done": "客户资料整理没有做。",
}


def _plan_yesterday(services, rep, day, opps, customer):
    rows = [
        ("key", f"推进商机：{opps[0].name}", "done", "已发方案，客户周五答复",
         {"opportunity": opps[0]}),
        ("key", f"拜访 {opps[1].account.name}", "partly", "见到采购，未见决策人",
         {"opportunity": opps[1]}),
        ("routine", "固定开发时间：打 30 个新客户电话", "done", "打了 32 个，约到 2 个", {}),
        ("routine", "整理客户资料，更新商机阶段", "not_done", "", {}),
    ]  # fmt: skip
    if customer is not None:
        rows.append(("ad_hoc", f"处理 {customer.name} 的售后问题", "done", "已安排工程师上门",
                     {"account": customer}))  # fmt: skip
    for category, text, status, note, links in rows:
        item = services.add_item(rep, day, actor=rep, text=text, category=category, **links)
        services.update_item(item, actor=rep, status=status, note=note)
    services.update_plan(rep, day, actor=rep, **YESTERDAY_CHECK)


def load_worklist(rng, ctx) -> None:
    """Yesterday's plan (done, partly, not done, with check and reflection) and today's
    (yesterday's unfinished items carried over plus new ones) for zhangwei and lina; lina
    prospects in the afternoon."""
    from loudou.customers.choices import Grade
    from loudou.customers.models import Account
    from loudou.pipeline.choices import Status
    from loudou.pipeline.models import Opportunity
    from loudou.worklist import services

    today = timezone.localdate()
    yesterday = today - timedelta(days=1)
    for username in ("zhangwei", "lina"):
        rep = ctx["users"][username]
        opps = list(
            Opportunity.objects.filter(owner=rep, status=Status.OPEN).order_by("-amount", "pk")[:4]
        )
        if len(opps) < 3:
            continue
        customer = Account.objects.filter(owner=rep, grade=Grade.WON).order_by("pk").first()
        _plan_yesterday(services, rep, yesterday, opps, customer)
        services.carry_over(rep, yesterday, today, actor=rep)
        services.add_item(
            rep, today, actor=rep, category="key", opportunity=opps[2],
            text=f"约决策人确认预算：{opps[2].name}",
        )  # fmt: skip
        services.add_item(
            rep, today, actor=rep, category="routine", text="固定开发时间：打 30 个新客户电话"
        )
        first = services.add_item(
            rep, today, actor=rep, category="ad_hoc", text="回复昨天的三封询价邮件"
        )
        services.update_item(first, actor=rep, status="done", note="已回复，其中一家要报价")
        services.update_plan(
            rep,
            today,
            actor=rep,
            risks=rng.choice(["客户预算可能推迟到下季度。", "交付排期紧张。"]),
        )
    lina = ctx["users"].get("lina")
    if lina is not None:
        services.set_prospecting_time(lina, actor=lina, start=time(14), end=time(15, 30))
