"""The auto-recycle sweep (DOMAIN §5): owned open leads that a rule says were neglected
go back into a public pool; their owners are warned some days before.

Rules: the active :class:`~loudou.leads.models.RecycleRule` rows in order, then each
active pool's own "recycle after N days without follow-up / not converted" settings,
which apply to the leads of the pool's regions. Conditions, for a lead owned since
``owned_since`` (or created, when that is empty), ``days`` = N and the sweep's ``now``:

- no follow-up: owned and last changed (``updated_at``) more than N days ago, and no
  activity (call, visit... of the activities app, looked up by name so that this module
  does not import it) on the lead in the last N days;
- not converted: owned more than N days and still open;
- no won deal: the same as "not converted" for a lead, which has no deal until it
  converts (the difference matters for pooled accounts, not built yet).

The sweep is set-based: for each rule it walks the lead table in primary-key ranges of
:data:`CHUNK` rows, and in each range, in one transaction, locks the matching rows
(``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's IMMEDIATE transaction
serialises writers), moves them with one UPDATE and writes their history with one
``INSERT ... SELECT``. A second sweep, or one running in parallel, finds nothing left to
do: recycled leads are pooled, warned leads carry ``recycle_warned_at``, and the
notifications carry a dedupe key. Owners receive one summary notification per rule.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, Max, Min, OuterRef, Q, Value
from django.db.models import fields as model_fields
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from loudou.org.models import Region, User

from .choices import OPEN_STATUSES, PoolEventKind, RecycleKind
from .models import Lead, PoolEvent, PublicPool, RecycleRule

CHUNK = 100_000


@dataclass
class RuleOutcome:
    rule: str
    pool: str
    kind: str
    days: int
    recycled: int = 0
    warned: int = 0
    owners_recycled: dict = field(default_factory=dict)
    owners_warned: dict = field(default_factory=dict)


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
                {"rule": o.rule, "pool": o.pool, "kind": o.kind, "days": o.days,
                 "recycled": o.recycled, "warned": o.warned}
                for o in self.outcomes
            ],
        }  # fmt: skip


def effective_rules() -> list[RecycleRule]:
    """The rules in the order they run: explicit rules by position, then every active
    pool's own settings as unsaved rules (no follow-up first, then not converted)."""
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


def _activity_model():
    """The activities app's Activity model once it exists with a lead link, else None."""
    try:
        model = apps.get_model("activities", "Activity")
    except LookupError:
        return None
    names = {f.name for f in model._meta.get_fields()}
    return model if {"lead", "occurred_at"} <= names else None


def _region_ids(paths: list[str]) -> list[int]:
    q = Q(pk__in=[])
    for path in paths:
        q |= Q(path__startswith=path)
    return list(Region.objects.filter(q).values_list("pk", flat=True))


def scope_q(rule: RecycleRule) -> Q:
    """Owned open leads the rule applies to: its region (and below) or else its pool's
    regions (none: every region), and its product line."""
    q = Q(owner__isnull=False, pool__isnull=True, status__in=list(OPEN_STATUSES))
    if rule.region_id:
        q &= Q(region_id__in=_region_ids([rule.region.path]))
    else:
        paths = [r.path for r in rule.pool.regions.all()]
        if paths:
            q &= Q(region_id__in=_region_ids(paths))
    if rule.product_interest_id:
        q &= Q(product_interest_id=rule.product_interest_id)
    return q


def due_q(rule: RecycleRule, at) -> Q:
    """Leads the rule recycles at moment ``at``."""
    cutoff = at - timedelta(days=rule.days)
    q = Q(owned_since__lt=cutoff) | Q(owned_since__isnull=True, created_at__lt=cutoff)
    if rule.kind == RecycleKind.NO_FOLLOW_UP:
        q &= Q(updated_at__lt=cutoff)
        activity = _activity_model()
        if activity is not None:
            q &= ~Exists(activity.objects.filter(lead=OuterRef("pk"), occurred_at__gte=cutoff))
    return q


def needs_warning_q(rule: RecycleRule) -> Q:
    """Leads whose owner has not been warned since they got the lead or last followed
    it up."""
    q = Q(recycle_warned_at__isnull=True) | Q(recycle_warned_at__lt=F("owned_since"))
    if rule.kind == RecycleKind.NO_FOLLOW_UP:
        q |= Q(recycle_warned_at__lt=F("updated_at"))
        activity = _activity_model()
        if activity is not None:
            q |= Exists(
                activity.objects.filter(
                    lead=OuterRef("pk"), occurred_at__gt=OuterRef("recycle_warned_at")
                )
            )
    return q


def _chunks(qs):
    bounds = qs.aggregate(lo=Min("pk"), hi=Max("pk"))
    if bounds["lo"] is None:
        return
    lo = bounds["lo"]
    while lo <= bounds["hi"]:
        yield lo, lo + CHUNK
        lo += CHUNK


def _claim_chunk(qs):
    """The rows of ``qs`` this transaction may change, as a queryset to reuse. On
    PostgreSQL the matching rows are locked and read (``FOR UPDATE SKIP LOCKED``): a
    parallel sweep skips them, and they are passed on by id. Elsewhere (SQLite) the
    IMMEDIATE transaction already excludes every other writer, so ``qs`` itself is used
    as a subquery and no id travels through Python. None when nothing is locked."""
    if connection.features.has_select_for_update_skip_locked:
        ids = list(
            qs.select_for_update(skip_locked=True, of=("self",))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        return Lead.objects.filter(pk__in=ids) if ids else None
    return qs


def _count_owners(rows, into: dict) -> int:
    """Add the rows per owner to ``into``; returns how many rows there are."""
    from django.db.models import Count

    total = 0
    for owner_id, n in (
        rows.order_by().values("owner_id").annotate(n=Count("pk")).values_list("owner_id", "n")
    ):
        into[owner_id] = into.get(owner_id, 0) + n
        total += n
    return total


def insert_events(leads, *, kind, pool, at, reason, owner_id=None, by_id=None) -> None:
    """One INSERT ... SELECT: a history row of ``kind`` for every lead of the queryset
    ``leads`` (the rows never pass through Python)."""
    select = (
        leads.order_by()
        .annotate(
            _kind=Value(str(kind), output_field=model_fields.CharField()),
            _pool=Value(getattr(pool, "pk", None), output_field=model_fields.BigIntegerField()),
            _owner=Value(owner_id, output_field=model_fields.BigIntegerField()),
            _by=Value(by_id, output_field=model_fields.BigIntegerField()),
            _at=Value(at, output_field=model_fields.DateTimeField()),
            _reason=Value(reason[:300], output_field=model_fields.CharField()),
        )
        .values_list("pk", "_kind", "_pool", "_owner", "_by", "_at", "_reason")
    )
    sql, params = select.query.sql_with_params()
    table = connection.ops.quote_name(PoolEvent._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(c)
        for c in ("lead_id", "kind", "pool_id", "owner_id", "by_id", "at", "reason")
    )
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) {sql}", params)


def describe(rule: RecycleRule) -> str:
    labels = {
        RecycleKind.NO_FOLLOW_UP: _("no follow-up for %(days)d days"),
        RecycleKind.NOT_CONVERTED: _("not converted within %(days)d days"),
        RecycleKind.NO_WON_DEAL: _("no won deal within %(days)d days"),
    }
    return labels[rule.kind] % {"days": rule.days}


def _recycle(rule, outcome, now, dry_run) -> None:
    base = Lead.objects.filter(scope_q(rule))
    due = base.filter(due_q(rule, now))
    if dry_run:
        outcome.recycled = due.count()
        return
    pool = rule.pool
    reason = _("Recycled: %(rule)s (%(condition)s)") % {
        "rule": rule.name,
        "condition": describe(rule),
    }
    for lo, hi in _chunks(due):
        with transaction.atomic():
            rows = _claim_chunk(due.filter(pk__gte=lo, pk__lt=hi))
            if rows is None or not _count_owners(rows, outcome.owners_recycled):
                continue
            # History first: afterwards the rows no longer match ``due``.
            insert_events(rows, kind=PoolEventKind.RECYCLE, pool=pool, at=now, reason=reason)
            moved = rows.update(
                last_owner=F("owner"), owner=None, pool=pool, owned_since=None,
                released_by=None, released_at=now, recycle_warned_at=None,
                claim_blocked_until=now + timedelta(days=pool.reclaim_block_days),
                version=F("version") + 1, updated_at=now,
            )  # fmt: skip
            outcome.recycled += moved


def _warn(rule, outcome, now, dry_run) -> None:
    if not rule.warn_days_before:
        return
    ahead = now + timedelta(days=min(rule.warn_days_before, rule.days))
    soon = (
        Lead.objects.filter(scope_q(rule))
        .filter(due_q(rule, ahead))
        .exclude(due_q(rule, now))
        .filter(needs_warning_q(rule))
    )
    if dry_run:
        outcome.warned = soon.count()
        return
    for lo, hi in _chunks(soon):
        with transaction.atomic():
            rows = _claim_chunk(soon.filter(pk__gte=lo, pk__lt=hi))
            if rows is None or not _count_owners(rows, outcome.owners_warned):
                continue
            outcome.warned += rows.update(recycle_warned_at=now)


def _notify_owners(rule, outcome, now) -> None:
    from loudou.notifications.services import notify_many

    stamp = now.isoformat()
    owners = set(outcome.owners_recycled) | set(outcome.owners_warned)
    languages = dict(User.objects.filter(pk__in=owners).values_list("pk", "language"))
    items = []
    key = rule_key(rule)
    for owner_id in sorted(owners):
        with translation.override(languages.get(owner_id) or settings.LANGUAGE_CODE):
            n = outcome.owners_warned.get(owner_id)
            if n:
                items.append({
                    "user": owner_id, "kind": "recycle_warning",
                    "key": f"recycle-warning:{key}:{owner_id}:{stamp}",
                    "url": reverse("leads:leads") + "?recycle_warned=true",
                    "text": _(
                        "%(n)d of your leads go back to pool %(pool)s within %(days)d days "
                        "unless you follow them up (%(condition)s)."
                    ) % {"n": n, "pool": rule.pool, "days": rule.warn_days_before,
                         "condition": describe(rule)},
                })  # fmt: skip
            n = outcome.owners_recycled.get(owner_id)
            if n:
                items.append({
                    "user": owner_id, "kind": "recycled",
                    "key": f"recycled:{key}:{owner_id}:{stamp}",
                    "url": reverse("leads:pool", args=[rule.pool_id]),
                    "text": _("%(n)d of your leads went back to pool %(pool)s (%(condition)s).")
                    % {"n": n, "pool": rule.pool, "condition": describe(rule)},
                })  # fmt: skip
    notify_many(items)


def sweep(now=None, *, dry_run: bool = False) -> SweepResult:
    """Run every recycle rule once at ``now`` (default: the current time). With
    ``dry_run`` nothing is written and the result counts what would happen. Running it
    again at the same or a later moment recycles and warns nothing twice."""
    now = now or timezone.now()
    result = SweepResult(now=now, dry_run=dry_run)
    for rule in effective_rules():
        outcome = RuleOutcome(rule=rule.name, pool=str(rule.pool), kind=rule.kind, days=rule.days)
        _recycle(rule, outcome, now, dry_run)
        _warn(rule, outcome, now, dry_run)
        if not dry_run:
            _notify_owners(rule, outcome, now)
        result.outcomes.append(outcome)
    return result
