"""Demo activities: twelve months of calls, visits, WeChat messages, e-mails, meetings
and account research by every rep on their own leads, accounts and opportunities, with
realistic outcomes and durations, a few of them today. Deterministic for a given ``rng``
(times are relative to now). Rows are written with one bulk insert."""

import random
from datetime import datetime, time, timedelta

from django.utils import timezone

from .choices import Kind, Outcome, Purpose
from .models import Activity

MONTHS = 12
GIFTS = ["产品手册", "报价单", "同行业案例", "技术方案", "试用账号", "展会邀请函", "行业报告"]
NOTES = {
    Kind.CALL: [
        "确认需求和预算",
        "约下周拜访",
        "询问决策流程",
        "跟进报价反馈",
        "客户在出差，改天再打",
    ],
    Kind.VISIT: ["现场看了产线", "见了采购和技术负责人", "演示了新版本", "送样品并讲解"],
    Kind.WECHAT: ["发了资料，客户已读", "加了微信，约时间", "节日问候", "回复了技术问题"],
    Kind.EMAIL: ["发送正式报价", "发会议纪要", "发合同草稿", "发产品资料"],
    Kind.MEETING: ["方案评审会", "商务谈判", "技术交流会"],
    Kind.RESEARCH: ["整理公司架构和关键人", "查了工商信息和新闻", "分析竞争对手在该客户的情况"],
    Kind.OTHER: ["寄送样品"],
}
OUTCOMES = {
    Kind.CALL: [(Outcome.REACHED, 55), (Outcome.NOT_REACHED, 25), (Outcome.LEFT_MESSAGE, 15),
                (Outcome.OTHER, 5)],
    Kind.VISIT: [(Outcome.VISITED, 85), (Outcome.CANCELLED, 10), (Outcome.OTHER, 5)],
    Kind.WECHAT: [(Outcome.REACHED, 70), (Outcome.NOT_REACHED, 20), (Outcome.LEFT_MESSAGE, 10)],
    Kind.EMAIL: [(Outcome.REACHED, 60), (Outcome.NOT_REACHED, 40)],
    Kind.MEETING: [(Outcome.MEETING_HELD, 90), (Outcome.CANCELLED, 10)],
    Kind.OTHER: [(Outcome.OTHER, 100)],
}  # fmt: skip
MINUTES = {
    Kind.CALL: (2, 25), Kind.VISIT: (30, 150), Kind.WECHAT: (2, 10), Kind.MEETING: (30, 120),
    Kind.RESEARCH: (15, 90),
}  # fmt: skip
# How a rep works a deal: mostly calls and WeChat, some visits, fewer e-mails and meetings.
DEAL_KINDS = [(Kind.CALL, 40), (Kind.WECHAT, 20), (Kind.VISIT, 16), (Kind.EMAIL, 12),
              (Kind.MEETING, 10), (Kind.OTHER, 2)]  # fmt: skip
LEAD_KINDS = [(Kind.CALL, 60), (Kind.WECHAT, 25), (Kind.EMAIL, 15)]
SERVICE_KINDS = [(Kind.VISIT, 40), (Kind.CALL, 40), (Kind.WECHAT, 20)]


def _pick(rng, weighted):
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


def _working_time(rng, start, end):
    """A moment between ``start`` and ``end`` (aware), in working hours when it can be."""
    if end <= start:
        return end
    moment = start + (end - start) * rng.random()
    local = timezone.localtime(moment)
    day = local.date()
    if day.weekday() >= 5:  # weekends are rare
        day -= timedelta(days=day.weekday() - 4)
    hour = rng.choice([9, 10, 10, 11, 14, 14, 15, 16, 17])
    tz = timezone.get_current_timezone()
    candidate = datetime.combine(day, time(hour, rng.randrange(60)), tzinfo=tz)
    return candidate if start <= candidate <= end else moment


def _activity(rng, rep, kind, when, purpose, **links):
    outcome = "" if kind == Kind.RESEARCH else _pick(rng, OUTCOMES[kind])
    low_high = MINUTES.get(kind)
    minutes = None if low_high is None or outcome == Outcome.CANCELLED else rng.randint(*low_high)
    gave = (
        kind != Kind.RESEARCH
        and outcome not in {Outcome.NOT_REACHED, Outcome.CANCELLED}
        and (rng.random() < 0.45)
    )
    return Activity(
        owner=rep, created_by=rep, kind=kind, purpose=purpose, outcome=outcome,
        occurred_at=when, duration_minutes=minutes, gave_something=gave,
        gave_what=rng.choice(GIFTS) if gave else "", notes=rng.choice(NOTES[kind]), **links,
    )  # fmt: skip


def load_activities(rng: random.Random, ctx: dict) -> None:
    """Activities for every rep on their accounts, leads and opportunities."""
    from loudou.customers.models import Account
    from loudou.leads.models import Lead
    from loudou.pipeline.choices import Status
    from loudou.pipeline.models import Opportunity

    now = timezone.now()
    year_ago = now - timedelta(days=30 * MONTHS)
    rows: list[Activity] = []
    for rep in ctx["reps"]:
        accounts = list(Account.objects.filter(owner=rep).order_by("pk"))
        opps = list(
            Opportunity.objects.filter(owner=rep)
            .order_by("pk")
            .values("pk", "account_id", "status", "created_at", "closed_at")
        )
        leads = list(Lead.objects.filter(owner=rep).order_by("pk").values_list("pk", flat=True))
        won_accounts = {o["account_id"] for o in opps if o["status"] == Status.WON}
        for account in accounts:  # profile building, then the odd check-in
            purpose = Purpose.SERVICE if account.pk in won_accounts else Purpose.PROSPECTING
            for _ in range(rng.randint(0, 2)):
                when = _working_time(rng, year_ago, now - timedelta(hours=2))
                rows.append(_activity(rng, rep, Kind.RESEARCH, when, purpose, account=account))
        for opp in opps:  # following the deal while it is open
            start = max(opp["created_at"], year_ago)
            end = min(opp["closed_at"] or now, now - timedelta(hours=2))
            for _ in range(rng.randint(1, 4)):
                kind = _pick(rng, DEAL_KINDS)
                when = _working_time(rng, start, end)
                rows.append(
                    _activity(
                        rng,
                        rep,
                        kind,
                        when,
                        Purpose.FOLLOW_UP,
                        opportunity_id=opp["pk"],
                        account_id=opp["account_id"],
                    )  # fmt: skip
                )
            if opp["status"] == Status.WON and opp["closed_at"]:  # looking after the customer
                for _ in range(rng.randint(0, 2)):
                    when = _working_time(rng, opp["closed_at"], now - timedelta(hours=2))
                    kind = _pick(rng, SERVICE_KINDS)
                    rows.append(
                        _activity(
                            rng, rep, kind, when, Purpose.SERVICE, account_id=opp["account_id"]
                        )
                    )
        for lead_id in leads:  # first contacts, often unanswered
            for _ in range(rng.randint(1, 3)):
                when = _working_time(rng, year_ago + timedelta(days=300), now - timedelta(hours=3))
                rows.append(
                    _activity(
                        rng, rep, _pick(rng, LEAD_KINDS), when, Purpose.PROSPECTING, lead_id=lead_id
                    )  # fmt: skip
                )
        # Today's first calls on open deals: since 08:00 (or the last hour, early in the
        # morning), up to a minute ago.
        start = timezone.localtime(now).replace(hour=8, minute=0, second=0, microsecond=0)
        start = max(start.replace(hour=0), min(start, now - timedelta(hours=1)))
        open_opps = [o for o in opps if o["status"] == Status.OPEN]
        for opp in rng.sample(open_opps, min(2, len(open_opps))):
            when = start + (now - timedelta(minutes=1) - start) * rng.random()
            rows.append(
                _activity(
                    rng,
                    rep,
                    Kind.CALL,
                    when,
                    Purpose.FOLLOW_UP,
                    opportunity_id=opp["pk"],
                    account_id=opp["account_id"],
                )  # fmt: skip
            )
    Activity.objects.bulk_create(rows, batch_size=2000)
    ctx["activities"] = len(rows)


# Where the demo's provinces do business (a city centre each): accounts without
# coordinates get a point within about 15 km of their province's centre.
CENTRES = {
    "上海": (31.2304, 121.4737), "江苏": (31.2990, 120.5853), "浙江": (30.2741, 120.1551),
    "广东": (23.1291, 113.2644), "福建": (26.0745, 119.2965),
}  # fmt: skip
VISIT_TOPICS = [
    "演示新版本", "了解年度采购计划", "送样品", "技术交流", "商务谈判", "回访使用情况",
    "拜访新任采购经理", "现场勘查",
]  # fmt: skip
VISIT_NOTES = [
    "见了采购和技术负责人，对方案有兴趣", "客户提出价格顾虑，下周发报价", "看了产线，需求明确",
    "演示顺利，约了下次技术交流", "客户临时开会，只见了助理", "送了样品，客户试用后反馈",
]  # fmt: skip
VISIT_WEEKS = 12  # of the full demo; a shorter history (fewer opportunities) has fewer
FULL_DEMO_OPPORTUNITIES = 600
VISIT_OUTCOME_WEIGHTS = [
    (Outcome.VISITED, 85),
    (Outcome.MEETING_HELD, 10),
    (Outcome.NOT_REACHED, 5),
]


def _near(rng, lat, lng, metres):
    """A point about ``metres`` from (lat, lng), in a random direction."""
    import math

    angle = rng.random() * 2 * math.pi
    d_lat = metres * math.cos(angle) / 111_195
    d_lng = metres * math.sin(angle) / (111_195 * math.cos(math.radians(lat)))
    return round(lat + d_lat, 6), round(lng + d_lng, 6)


def _place_accounts(rng) -> None:
    """Coordinates for the demo accounts that have none (their province's area)."""
    from decimal import Decimal

    from loudou.customers.models import Account

    accounts = list(
        Account.objects.filter(latitude__isnull=True).select_related("region").order_by("pk")
    )
    for account in accounts:
        centre = CENTRES.get(getattr(account.region, "name", ""), CENTRES["上海"])
        lat, lng = _near(rng, *centre, rng.uniform(500, 15_000))
        account.latitude, account.longitude = Decimal(str(lat)), Decimal(str(lng))
    # Demo set-up, not a user's edit: no version bump or history, like the bulk inserts.
    Account.objects.bulk_update(accounts, ["latitude", "longitude"], batch_size=500)


def _visit_time(rng, monday):
    """A working-day moment of the week of ``monday`` (local)."""
    day = monday + timedelta(days=rng.randrange(5))
    tz = timezone.get_current_timezone()
    return datetime.combine(day, time(rng.choice([9, 10, 10, 11, 14, 14, 15, 16]), 0), tzinfo=tz)


def _plan(rng, rep, accounts, when):
    from .visits import services

    account = rng.choice(accounts)
    contacts = list(account.contacts.all())
    return services.plan_visit(
        rep, account=account, planned_for=when, topic=rng.choice(VISIT_TOPICS),
        contact=rng.choice(contacts) if contacts and rng.random() < 0.7 else None,
    )  # fmt: skip


def _do_visit(rng, rep, visit, when):
    """Check in (mostly near, a few far, some not at all) and record ``visit``."""
    from .visits import services

    account = visit.account
    if rng.random() < 0.85:
        far = rng.random() < 0.08
        metres = rng.uniform(2_000, 8_000) if far else abs(rng.gauss(0, 150))
        lat, lng = _near(rng, float(account.latitude), float(account.longitude), metres)
        arrived = when + timedelta(minutes=rng.randint(-15, 20))
        visit = services.check_in(
            visit, actor=rep, latitude=lat, longitude=lng, accuracy=rng.randint(5, 60),
            at=arrived,
        )  # fmt: skip
        left = arrived + timedelta(minutes=rng.randint(30, 120))
        return services.record_visit(
            visit, actor=rep, outcome=_pick(rng, VISIT_OUTCOME_WEIGHTS),
            notes=rng.choice(VISIT_NOTES), check_out=True, at=left,
            gave_what=rng.choice(GIFTS) if rng.random() < 0.5 else "",
        )  # fmt: skip
    # Recorded a few hours later — but not after now: a visit of this morning is
    # recorded by now at the latest (the service refuses a record time in the future).
    duration, later = rng.randint(30, 90), timedelta(hours=rng.randint(2, 6))
    return services.record_visit(
        visit, actor=rep, notes=rng.choice(VISIT_NOTES), duration_minutes=duration,
        at=min(when + later, timezone.now()),
    )  # fmt: skip


def load_visits(rng, ctx) -> None:
    """Twelve weeks of visits (fewer in a demo with a shorter sales history) for every
    rep on their own accounts — most done with a
    check-in near the address, a few far from it, some without check-in, some cancelled
    — and visits planned for today and the rest of this week (with their tasks). Gives
    the accounts without coordinates a place in their province first.

    Draws from a copy of ``rng``: the steps after this one get the same numbers whether
    or not visits are loaded."""
    from loudou.customers.models import Account

    from .queries import week_start
    from .visits import services

    sub = random.Random()
    sub.setstate(rng.getstate())
    _place_accounts(sub)
    now = timezone.now()
    today = timezone.localdate()
    this_monday = week_start(today)
    count = 0
    # Tests load the demo with a short sales history (a few opportunities): the visits'
    # history shrinks with it (each visit runs the services: plan, check in, record).
    share = min(1, ctx.get("opportunities", FULL_DEMO_OPPORTUNITIES) / FULL_DEMO_OPPORTUNITIES)
    weeks = max(1, round(VISIT_WEEKS * share))
    for rep in ctx["reps"]:
        accounts = list(
            Account.objects.filter(owner=rep).prefetch_related("contacts").order_by("pk")
        )
        if not accounts:
            continue

        for weeks_ago in range(weeks, -1, -1):
            monday = this_monday - timedelta(days=7 * weeks_ago)
            for _ in range(sub.randint(1, 4)):
                when = _visit_time(sub, monday)
                if when > now - timedelta(hours=3):
                    continue  # the future is planned below
                visit = _plan(sub, rep, accounts, when)
                fate = sub.random()
                if fate < 0.1:
                    services.cancel_visit(
                        visit,
                        actor=rep,
                        reason=sub.choice(["客户临时出差", "客户改期", "天气原因"]),
                    )
                elif fate < 0.97:
                    _do_visit(sub, rep, visit, when)
                count += 1  # the rest stays planned: overdue, as in real life
        # Today (two visits, later than now when the day allows) and the rest of the week.
        local_now = timezone.localtime(now)
        for hour in (10, 15):
            when = local_now.replace(hour=hour, minute=0, second=0, microsecond=0)
            if when < now:
                when = min(now + timedelta(hours=1), local_now.replace(hour=23, minute=0))
            _plan(sub, rep, accounts, when)
            count += 1
        for days in range(1, 7 - today.weekday()):
            if sub.random() < 0.6:
                day = local_now + timedelta(days=days)
                hour = sub.choice([9, 10, 14, 16])
                when = day.replace(hour=hour, minute=0, second=0, microsecond=0)
                _plan(sub, rep, accounts, when)
                count += 1
    ctx["visits"] = count
