"""Assignment rules: who receives a new lead the moment it arrives (DOMAIN §5).

The active rules are evaluated in order (``position``); the first rule whose conditions
all match the lead and whose method finds someone decides. A rule whose reps are all at
capacity passes the lead on to the next matching rule. Methods:

- round robin: the named reps in turn (by id), continuing after the rule's cursor;
- least open load: the named rep owning the fewest open leads (ties: lowest id);
- fixed rep: always the same rep;
- pool: into the rule's public pool.

:class:`RuleBook` loads the rules, their reps and every candidate's open load once (one
GROUP BY), then decides any number of leads in memory: :func:`assign_many` handles a bulk
import with a handful of queries. :func:`preview` answers "who would receive this?"
without writing anything.
"""

from bisect import bisect_right
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from loudou.org.models import Region, User

from .choices import OPEN_STATUSES, AssignmentMethod, PoolEventKind
from .models import AssignmentRule, Lead, PublicPool


@dataclass
class Facts:
    """What the rule conditions look at, taken from a lead or from plain fields."""

    region_path: str = ""
    industry: str = ""
    source: str = ""
    product_interest_id: int | None = None


@dataclass
class Decision:
    """Who receives a lead: an owner, a pool, or neither (no rule decided)."""

    rule: AssignmentRule | None = None
    owner: User | None = None
    pool: PublicPool | None = None

    @property
    def decided(self) -> bool:
        return self.owner is not None or self.pool is not None


def facts_of(obj, region_paths: dict | None = None) -> Facts:
    """Facts of a lead, or of a dict of lead fields (``region``/``region_id``,
    ``industry``, ``source``, ``product_interest``/``product_interest_id``)."""
    get = (
        obj.get
        if isinstance(obj, dict)
        else (lambda name, default=None: getattr(obj, name, default))
    )
    region = get("region")
    region_id = get("region_id") or (region.pk if region is not None else None)
    product = get("product_interest")
    product_id = get("product_interest_id") or (product.pk if product is not None else None)
    if region is not None and not region_paths:
        path = region.path
    elif region_id:
        if region_paths is None:
            region_paths = dict(Region.objects.filter(pk=region_id).values_list("pk", "path"))
        path = region_paths.get(region_id, "")
    else:
        path = ""
    return Facts(
        region_path=path,
        industry=get("industry") or "",
        source=get("source") or "",
        product_interest_id=product_id,
    )


@dataclass
class RuleBook:
    """The active rules with their candidates and loads, loaded once."""

    rules: list = field(default_factory=list)
    reps: dict = field(default_factory=dict)  # rule pk → sorted candidate users
    loads: dict = field(default_factory=dict)  # user pk → open leads owned
    moved: set = field(default_factory=set)  # rules whose cursor advanced
    users: dict = field(default_factory=dict)  # user pk → active candidate
    _rep_ids: dict = field(default_factory=dict)  # rule pk → its reps' sorted ids

    @classmethod
    def load(cls, *, lock: bool = False) -> "RuleBook":
        """Read the rules (locked with ``select_for_update`` when ``lock``, so that
        concurrent assignments take turns on the cursors and loads) and the open load
        of every candidate rep in one GROUP BY."""
        qs = AssignmentRule.objects.filter(active=True).order_by("position", "pk")
        if lock:
            qs = qs.select_for_update(of=("self",))
        rules = list(qs.select_related("region", "pool", "fixed_rep"))
        through = AssignmentRule.reps.through
        members: dict[int, list[int]] = {}
        for rule_id, user_id in through.objects.filter(
            assignmentrule_id__in=[r.pk for r in rules]
        ).values_list("assignmentrule_id", "user_id"):
            members.setdefault(rule_id, []).append(user_id)
        wanted = {uid for ids in members.values() for uid in ids}
        wanted |= {r.fixed_rep_id for r in rules if r.fixed_rep_id}
        users = {
            u.pk: u
            for u in User.objects.filter(pk__in=wanted, is_active=True, left_on__isnull=True)
        }
        reps = {
            rule.pk: [users[uid] for uid in sorted(members.get(rule.pk, [])) if uid in users]
            for rule in rules
        }
        loads = dict(
            Lead.objects.filter(owner_id__in=list(users), status__in=OPEN_STATUSES)
            .order_by()
            .values("owner_id")
            .annotate(n=Count("pk"))
            .values_list("owner_id", "n")
        )
        return cls(rules=rules, reps=reps, loads=loads, users=users)

    # --- matching ---------------------------------------------------------------------
    @staticmethod
    def matches(rule: AssignmentRule, facts: Facts) -> bool:
        if rule.region_id and not facts.region_path.startswith(rule.region.path):
            return False
        if rule.industry and rule.industry != facts.industry:
            return False
        if rule.source and rule.source != facts.source:
            return False
        return not (
            rule.product_interest_id and rule.product_interest_id != facts.product_interest_id
        )

    def _has_room(self, rule, user) -> bool:
        return rule.capacity is None or self.loads.get(user.pk, 0) < rule.capacity

    def _pick(self, rule) -> Decision:
        if rule.method == AssignmentMethod.POOL:
            return Decision(rule=rule, pool=rule.pool) if rule.pool_id else Decision()
        if rule.method == AssignmentMethod.FIXED_REP:
            user = self.users.get(rule.fixed_rep_id)
            if user is not None and self._has_room(rule, user):
                return Decision(rule=rule, owner=user)
            return Decision()
        ids = self.rep_ids(rule)  # sorted; plain ints are cheap to compare by the 100,000
        if not ids:
            return Decision()
        loads, capacity = self.loads, rule.capacity
        if rule.method == AssignmentMethod.LEAST_LOAD:
            best = min(ids, key=lambda pk: (loads.get(pk, 0), pk))
            if capacity is not None and loads.get(best, 0) >= capacity:
                return Decision()  # the least loaded is full: so is everyone
            return Decision(rule=rule, owner=self.users[best])
        # round robin: the first rep with room after the cursor, wrapping around
        # (bisect finds the cursor's place without a scan)
        start = bisect_right(ids, rule.rr_cursor)
        for i in range(len(ids)):
            pk = ids[(start + i) % len(ids)]
            if capacity is None or loads.get(pk, 0) < capacity:
                rule.rr_cursor = pk
                self.moved.add(rule.pk)
                return Decision(rule=rule, owner=self.users[pk])
        return Decision()

    def rep_ids(self, rule) -> list[int]:
        ids = self._rep_ids.get(rule.pk)
        if ids is None:
            ids = self._rep_ids[rule.pk] = [u.pk for u in self.reps.get(rule.pk, [])]
        return ids

    def decide(self, facts: Facts) -> Decision:
        """The first matching rule that finds someone; counts the new lead in the
        receiver's load so that the next decision sees it."""
        return self.decide_among([r for r in self.rules if self.matches(r, facts)])

    def decide_among(self, rules) -> Decision:
        """:meth:`decide` over rules already known to match, in order."""
        for rule in rules:
            decision = self._pick(rule)
            if decision.decided:
                if decision.owner is not None:
                    self.loads[decision.owner.pk] = self.loads.get(decision.owner.pk, 0) + 1
                return decision
        return Decision()

    def save_cursors(self) -> None:
        """Store the round-robin cursors that moved (one UPDATE per moved rule)."""
        for rule in self.rules:
            if rule.pk in self.moved:
                AssignmentRule.objects.filter(pk=rule.pk).update(rr_cursor=rule.rr_cursor)
        self.moved.clear()


def preview(lead_fields) -> Decision:
    """Who would receive a lead with these fields, without writing anything (the
    round-robin cursor does not move)."""
    return RuleBook.load().decide(facts_of(lead_fields))


@transaction.atomic
def decide_one(lead_fields) -> Decision:
    """Decide the receiver of one new lead and advance the rule's cursor. Lock contract:
    the active rules are locked (``select_for_update``) until the caller's transaction
    ends, so concurrent assignments take turns and never hand out the same turn or
    overfill a rep."""
    book = RuleBook.load(lock=True)
    decision = book.decide(facts_of(lead_fields))
    book.save_cursors()
    return decision


FACT_FIELDS = ("pk", "region_id", "industry", "source", "product_interest_id",
               "converted_opportunity_id")  # fmt: skip
BATCH = "loudou_assign_batch"


@transaction.atomic
def assign_many(leads, *, actor=None) -> list[Decision]:
    """Assign saved, unowned and unpooled leads by the rules, in bulk. ``leads`` is a
    queryset (only the columns the rules look at are read) or a list of leads (which get
    their new owner and pool set too). Rules and loads are loaded once, and the rules
    matching each distinct combination of region, industry, source and product interest
    are found once. The decisions go into a temporary table (one executemany, or COPY on
    PostgreSQL), from which one UPDATE moves every lead and one ``INSERT ... SELECT``
    writes their history — the same handful of queries for ten leads or a hundred
    thousand. Each receiving rep gets one notification. Leads no rule decides stay as
    they are. Returns one decision per lead, in order."""
    from django.db.models import QuerySet

    objects = None if isinstance(leads, QuerySet) else list(leads)
    if objects is None:
        rows = list(leads.order_by("pk").values_list(*FACT_FIELDS))
    else:
        rows = [tuple(getattr(lead, name) for name in FACT_FIELDS) for lead in objects]
    book = RuleBook.load(lock=True)
    paths = dict(
        Region.objects.filter(pk__in={row[1] for row in rows if row[1]}).values_list("pk", "path")
    )
    now = timezone.now()
    decisions = []
    batch = []
    counts: dict[int, int] = {}
    matching: dict[tuple, list] = {}
    actor_id = getattr(actor, "pk", None)
    with_deals = any(row[-1] for row in rows)  # the lead counts: any converted lead?
    for pk, region_id, industry, source, product_id, _deal in rows:
        key = (region_id, industry, source, product_id)
        rules = matching.get(key)
        if rules is None:
            facts = Facts(paths.get(region_id, ""), industry or "", source or "", product_id)
            rules = matching[key] = [r for r in book.rules if book.matches(r, facts)]
        decision = book.decide_among(rules)
        decisions.append(decision)
        if decision.decided:
            owner_id = decision.owner.pk if decision.owner is not None else None
            batch.append((pk, owner_id, decision.pool.pk if decision.pool else None,
                          decision.rule.name[:300]))  # fmt: skip
            if owner_id is not None and owner_id != actor_id:
                counts[owner_id] = counts.get(owner_id, 0) + 1
    if batch:
        _write(batch, now=now, actor_id=actor_id, with_deals=with_deals)
    if objects is not None:
        for lead, decision in zip(objects, decisions, strict=True):
            if decision.decided:
                lead.owner, lead.pool = decision.owner, decision.pool
                lead.owned_since = now if decision.owner else None
                lead.version += 1
    book.save_cursors()
    _notify_receivers(counts, now=now)
    return decisions


def _write(batch: list[tuple], *, now, actor_id, with_deals: bool = True) -> None:
    """Move the leads of ``batch`` (id, owner, pool, reason) and write their history
    (``with_deals=False``: none of them was converted into a deal)."""
    from django.db import connection

    from . import summaries
    from .models import PoolEvent

    quote = connection.ops.quote_name
    lead_table, event_table = quote(Lead._meta.db_table), quote(PoolEvent._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {BATCH} "
                "(id bigint PRIMARY KEY, owner_id bigint, pool_id bigint, reason varchar(300))"
            )
            # TRUNCATE, not DELETE: a temporary table is never vacuumed, and each call's
            # deleted rows would stay in it for every later call on this connection to
            # scan again.
            cursor.execute(f"TRUNCATE {BATCH}")
            with cursor.cursor.copy(
                f"COPY {BATCH} (id, owner_id, pool_id, reason) FROM STDIN"
            ) as copy:
                for row in batch:
                    copy.write_row(row)
        else:
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {BATCH} "
                "(id INTEGER PRIMARY KEY, owner_id INTEGER, pool_id INTEGER, reason TEXT)"
            )
            cursor.execute(f"DELETE FROM {BATCH}")
            cursor.executemany(f"INSERT INTO {BATCH} VALUES (%s, %s, %s, %s)", batch)
        # Correlated look-ups in the batch's primary key: portable to every SQLite and
        # PostgreSQL version (no UPDATE ... FROM).
        pick = f"(SELECT b.%s FROM {BATCH} b WHERE b.id = {lead_table}.id)"
        # the lead counts: the batch's leads move to their new owner and pool
        summaries.move_to_batch(BATCH, deals=with_deals)
        cursor.execute(
            f"UPDATE {lead_table} SET owner_id = {pick % 'owner_id'}, "
            f"pool_id = {pick % 'pool_id'}, "
            f"owned_since = CASE WHEN {pick % 'owner_id'} IS NULL THEN NULL ELSE %s END, "
            f"version = version + 1, updated_at = %s "
            f"WHERE id IN (SELECT id FROM {BATCH})",
            [at, at],
        )
        cursor.execute(
            f"INSERT INTO {event_table} (lead_id, kind, pool_id, owner_id, by_id, at, reason) "
            f"SELECT id, %s, pool_id, owner_id, %s, %s, reason FROM {BATCH}",
            [str(PoolEventKind.ASSIGN), actor_id, at],
        )


def _notify_receivers(counts: dict, *, now) -> None:
    """One notification per receiving rep: how many new leads they got."""
    from django.urls import reverse
    from django.utils.translation import gettext as _

    from loudou.notifications.services import notify_many

    stamp = now.isoformat()
    notify_many(
        {
            "user": owner_id, "kind": "lead_assigned", "key": f"leads-assigned:{stamp}",
            "url": reverse("leads:leads") + f"?owner={owner_id}&status=new",
            "text": _("%(n)d new leads were assigned to you.") % {"n": n},
        }
        for owner_id, n in counts.items()
    )  # fmt: skip
