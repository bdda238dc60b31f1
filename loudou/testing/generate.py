"""A large, realistic, reproducible data set for benchmarks (``loudou generate``).

Unlike the demo, which goes through the services one opportunity at a time, this writes
in bulk: a sales organisation (regions, a team tree, managers and reps), accounts, two
pipelines, and opportunities whose stage history is simulated with per-rep conversion
rates and stage durations over several years. The rows are exactly what the services
would write (one StageChange per transition, furthest stage maintained), so that every
report reads them as real history. Same seed, same data.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.hashers import make_password
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils import timezone

from loudou.core.db import insert_rows
from loudou.customers.models import Account
from loudou.org.models import Region, Role, Team, User
from loudou.pipeline import services
from loudou.pipeline.models import LostReason, Opportunity, Pipeline, ProductLine, StageChange

BATCH = 5_000
REGIONS = {"华东区": ["上海", "江苏", "浙江"], "华南区": ["广东", "福建"],
           "华北区": ["北京", "天津", "河北"], "西南区": ["四川", "重庆"]}  # fmt: skip
INDUSTRIES = ["软件与信息服务", "装备制造", "医疗", "物流运输", "电子制造", "化工", "食品饮料",
              "教育"]  # fmt: skip
SOURCES = ["referral", "website", "exhibition", "cold_call", "advertising", "partner", "inbound"]
ADVANCE = [0.55, 0.62, 0.68, 0.78, 0.8, 0.85]


@dataclass
class Generated:
    users: int
    accounts: int
    opportunities: int
    stage_changes: int
    open: int


@contextmanager
def _explicit_timestamps(*models):
    """Let bulk inserts keep the historical created/updated times they are given."""
    fields = [
        f for m in models for f in m._meta.concrete_fields if getattr(f, "auto_now_add", False)
        or getattr(f, "auto_now", False)
    ]  # fmt: skip
    saved = [(f, f.auto_now, f.auto_now_add) for f in fields]
    for f in fields:
        f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, now, now_add in saved:
            f.auto_now, f.auto_now_add = now, now_add


def _next_id(model) -> int:
    last = model.objects.order_by("-pk").values_list("pk", flat=True).first()
    return (last or 0) + 1


def _reset_sequences(*models) -> None:
    statements = connection.ops.sequence_reset_sql(no_style(), list(models))
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def build_org(rng: random.Random, reps: int, password_hash: str) -> list[User]:
    """Regional departments, each with teams of about eight reps and a manager."""
    regions = {}
    for top, provinces in REGIONS.items():
        parent = Region.objects.create(name=top)
        regions[top] = [Region.objects.create(name=p, parent=parent) for p in provinces]
    company = Team.objects.create(name="销售中心")
    users = [User(username="admin", name="系统管理员", role=Role.ADMIN, is_staff=True,
                  is_superuser=True, password=password_hash)]  # fmt: skip
    rep_users = []
    per_team = 8
    team_count = max(1, (reps + per_team - 1) // per_team)
    departments = {top: Team.objects.create(name=f"{top}销售部", parent=company) for top in REGIONS}
    tops = list(REGIONS)
    for t in range(team_count):
        top = tops[t % len(tops)]
        team = Team.objects.create(name=f"{top}{t // len(tops) + 1}组", parent=departments[top])
        users.append(User(username=f"mgr{t:03d}", name=f"经理{t:03d}", role=Role.MANAGER,
                          team=team, region=regions[top][0], password=password_hash))  # fmt: skip
        for r in range(per_team):
            n = t * per_team + r
            if n >= reps:
                break
            rep_users.append(User(
                username=f"rep{n:04d}", name=f"销售{n:04d}", role=Role.REP, team=team,
                region=rng.choice(regions[top]), password=password_hash,
                hire_date=timezone.localdate() - timedelta(days=rng.randint(30, 1500)),
            ))  # fmt: skip
    for top, dept in departments.items():
        users.append(User(username=f"dir_{len(users)}", name=f"{top}总监", role=Role.MANAGER,
                          team=dept, region=regions[top][0], password=password_hash))  # fmt: skip
    User.objects.bulk_create(users + rep_users, batch_size=BATCH)
    return list(User.objects.filter(role=Role.REP).select_related("region"))


def generate(
    *, opportunities: int, seed: int = 1, years: int = 3, reps: int | None = None,
    open_share: float | None = None, progress=None, now=None,
) -> Generated:  # fmt: skip
    """Write the data set into an empty database. ``open_share`` forces that share of
    opportunities to be open today (for board benchmarks); by default the simulated
    history decides. ``now`` fixes "today" so that two runs give identical data."""
    rng = random.Random(seed)
    now = now or timezone.now()
    reps = reps or max(8, min(400, opportunities // 2_500))
    password_hash = make_password("loudou-bench")
    with transaction.atomic():
        rep_users = build_org(rng, reps, password_hash)
        cloud = ProductLine.objects.create(code="cloud", name="云平台", name_en="Cloud platform")
        hardware = ProductLine.objects.create(code="hw", name="智能硬件", name_en="Hardware")
        services.ensure_lost_reasons()
        pipelines = [
            services.create_pipeline_from_template("dcba", product_line=cloud),
            services.create_pipeline_from_template(
                "classic", product_line=hardware, checklist_mode="advisory"
            ),
        ]
    stages = {p.pk: list(p.open_stages()) for p in pipelines}
    terminals = {p.pk: (p.terminal("won"), p.terminal("lost")) for p in pipelines}
    reasons = list(LostReason.objects.values_list("pk", flat=True))
    skill = {u.pk: (rng.uniform(0.8, 1.15), rng.choice([None, 0, 1, 2])) for u in rep_users}

    # Accounts: about one per three opportunities, owned by reps.
    account_count = max(1, opportunities // 3)
    account_ids = []
    next_account = _next_id(Account)
    with _explicit_timestamps(Account), transaction.atomic():
        batch = []
        for i in range(account_count):
            owner = rep_users[i % len(rep_users)]
            batch.append(Account(
                id=next_account + i, name=f"{owner.region.name}客户{i:07d}有限公司",
                industry=rng.choice(INDUSTRIES), region_id=owner.region_id,
                source=rng.choice(SOURCES), owner_id=owner.pk, created_by_id=owner.pk,
                created_at=now - timedelta(days=365 * years), updated_at=now,
            ))  # fmt: skip
            account_ids.append((next_account + i, owner.pk))
            if len(batch) == BATCH:
                Account.objects.bulk_create(batch)
                batch = []
        Account.objects.bulk_create(batch)

    next_opp = _next_id(Opportunity)
    opp_batch, change_batch = [], []
    counts = {"changes": 0, "open": 0}
    span = timedelta(days=365 * years).total_seconds()

    def flush():
        with transaction.atomic():
            insert_rows(Opportunity, opp_batch)
            insert_rows(StageChange, change_batch)
        opp_batch.clear()
        change_batch.clear()

    for i in range(opportunities):
        account_id, owner_id = account_ids[rng.randrange(len(account_ids))]
        pipeline = pipelines[0] if rng.random() < 0.6 else pipelines[1]
        path = stages[pipeline.pk]
        won_stage, lost_stage = terminals[pipeline.pk]
        factor, weak = skill[owner_id]
        force_open = open_share is not None and rng.random() < open_share
        created = now - timedelta(seconds=span * rng.random() ** 1.3)
        amount = Decimal(int(60_000 * rng.lognormvariate(0, 0.8)) // 100 * 100)
        opp_id = next_opp + i
        when, index, furthest, status = created, 0, 0, "open"
        changes = [("created", None, path[0], created, None)]
        entered = created
        lost_reason = closed_at = None
        while True:
            stay = timedelta(days=rng.expovariate(1 / 18) + 0.5)
            if when + stay > now or (force_open and rng.random() < 0.35):
                break
            when += stay
            chance = ADVANCE[index] * factor * (0.6 if index == weak else 1.0)
            roll = rng.random()
            if roll < min(chance, 0.95):
                if index == len(path) - 1:
                    if force_open:
                        break
                    status, closed_at = "won", when
                    changes.append(("won", path[index], won_stage, when, when - entered))
                    break
                step = 2 if rng.random() < 0.05 and index + 2 < len(path) else 1
                changes.append(("moved", path[index], path[index + step], when, when - entered))
                index += step
                entered = when
                furthest = max(furthest, index)
            elif roll < min(chance, 0.95) + 0.04 and index > 0:
                changes.append(("moved", path[index], path[index - 1], when, when - entered))
                index -= 1
                entered = when
            else:
                if force_open:
                    break
                status, closed_at, lost_reason = "lost", when, rng.choice(reasons)
                changes.append(("lost", path[index], lost_stage, when, when - entered))
                break
        stage = won_stage if status == "won" else path[index]
        probability = {"won": Decimal(100), "lost": Decimal(0)}.get(
            status, path[index].default_probability
        )
        last_change = changes[-1][3]
        opp_batch.append(dict(
            id=opp_id, name=f"商机{opp_id:08d}", account_id=account_id, owner_id=owner_id,
            created_by_id=owner_id, pipeline_id=pipeline.pk, stage_id=stage.pk,
            furthest_stage_id=path[furthest].pk, status=status, amount=amount,
            currency="CNY", probability=probability, product_line_id=pipeline.product_line_id,
            source=rng.choice(SOURCES), closed_at=closed_at,
            stage_entered_at=closed_at if status == "won" else entered,
            lost_reason_id=lost_reason, created_at=created, updated_at=last_change,
            expected_close_date=(now + timedelta(days=rng.randint(-20, 120))).date()
            if status == "open" else closed_at.date(),
        ))  # fmt: skip
        counts["open"] += status == "open"
        for kind, from_stage, to_stage, at, stay in changes:
            change_batch.append(dict(
                opportunity_id=opp_id, kind=kind, from_stage_id=from_stage and from_stage.pk,
                to_stage_id=to_stage.pk, stay_seconds=stay and int(stay.total_seconds()),
                changed_at=at, changed_by_id=owner_id, amount=amount,
                probability=to_stage.default_probability if kind != "lost" else Decimal(0),
            ))  # fmt: skip
        counts["changes"] += len(changes)
        if len(opp_batch) >= BATCH:
            flush()
            if progress:
                progress(i + 1, opportunities)
    flush()
    _reset_sequences(Account, Opportunity, StageChange, User)
    _refresh_grades()
    _analyze()
    return Generated(
        users=User.objects.count(), accounts=account_count, opportunities=opportunities,
        stage_changes=counts["changes"], open=counts["open"],
    )  # fmt: skip


def _analyze() -> None:
    """Refresh the planner's statistics after a bulk load, as autovacuum would soon do:
    without them PostgreSQL guesses a few dozen rows and picks sorts over indexes."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            cursor.execute("VACUUM ANALYZE")  # also sets the visibility map (index-only scans)
        else:
            cursor.execute("ANALYZE")


def _refresh_grades() -> None:
    """Account grades in bulk: one UPDATE per grade, from the D/C/B/A pipeline."""
    dcba = Pipeline.objects.filter(template="dcba").first()
    if dcba is None:
        return
    won_accounts = Opportunity.objects.filter(status="won").values("account_id")
    Account.objects.filter(pk__in=won_accounts).update(grade="won")
    for stage in dcba.open_stages():  # later stages overwrite earlier ones
        if stage.code in {"D", "C", "B", "A"}:
            holders = Opportunity.objects.filter(status="open", stage=stage).values("account_id")
            Account.objects.filter(pk__in=holders).update(grade=stage.code)


LEAD_OPEN = [("new", 0.45), ("contacted", 0.35), ("qualified", 0.2)]
DISQUALIFIED_REASONS = ["无预算", "需求不匹配", "联系不上", "已选竞品", "重复线索"]


@dataclass
class GeneratedLeads:
    leads: int
    converted: int
    pooled: int
    pools: int


def _lead_pools():
    """The public pools leads may wait in: the existing ones, or two new ones (one open
    to every region, one to the first regional department)."""
    from loudou.leads.models import PublicPool

    pools = list(PublicPool.objects.filter(is_active=True).order_by("pk"))
    if pools:
        return pools
    anywhere = PublicPool.objects.create(name="全国公海", daily_claim_limit=20, max_owned=200)
    regional = PublicPool.objects.create(name="华东公海", daily_claim_limit=20, max_owned=200)
    top = Region.objects.filter(parent__isnull=True).order_by("pk").first()
    if top is not None:
        regional.regions.set([top])
    return [anywhere, regional]


def generate_leads(
    *, leads: int, seed: int = 1, years: int = 3, now=None, converted_share: float = 0.3,
    pooled_share: float = 0.1, progress=None,
) -> GeneratedLeads:  # fmt: skip
    """Add ``leads`` leads to the data set in the database (its reps, accounts and
    opportunities): ``converted_share`` of them converted into an opportunity of their
    owner (the deal's source and product line, created up to a month before it, linked
    to its account, a new contact and the deal, as leads.services.convert_lead leaves
    them), ``pooled_share`` waiting in a public pool (two are created if there are none),
    the rest owned by a rep (each rep a share of their own) — new, contacted, qualified or
    disqualified — created over ``years`` years. Bulk inserts; then the lead counts are
    rebuilt. Same seed and data set, same leads."""
    from loudou.customers.models import Contact
    from loudou.leads import summaries
    from loudou.leads.models import Lead

    rng = random.Random(f"leads-{seed}")  # its own stream: the opportunities stay the same
    now = now or timezone.now()
    reps = list(User.objects.filter(role=Role.REP).order_by("pk").values_list("pk", flat=True))
    if not reps or leads <= 0:
        return GeneratedLeads(0, 0, 0, 0)
    weights = [rng.uniform(0.5, 1.5) for _ in reps]
    with transaction.atomic():
        pools = _lead_pools()
    products = list(ProductLine.objects.order_by("pk").values_list("pk", flat=True))
    deals = list(
        Opportunity.objects.order_by("pk").values_list(
            "pk", "owner_id", "source", "account_id", "created_at", "product_line_id"
        )
    )
    converted = sorted(rng.sample(range(len(deals)), min(len(deals), int(leads * converted_share))))
    conv_at = set(rng.sample(range(leads), len(converted)))  # which lead numbers convert
    span = timedelta(days=365 * years).total_seconds()
    next_lead, next_contact = _next_id(Lead), _next_id(Contact)
    counts = {"converted": 0, "pooled": 0}
    lead_batch, contact_batch = [], []

    def flush():
        with transaction.atomic():
            insert_rows(Contact, contact_batch)
            insert_rows(Lead, lead_batch)
        lead_batch.clear()
        contact_batch.clear()

    deal_iter = iter(converted)
    for i in range(leads):
        pk = next_lead + i
        mobile = f"139{pk:08d}"
        company = f"线索客户{pk:08d}有限公司"  # its company_key: without 有限公司 (normalize)
        row = dict(
            id=pk, name=f"线索{pk:08d}", company=company, title="", mobile=mobile, phone="",
            email="", wechat="", industry=rng.choice(INDUSTRIES), disqualified_reason="",
            notes="", mobile_key=mobile, email_key="", company_key=f"线索客户{pk:08d}",
            version=1,
        )  # fmt: skip
        if i in conv_at:
            deal_pk, owner, source, account, created, product = deals[next(deal_iter)]
            contact = next_contact + counts["converted"]
            contact_batch.append(dict(
                id=contact, account_id=account, name=row["name"], title="", mobile=mobile,
                phone="", email="", wechat="", notes="", mobile_key=mobile, email_key="",
                version=1, created_at=created, updated_at=created,
            ))  # fmt: skip
            row.update(
                owner_id=owner, pool_id=None, source=source or "", product_interest_id=product,
                status="converted", converted_account_id=account, converted_contact_id=contact,
                converted_opportunity_id=deal_pk, converted_at=created,
                created_at=created - timedelta(days=rng.uniform(0, 30)), updated_at=created,
                created_by_id=owner,
            )  # fmt: skip
            row["owned_since"] = row["created_at"]
            counts["converted"] += 1
        else:
            created = now - timedelta(seconds=span * rng.random() ** 1.3)
            row.update(source=rng.choice(SOURCES), created_at=created, updated_at=created,
                       product_interest_id=rng.choice(products) if products else None)  # fmt: skip
            if rng.random() < pooled_share / (1 - converted_share):
                status = rng.choice(["new", "contacted"])
                row.update(owner_id=None, pool_id=rng.choice(pools).pk, owned_since=None,
                           status=status, released_at=created)  # fmt: skip
                counts["pooled"] += 1
            else:
                owner = rng.choices(reps, weights)[0]
                status = "disqualified"
                if rng.random() >= 0.35:
                    status = rng.choices([s for s, _w in LEAD_OPEN], [w for _s, w in LEAD_OPEN])[0]
                row.update(owner_id=owner, pool_id=None, status=status, owned_since=created,
                           created_by_id=owner)  # fmt: skip
                if status == "disqualified":
                    row["disqualified_reason"] = rng.choice(DISQUALIFIED_REASONS)
        lead_batch.append(row)
        if len(lead_batch) >= BATCH:
            flush()
            if progress:
                progress(i + 1, leads)
    flush()
    _reset_sequences(Lead, Contact)
    summaries.rebuild()
    with connection.cursor() as cursor:  # the planner's statistics of the tables written
        for model in (Lead, Contact, summaries.LeadCount, summaries.LeadDealCount):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return GeneratedLeads(leads=leads, converted=counts["converted"], pooled=counts["pooled"],
                          pools=len(pools))  # fmt: skip
