"""Writes to leads and pools. Views, API, importers and the CLI all call these.

Lock contract:

- ``claim_lead`` locks the claiming rep's user row (``select_for_update``), so that one
  rep's parallel claims queue and the daily and ownership limits are counted one claim at
  a time; the claim itself is ONE conditional ``UPDATE ... WHERE owner IS NULL AND pool IS
  NOT NULL`` whose row count decides who won, so two reps clicking at once cannot both
  win. On SQLite the IMMEDIATE transaction serialises writers anyway.
- Every other lead service locks the lead row (``select_for_update``), re-reads it, and
  refuses a stale ``version`` with :class:`Conflict`.
- A refused action raises before anything is written. Each change of hands writes one
  :class:`PoolEvent` row (append-only history).
- The database itself refuses a lead that is owned and pooled at once.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.core.services import check_version
from loudou.org.models import User, assignable_owners

from . import assignment, summaries
from .choices import OPEN_STATUSES, ClaimRefusal, LeadStatus, PoolEventKind
from .dedupe import Duplicates, find_duplicates, keys_of
from .models import Lead, PoolEvent, PublicPool

LEAD_FIELDS = [
    "name", "company", "title", "mobile", "phone", "email", "wechat", "source", "region",
    "industry", "product_interest", "notes", "status",
]  # fmt: skip
# Statuses a plain edit may set; converted and disqualified have their own verbs.
EDITABLE_STATUSES = {s.value for s in OPEN_STATUSES}

DEFAULT_CONVERSION_REQUIRED = ("company", "mobile|email")


def _assign(lead: Lead, data: dict) -> None:
    unknown = set(data) - set(LEAD_FIELDS)
    if unknown:
        raise ValidationError({field: _("Unknown field.") for field in sorted(unknown)})
    if "status" in data and data["status"] not in EDITABLE_STATUSES:
        raise ValidationFailed(
            _("Use convert or disqualify to close a lead."), field="status", code="invalid"
        )
    for field, value in data.items():
        # Spaces around a pasted phone or e-mail are noise, not data.
        setattr(lead, field, value.strip() if isinstance(value, str) else value)
    keys = keys_of(lead)
    lead.mobile_key, lead.email_key, lead.company_key = keys.mobile, keys.email, keys.company


def _event(lead, kind, *, by, pool=None, owner=None, reason="", at=None) -> PoolEvent:
    return PoolEvent.objects.create(
        lead=lead, kind=kind, pool=pool, by=by, owner=owner, reason=reason[:300],
        at=at or timezone.now(),
    )  # fmt: skip


def _notify_receiver(lead: Lead, *, actor, event: PoolEvent) -> None:
    """Tell a lead's new owner they have it, unless they gave it to themself."""
    from loudou.notifications.services import notify

    if lead.owner_id is None or lead.owner_id == getattr(actor, "pk", None):
        return
    notify(
        lead.owner_id,
        _("New lead for you: %(lead)s") % {"lead": lead},
        url=lead.get_absolute_url(),
        kind="lead_assigned",
        key=f"lead-assigned:{event.pk}",
    )


def _lock(lead: Lead, version=None) -> Lead:
    locked = Lead.objects.select_for_update().get(pk=lead.pk)
    check_version(locked, version)
    return locked


def _save(lead: Lead, fields: list[str]) -> None:
    lead.version += 1
    lead.save(update_fields=[*fields, "version", "updated_at"])


# --- create and edit -------------------------------------------------------------------


@transaction.atomic
def create_lead(
    *, actor, owner=None, pool=None, assign=True, shared_with=(), **data
) -> tuple[Lead, Duplicates]:
    """Create a lead and return it with its possible duplicates (a warning, not a
    refusal). The lead goes to ``owner`` or into ``pool`` when one is given; otherwise
    the assignment rules decide (assignment.decide_one), and when none does, the actor
    owns it. Giving both an owner and a pool is refused."""
    if owner is not None and pool is not None:
        raise ValidationFailed(_("A lead is either owned or in a pool, not both."), field="pool")
    lead = Lead(created_by=actor)
    _assign(lead, data)
    lead.full_clean(exclude=["region", "product_interest", "owner", "pool", "created_by"])
    duplicates = find_duplicates(lead, user=actor)
    rule_name = ""
    if owner is None and pool is None and assign:
        decision = assignment.decide_one(lead)
        owner, pool = decision.owner, decision.pool
        rule_name = decision.rule.name if decision.rule else ""
    if owner is None and pool is None:
        owner = actor
    lead.owner, lead.pool = owner, pool
    lead.owned_since = timezone.now() if owner else None
    lead.save()
    summaries.apply(None, summaries.snapshot(lead))
    if shared_with:
        lead.shared_with.set(shared_with)
    kind = PoolEventKind.ASSIGN if rule_name else PoolEventKind.CREATE
    event = _event(lead, kind, by=actor, pool=pool, owner=owner, reason=rule_name)
    _notify_receiver(lead, actor=actor, event=event)
    return lead, duplicates


@transaction.atomic
def update_lead(lead: Lead, *, actor, version=None, shared_with=None, **data) -> Lead:
    """Change a lead's fields (not its owner, pool or final status: those have their own
    verbs). A stale ``version`` is refused with a conflict."""
    locked = _lock(lead, version)
    if not locked.is_open:
        raise Conflict(_("A converted or disqualified lead cannot be edited."), code="closed")
    before = summaries.snapshot(locked)
    if locked.pool_id and not actor.sees_everything:
        # A pooled lead is shared by everyone who may claim it: claim it to work on it.
        raise NotPermitted(_("Claim this lead from the pool before editing it."))
    _assign(locked, data)
    locked.full_clean(exclude=["region", "product_interest", "owner", "pool", "created_by"])
    locked.version += 1
    locked.save()
    summaries.apply(before, summaries.snapshot(locked))
    if shared_with is not None:
        locked.shared_with.set(shared_with)
    return locked


# --- the public pool -------------------------------------------------------------------


def _start_of_today(now):
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def claims_today(rep, pool, now=None) -> int:
    """How many leads ``rep`` claimed from ``pool`` since local midnight."""
    now = now or timezone.now()
    return PoolEvent.objects.filter(
        by=rep, kind=PoolEventKind.CLAIM, pool=pool, at__gte=_start_of_today(now)
    ).count()


def open_leads_owned(rep) -> int:
    """How many open leads ``rep`` owns (the pools' ``max_owned`` counts these)."""
    return Lead.objects.filter(owner=rep, status__in=OPEN_STATUSES).count()


def _refuse(message, code: ClaimRefusal):
    raise Conflict(message, code=code.value)


def claim_lead(lead: Lead, *, rep) -> Lead:
    """Take a pooled lead out of its pool and make ``rep`` its owner.

    Refused with a 409 :class:`Conflict` whose code says why, leaving the row unchanged:
    ``taken`` (someone owns it already, or it left the pool), ``region`` (the pool does
    not admit the rep's region or team), ``blocked`` (the rep released it less than the
    pool's ``reclaim_block_days`` ago), ``limit`` (daily claims or open leads owned at
    the pool's limit). Lock contract: the rep's user row is locked first, so parallel
    claims by one rep are counted one at a time; the claim is one conditional UPDATE whose
    row count decides the race between reps.
    """
    return _claim(
        Lead,
        lead.pk,
        rep=rep,
        owned=open_leads_owned,
        taken=_("Someone else has already taken this lead."),
        blocked=_("You released this lead; you may claim it again after %(when)s."),
        daily=_(
            "You have claimed %(n)d of %(limit)d leads from this pool today: "
            "the daily limit is reached."
        ),
        too_many=_("You own %(n)d open leads; this pool allows at most %(limit)d."),
        owned_since=True,
    )


def _claim(model, pk, *, rep, owned, taken, blocked, daily, too_many, owned_since=False):
    """The claim shared by leads and pooled accounts (see :func:`claim_lead`): the same
    checks in the same order, the messages naming the kind of record."""
    now = timezone.now()
    with transaction.atomic():
        list(User.objects.select_for_update().filter(pk=rep.pk).values_list("pk"))
        current = model.objects.select_related("pool").filter(pk=pk).first()
        if current is None or current.owner_id is not None or current.pool_id is None:
            _refuse(taken, ClaimRefusal.TAKEN)
        pool = current.pool
        admitted = PublicPool.objects.filter(pk=pool.pk).filter(PublicPool.objects.admits_q(rep))
        if not rep.sees_everything and not admitted.exists():
            _refuse(_("This pool is not open to your region or team."), ClaimRefusal.REGION)
        if (
            current.last_owner_id == rep.pk
            and current.claim_blocked_until is not None
            and now < current.claim_blocked_until
        ):
            when = timezone.localtime(current.claim_blocked_until).strftime("%Y-%m-%d %H:%M")
            _refuse(blocked % {"when": when}, ClaimRefusal.BLOCKED)
        today = claims_today(rep, pool, now)
        if today >= pool.daily_claim_limit:
            _refuse(daily % {"n": today, "limit": pool.daily_claim_limit}, ClaimRefusal.LIMIT)
        count = owned(rep)
        if count >= pool.max_owned:
            _refuse(too_many % {"n": count, "limit": pool.max_owned}, ClaimRefusal.LIMIT)
        changes = {"owner": rep, "pool": None, "version": F("version") + 1, "updated_at": now}
        if owned_since:
            changes["owned_since"] = now
        before = None
        if model is Lead:  # the lead counts need it as the UPDATE finds it: locked
            row = Lead.objects.select_for_update().filter(pk=pk).first()
            before = row and summaries.snapshot(row)
        won = model.objects.filter(pk=pk, owner__isnull=True, pool__isnull=False).update(**changes)
        if won != 1:
            _refuse(taken, ClaimRefusal.TAKEN)
        if model is Lead:
            summaries.apply(before, summaries.snapshot(Lead.objects.get(pk=pk)))
        record = {"lead" if model is Lead else "account": current}
        PoolEvent.objects.create(**record, kind=PoolEventKind.CLAIM, by=rep, pool=pool, owner=rep,
                                 at=now)  # fmt: skip
    return model.objects.get(pk=pk)


def _default_pool(lead: Lead) -> PublicPool | None:
    """Where a released lead goes when no pool is named: the pool it last came from, or
    else the first active pool open to the lead's region."""
    last = (
        PoolEvent.objects.filter(lead=lead, pool__isnull=False, pool__is_active=True)
        .order_by("-at", "-pk")
        .values_list("pool_id", flat=True)
        .first()
    )
    if last:
        return PublicPool.objects.get(pk=last)
    return _first_pool_open_to(lead.region if lead.region_id else None)


def _first_pool_open_to(region) -> PublicPool | None:
    """The first active pool open to ``region`` (a pool with no regions is open to all;
    with no region, only those are)."""
    pools = PublicPool.objects.filter(is_active=True).order_by("pk")
    if region is not None:
        for pool in pools.prefetch_related("regions"):
            regions = list(pool.regions.all())
            if not regions or any(region.path.startswith(r.path) for r in regions):
                return pool
        return None
    return pools.filter(regions__isnull=True).first()


@transaction.atomic
def release_lead(lead: Lead, *, rep, reason: str, pool: PublicPool | None = None) -> Lead:
    """Give an owned lead back to a pool (``pool``, or where it came from). The reason
    is required and kept in the history; the releasing owner may not claim it again for
    the pool's ``reclaim_block_days``. Only the owner, their manager or an admin may
    release. Lock contract: the lead row is locked."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Say why you release this lead."), field="reason")
    locked = _lock(lead)
    if locked.owner_id is None:
        raise Conflict(_("This lead is not owned by anyone."), code="not_owned")
    if not locked.is_open:
        raise Conflict(_("A converted or disqualified lead stays with its owner."), code="closed")
    if (
        locked.owner_id != rep.pk
        and not Lead.objects.visible_to(rep)
        .filter(pk=locked.pk, owner__in=assignable_owners(rep))
        .exists()
    ):
        raise NotPermitted(_("Only the owner, their manager or an admin may release it."))
    target = pool or _default_pool(locked)
    if target is None:
        raise ValidationFailed(_("Choose the pool to release the lead into."), field="pool")
    now = timezone.now()
    before = summaries.snapshot(locked)
    previous = locked.owner
    locked.last_owner = previous
    locked.owner = None
    locked.pool = target
    locked.owned_since = None
    locked.released_by = rep
    locked.released_at = now
    locked.claim_blocked_until = now + timedelta(days=target.reclaim_block_days)
    _save(locked, ["last_owner", "owner", "pool", "owned_since", "released_by",
                   "released_at", "claim_blocked_until"])  # fmt: skip
    summaries.apply(before, summaries.snapshot(locked))
    _event(locked, PoolEventKind.RELEASE, by=rep, pool=target, owner=None, reason=reason, at=now)
    return locked


@transaction.atomic
def assign_lead(lead: Lead, *, actor, to=None, pool=None, reason="") -> Lead:
    """Hand a lead to ``to`` or put it into ``pool``; with neither, the assignment rules
    decide. ``to`` must be someone the actor may give records to. Lock contract: the
    lead row is locked."""
    if to is not None and pool is not None:
        raise ValidationFailed(_("A lead is either owned or in a pool, not both."), field="pool")
    locked = _lock(lead)
    if not locked.is_open:
        raise Conflict(_("A converted or disqualified lead cannot be reassigned."), code="closed")
    if to is not None and not assignable_owners(actor).filter(pk=to.pk).exists():
        raise ValidationFailed(_("You cannot give this record to that user."), field="owner")
    if to is None and pool is None:
        decision = assignment.decide_one(locked)
        if not decision.decided:
            raise Conflict(_("No assignment rule matches this lead."), code="no_rule")
        to, pool = decision.owner, decision.pool
        reason = reason or decision.rule.name
    now = timezone.now()
    before = summaries.snapshot(locked)
    if locked.owner_id and to is None:
        locked.last_owner = locked.owner
    locked.owner, locked.pool = to, pool
    locked.owned_since = now if to else None
    _save(locked, ["owner", "pool", "owned_since", "last_owner"])
    summaries.apply(before, summaries.snapshot(locked))
    event = _event(locked, PoolEventKind.ASSIGN, by=actor, pool=pool, owner=to, reason=reason,
                   at=now)  # fmt: skip
    _notify_receiver(locked, actor=actor, event=event)
    return locked


@transaction.atomic
def disqualify_lead(lead: Lead, *, actor, reason: str, version=None) -> Lead:
    """Close a lead as disqualified, with the reason (required). The row and its history
    stay. Lock contract: the lead row is locked."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Say why the lead is disqualified."), field="reason")
    locked = _lock(lead, version)
    if not locked.is_open:
        raise Conflict(_("This lead is already closed."), code="closed")
    before = summaries.snapshot(locked)
    locked.status = LeadStatus.DISQUALIFIED
    locked.disqualified_reason = reason[:200]
    _save(locked, ["status", "disqualified_reason"])
    summaries.apply(before, summaries.snapshot(locked))
    _event(locked, PoolEventKind.DISQUALIFY, by=actor, pool=locked.pool, owner=locked.owner,
           reason=reason)  # fmt: skip
    return locked


# --- conversion ------------------------------------------------------------------------


def conversion_requirements() -> list[tuple[str, ...]]:
    """The fields a lead needs before it converts: ``LOUDOU_CONVERSION_REQUIRED``, a list
    whose entries are field names or alternatives joined by "|" ("mobile|email": one of
    them)."""
    entries = getattr(settings, "LOUDOU_CONVERSION_REQUIRED", DEFAULT_CONVERSION_REQUIRED)
    return [tuple(entry.split("|")) for entry in entries]


def missing_for_conversion(lead: Lead) -> list[str]:
    """The requirements the lead does not meet, as "mobile|email" strings."""
    return [
        "|".join(names)
        for names in conversion_requirements()
        if not any(getattr(lead, name, None) for name in names)
    ]


@transaction.atomic
def convert_lead(
    lead: Lead, *, actor, version=None, account=None, contact: dict | None = None,
    create_opportunity=True, pipeline=None, stage=None, amount=None, opportunity_name="",
    expected_close_date=None,
) -> Lead:  # fmt: skip
    """Turn an open, owned lead into an account (or attach it to ``account``, an existing
    one the caller has checked the actor may see), a contact and, unless
    ``create_opportunity`` is false, an opportunity in ``pipeline``/``stage``. Every field
    carries over (name, company, title, phones, e-mail, WeChat, source, region, industry,
    product interest, notes, collaborators); the lead row stays, marked converted and
    linked to what it became. ``contact`` overrides the contact's fields. Lock contract:
    the lead row is locked; the customers and pipeline services run in the same
    transaction, so a refusal anywhere leaves nothing behind."""
    from loudou.customers import services as customers
    from loudou.pipeline import services as pipeline_services

    locked = _lock(lead, version)
    if not locked.is_open:
        raise Conflict(_("This lead is already closed."), code="closed")
    if locked.owner_id is None:
        raise Conflict(_("Claim the lead from the pool before converting it."), code="in_pool")
    missing = missing_for_conversion(locked)
    if missing:
        first = missing[0].split("|")[0]
        raise ValidationFailed(
            _("Fill in before converting: %s") % ", ".join(m.replace("|", " / ") for m in missing),
            field=first,
            code="conversion_incomplete",
        )
    if create_opportunity and pipeline is None:
        raise ValidationFailed(_("Choose a pipeline for the opportunity."), field="pipeline")
    owner = locked.owner
    collaborators = list(locked.shared_with.all())
    before = summaries.snapshot(locked)
    if account is None:
        account = customers.create_account(
            actor=actor, owner=owner, name=locked.company or locked.name,
            industry=locked.industry, region=locked.region, source=locked.source,
            phone=locked.phone, notes=locked.notes, shared_with=collaborators,
        )  # fmt: skip
    contact_fields = {
        "name": locked.name, "title": locked.title, "mobile": locked.mobile,
        "phone": locked.phone, "email": locked.email, "wechat": locked.wechat,
        "notes": locked.notes,
    }  # fmt: skip
    contact_fields.update(contact or {})
    new_contact = customers.create_contact(account, actor=actor, **contact_fields)
    opportunity = None
    if create_opportunity:
        product = locked.product_interest
        name = opportunity_name or " · ".join(str(part) for part in (account.name, product) if part)
        opportunity = pipeline_services.create_opportunity(
            actor=actor, pipeline=pipeline, stage=stage, name=name[:200], account=account,
            amount=amount or 0, product_line=product, source=locked.source, owner=owner,
            description=locked.notes, expected_close_date=expected_close_date,
            contacts=[new_contact], shared_with=collaborators,
        )  # fmt: skip
    now = timezone.now()
    locked.status = LeadStatus.CONVERTED
    locked.converted_account = account
    locked.converted_contact = new_contact
    locked.converted_opportunity = opportunity
    locked.converted_at = now
    _save(locked, ["status", "converted_account", "converted_contact",
                   "converted_opportunity", "converted_at"])  # fmt: skip
    summaries.apply(before, summaries.snapshot(locked))
    _event(locked, PoolEventKind.CONVERT, by=actor, owner=owner, at=now)
    return locked


# --- pooled accounts -------------------------------------------------------------------


def owned_accounts(rep) -> int:
    """How many accounts ``rep`` owns (a pool's ``max_owned`` limits these too)."""
    from loudou.customers.models import Account

    return Account.objects.filter(owner=rep).count()


def claim_account(account, *, rep):
    """Take a pooled account out of its pool and make ``rep`` its owner, under the same
    rules as a lead: the pool must admit the rep's region and team, the rep's claims
    from the pool today (leads and accounts together) stay under the daily limit, the
    accounts they own under ``max_owned``, and a rep who released it waits the pool's
    block days. Refused with a 409 whose code says why, changing nothing. Lock contract
    as for leads: the rep's row is locked, the claim is one conditional UPDATE."""
    from loudou.customers.models import Account

    return _claim(
        Account,
        account.pk,
        rep=rep,
        owned=owned_accounts,
        taken=_("Someone else has already taken this account."),
        blocked=_("You released this account; you may claim it again after %(when)s."),
        daily=_("You have claimed %(n)d of %(limit)d from this pool today: the limit is reached."),
        too_many=_("You own %(n)d accounts; this pool allows at most %(limit)d."),
    )


@transaction.atomic
def create_pooled_account(*, actor, pool: PublicPool, **data):
    """Create an account straight into ``pool`` (unowned, a "created" pool history row),
    for reps of the pool's regions to claim. Managers and administrators only, into a
    pool they may see. The customers service validates the fields; a refusal leaves
    nothing behind."""
    from loudou.customers.models import Account
    from loudou.customers.services import create_account

    if not (actor.sees_everything or actor.managed_team_path):
        raise NotPermitted(_("Only a manager or an administrator may fill a pool."))
    if not PublicPool.objects.visible_to(actor).filter(pk=pool.pk, is_active=True).exists():
        raise ValidationFailed(_("Choose an open pool you may see."), field="pool")
    data.pop("owner", None)
    account = create_account(actor=actor, **data)
    now = timezone.now()
    Account.objects.filter(pk=account.pk).update(owner=None, pool=pool, updated_at=now)
    PoolEvent.objects.create(account=account, kind=PoolEventKind.CREATE, by=actor, pool=pool,
                             at=now)  # fmt: skip
    return Account.objects.get(pk=account.pk)


@transaction.atomic
def release_account(account, *, rep, reason: str, pool: PublicPool | None = None):
    """Put an owned account into a pool (``pool``, or the first active pool open to its
    region) with a reason; the releasing owner may not claim it again for the pool's
    block days. Only the owner, their manager or an admin may. Lock contract: the
    account row is locked."""
    from loudou.customers.models import Account

    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Say why you release this account."), field="reason")
    locked = Account.objects.select_for_update().get(pk=account.pk)
    if locked.owner_id is None:
        raise Conflict(_("This account is not owned by anyone."), code="not_owned")
    if locked.owner_id != rep.pk and not assignable_owners(rep).filter(pk=locked.owner_id).exists():
        raise NotPermitted(_("Only the owner, their manager or an admin may release it."))
    target = pool or _first_pool_open_to(locked.region if locked.region_id else None)
    if target is None:
        raise ValidationFailed(_("Choose the pool to release the account into."), field="pool")
    now = timezone.now()
    locked.last_owner_id = locked.owner_id
    locked.owner = None
    locked.pool = target
    locked.claim_blocked_until = now + timedelta(days=target.reclaim_block_days)
    locked.version += 1
    locked.save(update_fields=["last_owner", "owner", "pool", "claim_blocked_until", "version",
                               "updated_at"])  # fmt: skip
    PoolEvent.objects.create(account=locked, kind=PoolEventKind.RELEASE, by=rep, pool=target,
                             reason=reason[:300], at=now)  # fmt: skip
    return locked


# --- recycling -----------------------------------------------------------------------


def sweep(now=None, *, dry_run: bool = False):
    """Run the auto-recycle rules (recycle.py): neglected leads go back to their pools,
    owners are warned before. Idempotent, set-based, safe with parallel workers."""
    from . import recycle

    return recycle.sweep(now, dry_run=dry_run)


def hand_over_leads(from_user, *, to=None, pool=None, by=None, now=None, reason="") -> dict:
    """Move every lead ``from_user`` owns: the open ones into ``pool`` when one is given,
    everything else to ``to``. Set-based (see :func:`move_for_handover`). The caller
    holds the transaction and has checked who may do this. Returns the counts moved."""
    now = now or timezone.now()
    owned = Lead.objects.filter(owner=from_user)
    moved = {"into_pool": 0, "to_receiver": 0}
    args = {"from_user": from_user, "by": by, "now": now, "reason": reason}
    if pool is not None:
        leaving = owned.filter(status__in=list(OPEN_STATUSES))
        moved["into_pool"] = move_for_handover(leaving, pool=pool, **args)
    if to is not None:
        moved["to_receiver"] = move_for_handover(owned, to=to, **args)
    return moved


def move_for_handover(records, *, from_user, to=None, pool=None, by=None, now=None,
                      reason="") -> int:  # fmt: skip
    """Hand the leads or accounts of the queryset ``records`` (owned by ``from_user``)
    to ``to``, or put them into ``pool``: one ``INSERT ... SELECT`` of "handed over"
    history rows and one UPDATE, whatever their number. A record given to a person
    starts a new ownership (its recycle clock restarts); a pooled one remembers
    ``from_user`` as its last owner, who is not blocked from claiming it. The caller
    (org/handover.py) holds the transaction. Returns how many records moved."""
    from .recycle import insert_events

    now = now or timezone.now()
    is_lead = records.model is Lead
    column = "lead_id" if is_lead else "account_id"
    events = {"kind": PoolEventKind.HANDOVER, "at": now, "reason": reason,
              "by_id": getattr(by, "pk", None), "column": column}  # fmt: skip
    changes = {"last_owner": from_user, "version": F("version") + 1, "updated_at": now}
    if pool is not None:
        insert_events(records, pool=pool, **events)
        changes.update(owner=None, pool=pool, claim_blocked_until=None)
        if is_lead:
            changes.update(owned_since=None, released_at=now, released_by=by,
                           recycle_warned_at=None)  # fmt: skip
    else:
        insert_events(records, pool=None, owner_id=to.pk, **events)
        changes["owner"] = to
        if is_lead:
            changes.update(owned_since=now, recycle_warned_at=None)
    if not is_lead:
        return records.update(**changes)
    target = (None, pool.pk) if pool is not None else (to.pk, None)
    with summaries.moving_to(records, *target):
        return records.update(**changes)


# --- pools -------------------------------------------------------------------------------

POOL_FIELDS = {
    "name", "daily_claim_limit", "max_owned", "reclaim_block_days", "no_follow_up_days",
    "not_converted_days", "warn_days_before", "is_active",
}  # fmt: skip


@transaction.atomic
def create_pool(*, actor, regions=(), teams=(), **data) -> PublicPool:
    """Create a public pool (admins only)."""
    if not actor.sees_everything:
        raise NotPermitted()
    unknown = set(data) - POOL_FIELDS
    if unknown:
        raise ValidationError({field: _("Unknown field.") for field in sorted(unknown)})
    pool = PublicPool(**data)
    pool.full_clean()
    pool.save()
    pool.regions.set(regions)
    pool.teams.set(teams)
    return pool
