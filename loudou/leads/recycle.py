"""The auto-recycle sweep (DOMAIN §5): owned open leads, and owned accounts, that a rule
says were neglected go back into a public pool; their owners are warned some days before.

Rules: the active :class:`~loudou.leads.models.RecycleRule` rows in order (each for
leads or for accounts; by region, product line and, for accounts, customer grade), then
each active pool's own "recycle after N days without follow-up / not converted" settings,
which apply to the leads of the pool's regions. For a record owned since a moment
``since``, ``days`` = N and the sweep's ``now``, with ``cutoff`` = now − N days:

- no follow-up: owned since before the cutoff and no activity (call, visit... of the
  activities app, looked up by name so that this module does not import it) on the record
  since the cutoff; for a lead also not edited (``updated_at``) since;
- not converted: owned since before the cutoff and — a lead — still open, or — an
  account — no deal of it ever won;
- no won deal: owned since before the cutoff and — a lead — still open (a lead has no
  deal until it converts), or — an account — no deal won since the cutoff.

A lead's ``since`` is ``owned_since`` (or its creation); an account's is its latest pool
history row that gave it an owner (claim, assignment, hand-over), or its creation.
A lead's warning is marked in ``recycle_warned_at``; an account's is a "warned" pool
history row. Either is due again only after a new owner or a follow-up since.

The sweep is set-based and evaluates each rule's conditions once per row: for each rule
it walks the table in primary-key ranges of :data:`CHUNK` rows and, in each range, in one
transaction, copies the ids and owners of the rows due now or due for a warning into a
temporary table (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so a parallel
sweep skips them; SQLite's IMMEDIATE transaction serialises writers) and marks the warned
ones with one UPDATE; once every rule has had its turn on the range, it writes each
rule's history with one ``INSERT ... SELECT`` and moves its rows with one UPDATE, reading
the ids from that table (a record a rule recycles is left out of the later rules' turns,
as if pooled already). No id passes through Python; the number of queries per
range does not depend on the number of rows. A second sweep, or one running in parallel,
finds nothing left to do: recycled records are pooled, warned ones are marked, and the
notifications carry a dedupe key. Owners receive one summary notification per rule.
"""

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models import fields as model_fields
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from loudou.org.models import Region, User

from .choices import OPEN_STATUSES, PoolEventKind, RecycleKind
from .models import Lead, PoolEvent, PublicPool, RecycleRule

CHUNK = 100_000
# History rows the lead rules must have written for the account rules to refresh the
# history table's planner statistics first (PostgreSQL).
ANALYZE_AFTER = 10_000
TEMP = "loudou_recycle_batch"
# Pool history kinds that give an account a (new) owner: its "owned since" moment.
OWNING_KINDS = (PoolEventKind.CLAIM, PoolEventKind.ASSIGN, PoolEventKind.HANDOVER)


@dataclass
class RuleOutcome:
    rule: str
    pool: str
    kind: str
    days: int
    applies_to: str = "leads"
    recycled: int = 0
    warned: int = 0
    owners_recycled: dict = field(default_factory=dict)
    owners_warned: dict = field(default_factory=dict)
    source: object = field(default=None, repr=False)  # the RecycleRule


@dataclass
class SweepResult:
    now: object
    dry_run: bool
    outcomes: list = field(default_factory=list)

    @property
    def recycled(self) -> int:
        return sum(o.recycled for o in self.outcomes)

    @property
    def warned(self) -> int:
        return sum(o.warned for o in self.outcomes)

    def as_dict(self) -> dict:
        return {
            "now": self.now.isoformat(),
            "dry_run": self.dry_run,
            "recycled": self.recycled,
            "warned": self.warned,
            "rules": [
                {"rule": o.rule, "pool": o.pool, "applies_to": o.applies_to, "kind": o.kind,
                 "days": o.days, "recycled": o.recycled, "warned": o.warned}
                for o in self.outcomes
            ],
        }  # fmt: skip


def effective_rules() -> list[RecycleRule]:
    """The rules in the order they run: explicit rules by position, then every active
    pool's own settings as unsaved lead rules (no follow-up first, then not converted)."""
    rules = list(
        RecycleRule.objects.filter(active=True, pool__is_active=True)
        .select_related("pool", "region")
        .order_by("position", "pk")
    )
    for pool in PublicPool.objects.filter(is_active=True).order_by("pk"):
        for kind, days in (
            (RecycleKind.NO_FOLLOW_UP, pool.no_follow_up_days),
            (RecycleKind.NOT_CONVERTED, pool.not_converted_days),
        ):
            if days:
                rules.append(
                    RecycleRule(
                        name=str(pool), pool=pool, kind=kind, days=days,
                        warn_days_before=pool.warn_days_before,
                    )
                )  # fmt: skip
    return rules


def rule_key(rule: RecycleRule) -> str:
    return f"r{rule.pk}" if rule.pk else f"p{rule.pool_id}-{rule.kind}"


def model_of(rule: RecycleRule):
    """The model a rule recycles: Lead or customers.Account."""
    return apps.get_model("customers", "Account") if rule.for_accounts else Lead


def _activity_model(link: str = "lead"):
    """The activities app's Activity model when it exists with a ``link`` field (lead or
    account), else None."""
    try:
        model = apps.get_model("activities", "Activity")
    except LookupError:
        return None
    names = {f.name for f in model._meta.get_fields()}
    return model if {link, "occurred_at"} <= names else None


def _region_ids(paths: list[str]) -> list[int]:
    q = Q(pk__in=[])
    for path in paths:
        q |= Q(path__startswith=path)
    return list(Region.objects.filter(q).values_list("pk", flat=True))


def _won_deals(**filters):
    opportunity = apps.get_model("pipeline", "Opportunity")
    return opportunity._base_manager.filter(account=OuterRef("pk"), status="won", **filters)


def scope_q(rule: RecycleRule) -> Q:
    """Owned records the rule applies to (open leads; accounts of its grade): its region
    (and below) or else its pool's regions (none: every region), and its product line (a
    lead's product interest; an account with a deal in that line)."""
    if rule.for_accounts:
        q = Q(owner__isnull=False, pool__isnull=True)
        if rule.grade:
            q &= Q(grade=rule.grade)
    else:
        q = Q(owner__isnull=False, pool__isnull=True, status__in=list(OPEN_STATUSES))
    if rule.region_id:
        q &= Q(region_id__in=_region_ids([rule.region.path]))
    else:
        paths = [r.path for r in rule.pool.regions.all()]
        if paths:
            q &= Q(region_id__in=_region_ids(paths))
    if rule.product_interest_id:
        if rule.for_accounts:
            opportunity = apps.get_model("pipeline", "Opportunity")
            q &= Exists(
                opportunity._base_manager.filter(
                    account=OuterRef("pk"), product_line_id=rule.product_interest_id
                )
            )
        else:
            q &= Q(product_interest_id=rule.product_interest_id)
    return q


def _owned_before(rule: RecycleRule, cutoff) -> Q:
    if rule.for_accounts:
        newer_owner = PoolEvent.objects.filter(
            account=OuterRef("pk"), kind__in=OWNING_KINDS, at__gte=cutoff
        )
        return Q(created_at__lt=cutoff) & ~Exists(newer_owner)
    return Q(owned_since__lt=cutoff) | Q(owned_since__isnull=True, created_at__lt=cutoff)


def due_q(rule: RecycleRule, at) -> Q:
    """Records (of the rule's model) the rule recycles at moment ``at``."""
    cutoff = at - timedelta(days=rule.days)
    q = _owned_before(rule, cutoff)
    link = "account" if rule.for_accounts else "lead"
    if rule.kind == RecycleKind.NO_FOLLOW_UP:
        if not rule.for_accounts:
            q &= Q(updated_at__lt=cutoff)
        activity = _activity_model(link)
        if activity is not None:
            recent = activity._base_manager.filter(
                **{link: OuterRef("pk")}, occurred_at__gte=cutoff
            )
            q &= ~Exists(recent)
    elif rule.for_accounts and rule.kind == RecycleKind.NOT_CONVERTED:
        q &= ~Exists(_won_deals())
    elif rule.for_accounts and rule.kind == RecycleKind.NO_WON_DEAL:
        q &= ~Exists(_won_deals(closed_at__gte=cutoff))
    return q


def needs_warning_q(rule: RecycleRule) -> Q:
    """Records whose owner has not been warned since they got the record or last
    followed it up."""
    if rule.for_accounts:
        # An account is warned when its latest warning has nothing after it (a later
        # warning would have nothing after it either): no new owner and, for "no
        # follow-up", no activity since. Written as "no warning, or a new owner (or an
        # activity) after the latest one" — one index probe each per account — rather
        # than "no warning without anything after it", which PostgreSQL turned into a
        # scan of every warning and history row whenever its statistics lagged behind
        # the warnings just written (165 s per rule at 100,000 accounts).
        warnings = PoolEvent.objects.filter(account=OuterRef("pk"), kind=PoolEventKind.WARN)
        latest = Subquery(
            PoolEvent.objects.filter(account=OuterRef(OuterRef("pk")), kind=PoolEventKind.WARN)
            .order_by("-at")
            .values("at")[:1]
        )
        q = ~Exists(warnings) | Exists(
            PoolEvent.objects.filter(account=OuterRef("pk"), kind__in=OWNING_KINDS, at__gt=latest)
        )
        activity = _activity_model("account")
        if rule.kind == RecycleKind.NO_FOLLOW_UP and activity is not None:
            q |= Exists(
                activity._base_manager.filter(account=OuterRef("pk"), occurred_at__gt=latest)
            )
        return q
    q = Q(recycle_warned_at__isnull=True) | Q(recycle_warned_at__lt=F("owned_since"))
    if rule.kind == RecycleKind.NO_FOLLOW_UP:
        q |= Q(recycle_warned_at__lt=F("updated_at"))
        activity = _activity_model("lead")
        if activity is not None:
            q |= Exists(
                activity._base_manager.filter(
                    lead=OuterRef("pk"), occurred_at__gt=OuterRef("recycle_warned_at")
                )
            )
    return q


def candidates(rule: RecycleRule, now):
    """The rule's records due now (``_due`` = 1) or due within the warning days and not
    yet warned (``_due`` = 0), as one queryset: the sweep evaluates it once per range."""
    model = model_of(rule)
    now_q = due_q(rule, now)
    qs = model._base_manager.filter(scope_q(rule))
    if rule.warn_days_before:
        ahead = now + timedelta(days=min(rule.warn_days_before, rule.days))
        qs = qs.filter(due_q(rule, ahead)).filter(now_q | needs_warning_q(rule))
    else:
        qs = qs.filter(now_q)
    flag = Case(When(now_q, then=Value(1)), default=Value(0), output_field=IntegerField())
    return qs.annotate(_due=flag).order_by()


def insert_events(
    leads, *, kind, pool, at, reason, owner_id=None, by_id=None, column="lead_id"
) -> None:
    """One INSERT ... SELECT: a history row of ``kind`` for every record of the queryset
    ``leads`` — leads, or accounts with ``column="account_id"`` (the rows never pass
    through Python)."""
    select = leads.order_by().annotate(**_event_values(kind, pool, at, reason, owner_id, by_id))
    sql, params = select.values_list("pk", *EVENT_ALIASES).query.sql_with_params()
    _insert_event_rows(column, sql, params)


EVENT_ALIASES = ("_kind", "_pool", "_owner", "_by", "_at", "_reason")


def _event_values(kind, pool, at, reason, owner_id, by_id) -> dict:
    return {
        "_kind": Value(str(kind), output_field=model_fields.CharField()),
        "_pool": Value(getattr(pool, "pk", pool), output_field=model_fields.BigIntegerField()),
        "_owner": Value(owner_id, output_field=model_fields.BigIntegerField()),
        "_by": Value(by_id, output_field=model_fields.BigIntegerField()),
        "_at": Value(at, output_field=model_fields.DateTimeField()),
        "_reason": Value(reason[:300], output_field=model_fields.CharField()),
    }


def _insert_event_rows(column: str, select_sql: str, params) -> None:
    table = connection.ops.quote_name(PoolEvent._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(c)
        for c in (column, "kind", "pool_id", "owner_id", "by_id", "at", "reason")
    )
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) {select_sql}", params)


def describe(rule: RecycleRule) -> str:
    labels = {
        RecycleKind.NO_FOLLOW_UP: _("no follow-up for %(days)d days"),
        RecycleKind.NOT_CONVERTED: _("not converted within %(days)d days"),
        RecycleKind.NO_WON_DEAL: _("no won deal within %(days)d days"),
    }
    return labels[rule.kind] % {"days": rule.days}


# --- the batch table ---------------------------------------------------------------------


@contextmanager
def _batch_table():
    """A per-connection temporary table (id, owner_id, due) holding one range's rows.

    On SQLite the connection's page cache is raised while the sweep runs: a range's
    UPDATE touches index pages all over the table, and the default 2 MB cache would
    spill them to disk again and again. And its foreign key checks are switched off
    (when the sweep is not inside a caller's transaction, where SQLite cannot): they
    looked up the user and pool rows of every moved record twice (old and new value)
    for a third of the UPDATE's time, and every value the sweep writes is known to
    exist — a record's own id and previous owner, read in the same IMMEDIATE
    transaction that excludes every other writer, and the target pools, which each
    range's transaction checks first (:func:`_live_pools`)."""
    checks_off = False
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA cache_size")
            cache = cursor.fetchone()[0]
            cursor.execute("PRAGMA cache_size = -262144")  # 256 MB, as pages need it
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {TEMP} "
                "(id INTEGER PRIMARY KEY, owner_id INTEGER, due INTEGER, tag INTEGER)"
            )
        else:
            cache = None
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {TEMP} "
                "(id bigint PRIMARY KEY, owner_id bigint, due integer, tag integer)"
            )
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        checks_off = connection.disable_constraint_checking()
    try:
        with _no_jit():
            yield
    finally:
        if checks_off:
            connection.enable_constraint_checking()
        if cache is not None:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA cache_size = {int(cache)}")


@contextmanager
def _no_jit():
    """PostgreSQL only: no JIT compilation while the sweep runs. A range's statements
    are estimated costly enough for it (the whole table's cost), but each runs once on a
    range's rows: compiling took 0.2-0.4 s per statement, more than running it."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]
        cursor.execute("SET jit = off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('jit', %s, false)", [jit])


def _refresh_history_statistics(written: int) -> None:
    """PostgreSQL: after the lead rules wrote ``written`` history rows, refresh the
    planner's statistics of the history table before the account rules query it. Its
    statistics still described the table before (empty, on the day the rules are
    switched on): the account rules' "warned since the last owner" check was then
    planned as a scan of every history row per warned account (165 s instead of 0.1 s
    at 1,000,000 records). Autovacuum would do the same a minute later."""
    if connection.vendor == "postgresql" and written >= ANALYZE_AFTER:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(PoolEvent._meta.db_table)}")


def _live_pools(work) -> list:
    """The work items whose target pool still exists, read inside the range's
    transaction (one query): a pool deleted since the rules were read receives nothing
    (with SQLite's foreign key checks off it would otherwise receive records; on
    PostgreSQL the range would fail at commit)."""
    live = set(
        PublicPool.objects.filter(pk__in={rule.pool_id for rule, *_rest in work}).values_list(
            "pk", flat=True
        )
    )
    return [item for item in work if item[0].pool_id in live]


def _fill_batch(qs, tag: int, pending: bool = False) -> dict:
    """Copy ``qs``'s (id, owner, _due) into the batch table under ``tag`` (the rule's
    place in the range), locking the rows on PostgreSQL (``FOR UPDATE SKIP LOCKED``:
    rows a parallel sweep holds are left to it). Records an earlier rule of the range
    recycles (still in the table, moved at the end of the range) are left out, as if
    they were pooled already (``pending``: there are such records). Returns
    {(owner_id, due): count}."""
    if pending:
        qs = qs.exclude(pk__in=RawSQL(f"SELECT id FROM {TEMP}", ()))  # noqa: S611
    select = qs.annotate(_tag=Value(tag, IntegerField()))
    select = select.values_list("pk", "owner_id", "_due", "_tag")
    if connection.features.has_select_for_update_skip_locked:
        select = select.select_for_update(skip_locked=True, of=("self",))
    sql, params = select.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TEMP} (id, owner_id, due, tag) {sql}", params)
        cursor.execute(
            f"SELECT owner_id, due, COUNT(*) FROM {TEMP} WHERE tag = %s GROUP BY owner_id, due",
            [tag],
        )
        return {(owner, due): n for owner, due, n in cursor.fetchall()}


def _batch_ids(tag: int, due: int) -> RawSQL:
    return RawSQL(f"SELECT id FROM {TEMP} WHERE tag = %s AND due = %s", (tag, due))  # noqa: S611


def _batch_events(column, tag, due, *, kind, pool, at, reason) -> None:
    sql = (
        f"SELECT id, %s, %s, NULL, NULL, %s, %s FROM {TEMP} "  # noqa: S608
        "WHERE tag = %s AND due = %s"
    )
    at_value = connection.ops.adapt_datetimefield_value(at)
    _insert_event_rows(column, sql, [str(kind), pool.pk, at_value, reason[:300], tag, due])


def _clear_batch(due: int | None = None) -> None:
    """Empty the batch table (``due`` None: at the start of a range) or drop one kind of
    its rows. Emptied on PostgreSQL with TRUNCATE: a temporary table is never vacuumed,
    and DELETE left every range's rows behind as dead tuples, so each later statement
    of the sweep (and of the next sweep on the same connection) scanned them all again —
    after a backlog sweep, 320,000 dead rows made the hourly sweep's ~250 scans of the
    batch table cost 2 s. SQLite's DELETE without WHERE already empties the table."""
    with connection.cursor() as cursor:
        if due is not None:
            cursor.execute(f"DELETE FROM {TEMP} WHERE due = %s", [due])
        elif connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {TEMP}")
        else:
            cursor.execute(f"DELETE FROM {TEMP}")


def _chunks(model):
    """Ranges of CHUNK ids over the whole table. The bounds are read with two queries:
    SQLite answers a lone MIN or MAX of the primary key from the index's end, but scans
    the table for both at once."""
    ids = model._base_manager.order_by("pk").values_list("pk", flat=True)
    lo, hi = ids.first(), ids.last()
    if lo is None:
        return
    while lo <= hi:
        yield lo, lo + CHUNK
        lo += CHUNK


def _count(rule, outcome, now) -> None:
    """Dry run: what the rule would recycle and warn now, in one aggregate query."""
    from django.db.models import Count, Sum

    totals = candidates(rule, now).aggregate(n=Count("pk"), due=Sum("_due"))
    outcome.recycled = totals["due"] or 0
    outcome.warned = totals["n"] - outcome.recycled


def _reason(rule) -> str:
    return _("Recycled: %(rule)s (%(condition)s)") % {
        "rule": rule.name,
        "condition": describe(rule),
    }


def _run_range(rule, outcome, rows, now, reason, tag: int = 0, pending: bool = False) -> int:
    """Warn the rule's records among ``rows`` (one range of ids) that are due for a
    warning, and keep the ones due now in the batch table under ``tag`` for
    :func:`_recycle_range`, inside the caller's transaction. Returns how many are due.

    The warnings of every rule of a range are written before any record of it moves: a
    lead's warning mark changes no indexed column, so PostgreSQL writes it on the same
    page (a HOT update, no index entry) when the page still has room, which the moved
    rows' new versions would otherwise have taken."""
    counts = _fill_batch(rows, tag, pending)
    if not counts:
        return 0
    due = sum(n for (_owner, d), n in counts.items() if d)
    warned = sum(n for (_owner, d), n in counts.items() if not d)
    for (owner, d), n in counts.items():
        into = outcome.owners_recycled if d else outcome.owners_warned
        into[owner] = into.get(owner, 0) + n
    if warned:
        if rule.for_accounts:
            _batch_events("account_id", tag, 0, kind=PoolEventKind.WARN, pool=rule.pool,
                          at=now, reason=describe(rule))  # fmt: skip
        else:
            Lead.objects.filter(pk__in=_batch_ids(tag, 0)).update(recycle_warned_at=now)
        _clear_batch(due=0)
        outcome.warned += warned
    return due


def _recycle_range(rule, outcome, now, reason, tag: int) -> None:
    """Move the records :func:`_run_range` kept under ``tag`` into the rule's pool, each
    with a recycle history row (written first: afterwards the rows are pooled)."""
    model = model_of(rule)
    pool = rule.pool
    column = "account_id" if rule.for_accounts else "lead_id"
    _batch_events(column, tag, 1, kind=PoolEventKind.RECYCLE, pool=pool, at=now, reason=reason)
    changes = {
        "last_owner": F("owner"), "owner": None, "pool": pool,
        "claim_blocked_until": now + timedelta(days=pool.reclaim_block_days),
        "version": F("version") + 1, "updated_at": now,
    }  # fmt: skip
    if not rule.for_accounts:
        changes.update(owned_since=None, released_by=None, released_at=now,
                       recycle_warned_at=None)  # fmt: skip
    moving = model._base_manager.filter(pk__in=_batch_ids(tag, 1))
    if rule.for_accounts:
        outcome.recycled += moving.update(**changes)
        return
    from . import summaries

    with summaries.moving_to(moving, None, pool.pk):  # the lead counts, one GROUP BY
        outcome.recycled += moving.update(**changes)


def _notify_owners(rule, outcome, now) -> None:
    from loudou.notifications.services import notify_many

    stamp = now.isoformat()
    owners = set(outcome.owners_recycled) | set(outcome.owners_warned)
    languages = dict(User.objects.filter(pk__in=owners).values_list("pk", "language"))
    items = []
    key = rule_key(rule)
    accounts = rule.for_accounts
    for owner_id in sorted(owners):
        with translation.override(languages.get(owner_id) or settings.LANGUAGE_CODE):
            values = {"pool": rule.pool, "days": rule.warn_days_before,
                      "condition": describe(rule)}  # fmt: skip
            n = outcome.owners_warned.get(owner_id)
            if n:
                if accounts:
                    text = _(
                        "%(n)d of your accounts go back to pool %(pool)s within %(days)d days "
                        "unless you follow them up (%(condition)s)."
                    )
                    url = reverse("leads:recycle-due")
                else:
                    text = _(
                        "%(n)d of your leads go back to pool %(pool)s within %(days)d days "
                        "unless you follow them up (%(condition)s)."
                    )
                    url = reverse("leads:leads") + "?recycle_warned=true"
                items.append({
                    "user": owner_id, "kind": "recycle_warning", "url": url,
                    "key": f"recycle-warning:{key}:{owner_id}:{stamp}",
                    "text": text % {"n": n, **values},
                })  # fmt: skip
            n = outcome.owners_recycled.get(owner_id)
            if n:
                if accounts:
                    text = _("%(n)d of your accounts went back to pool %(pool)s (%(condition)s).")
                else:
                    text = _("%(n)d of your leads went back to pool %(pool)s (%(condition)s).")
                items.append({
                    "user": owner_id, "kind": "recycled",
                    "key": f"recycled:{key}:{owner_id}:{stamp}",
                    "url": reverse("leads:pool", args=[rule.pool_id]),
                    "text": text % {"n": n, **values},
                })  # fmt: skip
    notify_many(items)


def sweep(now=None, *, dry_run: bool = False) -> SweepResult:
    """Run every recycle rule once at ``now`` (default: the current time). With
    ``dry_run`` nothing is written and the result counts what would happen. Running it
    again at the same or a later moment recycles and warns nothing twice.

    The table is walked range by range, and every rule of the table runs on a range in
    its turn inside that range's transaction: a page of rows is written once per range,
    not once per rule (a record recycled by one rule is pooled, so a later rule leaves
    it)."""
    now = now or timezone.now()
    result = SweepResult(now=now, dry_run=dry_run)
    for rule in effective_rules():
        result.outcomes.append(
            RuleOutcome(
                rule=rule.name,
                pool=str(rule.pool),
                kind=rule.kind,
                days=rule.days,
                applies_to=rule.applies_to,
            )  # fmt: skip
        )
        result.outcomes[-1].source = rule
    if dry_run:
        with _no_jit():
            for outcome in result.outcomes:
                _count(outcome.source, outcome, now)
        return result
    with _batch_table():
        for model in (Lead, apps.get_model("customers", "Account")):
            if model is not Lead:
                _refresh_history_statistics(sum(o.recycled for o in result.outcomes))
            work = [
                (o.source, o, candidates(o.source, now), _reason(o.source))
                for o in result.outcomes
                if model_of(o.source) is model
            ]
            if not work:
                continue
            for lo, hi in _chunks(model):
                with transaction.atomic():
                    _clear_batch()
                    due = []
                    for tag, (rule, outcome, rows, reason) in enumerate(_live_pools(work)):
                        rows = rows.filter(pk__gte=lo, pk__lt=hi)
                        if _run_range(rule, outcome, rows, now, reason, tag, bool(due)):
                            due.append((rule, outcome, reason, tag))
                    for rule, outcome, reason, tag in due:
                        _recycle_range(rule, outcome, now, reason, tag)
    for outcome in result.outcomes:
        _notify_owners(outcome.source, outcome, now)
    return result


def warned_accounts(accounts):
    """The owned accounts of ``accounts`` whose latest pool history row is a recycle
    warning (nothing gave them a new owner since), annotated with ``recycle_warned_at``."""
    from django.db.models import Subquery

    latest = PoolEvent.objects.filter(account=OuterRef("pk")).order_by("-at", "-pk")
    return (
        accounts.filter(owner__isnull=False, pool__isnull=True)
        .annotate(
            last_pool_event_kind=Subquery(latest.values("kind")[:1]),
            recycle_warned_at=Subquery(latest.values("at")[:1]),
        )
        .filter(last_pool_event_kind=PoolEventKind.WARN)
    )
