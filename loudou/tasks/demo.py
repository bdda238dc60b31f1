"""Demo tasks: for every rep a few overdue, several due today (some with reminders),
more this week, and some done in the last days; a few shared by two people (a teammate
or the manager). Linked to the rep's open opportunities and accounts. Deterministic for
a given ``rng`` (times are relative to now); written through the services."""

import random
from datetime import datetime, time, timedelta

from django.utils import timezone

from loudou.activities.choices import Kind

TITLES = {
    Kind.CALL: ["回电确认预算", "电话跟进报价反馈", "约技术交流时间", "确认决策人和采购流程"],
    Kind.WECHAT: ["微信发送产品资料", "微信发案例给采购", "节前微信问候"],
    Kind.EMAIL: ["发正式报价单", "发会议纪要", "发合同草稿给法务"],
    Kind.VISIT: ["上门拜访采购经理", "现场演示新版本", "拜访技术负责人"],
    Kind.MEETING: ["方案评审会", "商务谈判"],
    Kind.OTHER: ["准备投标文件", "寄送样品"],
}
KINDS = [Kind.CALL] * 4 + [Kind.WECHAT] * 2 + [Kind.EMAIL] * 2
KINDS += [Kind.VISIT, Kind.MEETING, Kind.OTHER]
HOURS = [9, 10, 10, 11, 14, 15, 15, 16, 17]


def _at(day, hour, minute=0):
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def load_tasks(rng: random.Random, ctx: dict) -> None:
    """Tasks for every rep (overdue, today, this week, done) and a couple for managers."""
    from loudou.customers.models import Account
    from loudou.pipeline.choices import Status
    from loudou.pipeline.models import Opportunity

    from .services import complete_task, create_task

    # A generator of our own, seeded once from the shared one: the steps after this one
    # draw the same numbers however many tasks are made here.
    rng = random.Random(rng.getrandbits(64))
    now = timezone.now()
    today = timezone.localdate(now)
    reps = ctx["reps"]
    count = 0

    def make(rep, due_at, *, all_day=False, remind=None, mate=None, done=False):
        nonlocal count
        kind = rng.choice(KINDS)
        opp = rng.choice(opps[rep.pk]) if opps[rep.pk] and rng.random() < 0.7 else None
        account = None if opp else (rng.choice(accounts[rep.pk]) if accounts[rep.pk] else None)
        task = create_task(
            rep, title=rng.choice(TITLES[kind]), kind=kind, due_at=due_at, all_day=all_day,
            opportunity=opp, account=account, assignees=[mate] if mate else (),
            remind_at=due_at - timedelta(minutes=remind) if remind is not None else None,
            notes=rng.choice(["", "", "客户上次提到预算在下季度", "带上最新的报价"]),
        )  # fmt: skip
        if done:
            complete_task(task, actor=rep, at=min(due_at, now - timedelta(minutes=5)))
        count += 1
        return task

    opps, accounts = {}, {}
    for rep in reps:
        opps[rep.pk] = list(
            Opportunity.objects.filter(owner=rep, status=Status.OPEN).order_by("pk")[:30]
        )
        accounts[rep.pk] = list(Account.objects.filter(owner=rep).order_by("pk")[:30])
    for rep in reps:
        mates = [r for r in reps if r.team_id == rep.team_id and r.pk != rep.pk]
        for days_ago in rng.sample(range(1, 6), 2):  # overdue
            make(rep, _at(today - timedelta(days=days_ago), rng.choice(HOURS)))
        for i in range(rng.randint(3, 5)):  # due today, mostly timed, reminders ahead
            hour = rng.choice(HOURS)
            due = _at(today, hour, rng.choice([0, 30]))
            make(
                rep, due, all_day=i == 0, remind=15 if due > now else None,
                mate=rng.choice(mates) if mates and i == 1 else None,
            )  # fmt: skip
        for _ in range(rng.randint(4, 6)):  # the rest of the week and the next
            day = today + timedelta(days=rng.randint(1, 9))
            make(rep, _at(day, rng.choice(HOURS)), remind=rng.choice([None, 15, 60, 1440]))
        for _ in range(rng.randint(3, 5)):  # done in the last days
            day = today - timedelta(days=rng.randint(0, 6))
            make(rep, _at(day, rng.choice(HOURS)), done=True)
    for username in ("wangjg", "chenlh"):  # managers: reviews with one of their reps
        manager = ctx["users"].get(username)
        team = [r for r in reps if r.team.path.startswith(manager.team.path)] if manager else []
        if not team:
            continue
        for offset, title in ((0, "周例会：过商机和漏斗"), (2, "陪访重点客户")):
            rep, day = rng.choice(team), today + timedelta(days=offset)
            create_task(
                manager, title=title, kind=Kind.MEETING, due_at=_at(day, 16), assignees=[rep],
                remind_at=_at(day, 15, 45),
            )  # fmt: skip
            count += 1
    ctx["tasks"] = count
