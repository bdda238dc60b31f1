"""Hand-over (DOMAIN §10): when a rep leaves or changes job, everything they own goes to
other people or to public pools in one transaction, with a
:class:`~loudou.org.models.HandOver` record, one
:class:`~loudou.org.models.HandOverItem` per record moved (each record's hand-over
history) and, for leads and accounts, a "handed over" row in their pool history.

"Everything they own" is every concrete subclass of :class:`~loudou.core.models.OwnedModel`
found in ``apps.get_models()``: accounts, opportunities, leads, activities, tasks,
contracts, and whatever later apps add, without changing this module.

Where each record goes, first rule that applies:

1. an open lead, when ``pool`` is given: into that pool;
2. an account, when ``account_pool`` is given: into that pool;
3. a kind named in ``by_kind`` ({"customers.account": user}): to that user;
4. a record linked to an account (``account`` field) that this hand-over gives to a
   person: to the same person, so that a customer's deals, activities and tasks stay
   together;
5. otherwise to ``to``, or split among ``receivers``: ``round_robin`` deals the records
   of each kind out in turn (by id, in the receivers' order); ``region`` gives each
   record (its region, or its account's) to the receiver whose region contains it (the
   closest; several: in turn) and the rest in turn among all receivers.

A single receiver moves each kind with one UPDATE; a split reads the ids and moves them
with one UPDATE per receiver and 5,000 records. The ``handed_over`` event is emitted once
per hand-over, after the moves (listeners read ``record.moved_to(label)``).
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models import fields as model_fields
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from loudou.core.exceptions import NotPermitted, ValidationFailed
from loudou.core.hooks import emit
from loudou.core.models import OwnedModel, VersionedModel

from .models import HandOver, HandOverItem, User, assignable_owners

LEAD_LABEL = "leads.lead"
ACCOUNT_LABEL = "customers.account"
SPLIT_METHODS = ("round_robin", "region")
CHUNK = 5000


def owned_models() -> list[type]:
    """Every concrete model that has an owner, in a stable order."""
    found = [
        m
        for m in apps.get_models()
        if issubclass(m, OwnedModel) and not m._meta.abstract and not m._meta.proxy
    ]
    return sorted(found, key=lambda m: m._meta.label_lower)


@dataclass
class Line:
    label: str  # app_label.model_name
    name: str  # verbose_name_plural, translated
    count: int


def inventory(user) -> list[Line]:
    """How many records of each kind ``user`` owns (one COUNT per kind)."""
    lines = []
    for model in owned_models():
        n = model._base_manager.filter(owner=user).count()
        lines.append(Line(model._meta.label_lower, str(model._meta.verbose_name_plural), n))
    return lines


def open_leads_of(user) -> int:
    from loudou.leads.choices import OPEN_STATUSES

    lead = apps.get_model("leads", "Lead")
    return lead._base_manager.filter(owner=user, status__in=list(OPEN_STATUSES)).count()


def check_allowed(actor, from_user, to=None) -> None:
    """An admin may hand over anyone's records; a manager those of people in their
    subtree, to people in their subtree; nobody else. ``actor`` None is the command line.
    ``to`` is one receiver or a list of them."""
    if actor is None:
        return
    if not (actor.sees_everything or actor.managed_team_path):
        raise NotPermitted(_("Only a manager or an administrator may hand over records."))
    scope = User.objects.visible_to(actor)
    if from_user.pk == actor.pk or not scope.filter(pk=from_user.pk).exists():
        raise NotPermitted(_("You may not hand over this person's records."))
    wanted = {u.pk for u in ([to] if isinstance(to, User) else (to or ())) if u is not None}
    if wanted and assignable_owners(actor).filter(pk__in=wanted).count() != len(wanted):
        raise ValidationFailed(_("You cannot give records to that user."), field="to")


# --- the plan --------------------------------------------------------------------------


@dataclass
class Move:
    """Records of one kind going to one person or one pool: ``ids`` (a split) or every
    record of the kind still owned by the leaving rep that ``where`` selects."""

    label: str
    to: User | None = None
    pool: object = None
    ids: list[int] | None = None
    where: dict = field(default_factory=dict)
    count: int = 0


@dataclass
class Plan:
    moves: list[Move] = field(default_factory=list)
    unplaced: int = 0  # records no rule gives anywhere (refused)

    def shares(self) -> list[dict]:
        merged: dict[tuple, int] = {}
        for m in self.moves:
            if m.count:
                key = (m.label, getattr(m.to, "pk", None), getattr(m.pool, "pk", None))
                merged[key] = merged.get(key, 0) + m.count
        return [
            {"label": label, "to_id": to_id, "pool_id": pool_id, "count": n}
            for (label, to_id, pool_id), n in merged.items()
        ]

    def counts(self) -> dict[str, int]:
        """Per kind, as the record keeps them: "leads.lead:pool" for the pooled ones."""
        counts: dict[str, int] = {}
        for m in self.moves:
            if m.count:
                key = f"{m.label}:pool" if m.pool is not None else m.label
                counts[key] = counts.get(key, 0) + m.count
        return counts


def _account_field(model):
    """The model's ``account`` foreign key to customers.Account, if it has one."""
    for f in model._meta.concrete_fields:
        if (
            f.name == "account"
            and f.is_relation
            and f.related_model._meta.label_lower == (ACCOUNT_LABEL)
        ):
            return f
    return None


def _region_expr(model) -> str | None:
    names = {f.name for f in model._meta.concrete_fields}
    if "region" in names:
        return "region_id"
    if _account_field(model) is not None:
        return "account__region_id"
    return None


class _Splitter:
    """Deals records out among ``receivers``: in turn, or by region first."""

    def __init__(self, receivers, method):
        self.receivers = list(receivers)
        self.method = method
        self.turn: dict = defaultdict(int)
        self.paths: dict = {}
        if method == "region":
            from .models import Region

            ids = {u.region_id for u in self.receivers if u.region_id}
            paths = dict(Region.objects.filter(pk__in=ids).values_list("pk", "path"))
            self.receiver_paths = [(u, paths.get(u.region_id, "")) for u in self.receivers]

    def _in_turn(self, key, among):
        i = self.turn[key] % len(among)
        self.turn[key] += 1
        return among[i]

    def pick(self, label, region_id):
        if self.method == "region" and region_id:
            path = self.path_of(region_id)
            fits = [(len(p), u) for u, p in self.receiver_paths if p and path.startswith(p)]
            if fits:
                depth = max(d for d, _u in fits)
                closest = [u for d, u in fits if d == depth]
                return self._in_turn((label, "region", depth, path[:depth]), closest)
        return self._in_turn(label, self.receivers)

    def path_of(self, region_id) -> str:
        if region_id not in self.paths:
            from .models import Region

            self.paths[region_id] = (
                Region.objects.filter(pk=region_id).values_list("path", flat=True).first() or ""
            )
        return self.paths[region_id]


def plan(from_user, *, to=None, receivers=(), split="round_robin", by_kind=None, pool=None,
         account_pool=None) -> Plan:  # fmt: skip
    """Where each record of ``from_user`` would go (the rules in the module docstring),
    without writing anything. Single destinations are counted; splits read the ids."""
    from loudou.leads.choices import OPEN_STATUSES

    by_kind = dict(by_kind or {})
    people = list(receivers) or ([to] if to is not None else [])
    splitter = _Splitter(people, split) if len(people) > 1 else None
    result = Plan()
    account_to: dict[int, User] = {}
    models = sorted(owned_models(), key=lambda m: m._meta.label_lower != ACCOUNT_LABEL)
    for model in models:
        label = model._meta.label_lower
        owned = model._base_manager.filter(owner=from_user)
        rest = {}
        if label == LEAD_LABEL and pool is not None:
            where = {"status__in": list(OPEN_STATUSES)}
            n = owned.filter(**where).count()
            result.moves.append(Move(label, pool=pool, where=where, count=n))
            rest = {"exclude": where}
        if label == ACCOUNT_LABEL and account_pool is not None:
            n = owned.count()
            result.moves.append(Move(label, pool=account_pool, count=n))
            continue
        remaining = owned.exclude(**rest["exclude"]) if rest else owned
        receiver = by_kind.get(label)
        account_field = _account_field(model) if label != ACCOUNT_LABEL else None
        follow = bool(account_to) and account_field is not None
        if receiver is not None or (splitter is None and not follow):
            receiver = receiver or (people[0] if people else None)
            n = remaining.count()
            if receiver is None:
                result.unplaced += n
            elif n:
                result.moves.append(Move(label, to=receiver, where=rest, count=n))
                if label == ACCOUNT_LABEL and (splitter is not None or label in by_kind):
                    # the other kinds follow their accounts to this one person
                    account_to = dict.fromkeys(remaining.values_list("pk", flat=True), receiver)
            continue
        region = _region_expr(model) if splitter is not None else None
        columns = ["pk", region or "pk", account_field.attname if account_field else "pk"]
        groups: dict[int, list[int]] = defaultdict(list)
        people_by_pk = {u.pk: u for u in people}
        for pk, region_id, account_id in remaining.order_by("pk").values_list(*columns):
            target = account_to.get(account_id) if account_field is not None else None
            if target is None and splitter is not None:
                target = splitter.pick(label, region_id if region else None)
            elif target is None:
                target = people[0] if people else None
            if target is None:
                result.unplaced += 1
                continue
            people_by_pk.setdefault(target.pk, target)
            groups[target.pk].append(pk)
            if label == ACCOUNT_LABEL:
                account_to[pk] = target
        for user_pk, ids in groups.items():
            result.moves.append(Move(label, to=people_by_pk[user_pk], ids=ids, count=len(ids)))
    return result


def validate(from_user, *, to=None, receivers=(), split="round_robin", by_kind=None,
             pool=None, account_pool=None) -> None:  # fmt: skip
    """Refuse (422) a hand-over that names nobody, names the leaving rep or someone who
    left, a closed pool, an unknown split method or kind."""
    people = [u for u in [to, *receivers, *(by_kind or {}).values()] if u is not None]
    if not people and pool is None and account_pool is None:
        raise ValidationFailed(_("Choose who receives the records, or a pool."), field="to")
    if split not in SPLIT_METHODS:
        raise ValidationFailed(_("Split in turn or by region."), field="split")
    labels = {m._meta.label_lower for m in owned_models()}
    for label in by_kind or {}:
        if label not in labels:
            raise ValidationFailed(
                _("No such kind of record: %(kind)s.") % {"kind": label}, field="by_kind"
            )
    for person in people:
        if person.pk == from_user.pk:
            raise ValidationFailed(_("Choose someone else to receive the records."), field="to")
        if not person.is_active or person.left_on is not None:
            raise ValidationFailed(_("The receiver has left or is deactivated."), field="to")
    for target, name in ((pool, "pool"), (account_pool, "account_pool")):
        if target is not None and not target.is_active:
            raise ValidationFailed(_("This pool is closed."), field=name)


# --- doing it ----------------------------------------------------------------------------


def _insert_items(qs, *, record, label, to_id, pool_id) -> None:
    """One INSERT ... SELECT of a HandOverItem row for every record of ``qs``."""
    select = (
        qs.order_by()
        .annotate(
            _h=Value(record.pk, output_field=model_fields.BigIntegerField()),
            _m=Value(label, output_field=model_fields.CharField()),
            _to=Value(to_id, output_field=model_fields.BigIntegerField()),
            _pool=Value(pool_id, output_field=model_fields.BigIntegerField()),
        )
        .values_list("_h", "_m", "pk", "_to", "_pool")
    )
    sql, params = select.query.sql_with_params()
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in ("handover_id", "model", "object_id", "to_user_id",
                                            "pool_id"))  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(HandOverItem._meta.db_table)} ({columns}) {sql}", params
        )


def _querysets(move: Move, from_user):
    model = apps.get_model(move.label)
    owned = model._base_manager.filter(owner=from_user)
    if move.ids is not None:
        for start in range(0, len(move.ids), CHUNK):
            yield owned.filter(pk__in=move.ids[start : start + CHUNK])
        return
    if "exclude" in move.where:
        yield owned.exclude(**move.where["exclude"])
    else:
        yield owned.filter(**move.where)


def _execute(move: Move, *, from_user, record, actor, now, reason) -> int:
    from loudou.leads.services import move_for_handover

    model = apps.get_model(move.label)
    moved = 0
    for qs in _querysets(move, from_user):
        _insert_items(qs, record=record, label=move.label, to_id=getattr(move.to, "pk", None),
                      pool_id=getattr(move.pool, "pk", None))  # fmt: skip
        if move.label in (LEAD_LABEL, ACCOUNT_LABEL):
            moved += move_for_handover(qs, from_user=from_user, to=move.to, pool=move.pool,
                                       by=actor, now=now, reason=reason)  # fmt: skip
            continue
        changes = {"owner": move.to}
        if issubclass(model, VersionedModel):
            changes["version"] = F("version") + 1
        if any(f.name == "updated_at" for f in model._meta.concrete_fields):
            changes["updated_at"] = now
        moved += qs.update(**changes)
    return moved


def hand_over(
    from_user, *, actor=None, to=None, pool=None, deactivate=False, left_on=None,
    receivers=(), split="round_robin", by_kind=None, account_pool=None,
) -> HandOver:  # fmt: skip
    """Give everything ``from_user`` owns away — to ``to``, or split among
    ``receivers``, with per-kind receivers in ``by_kind`` and open leads / accounts into
    ``pool`` / ``account_pool`` (the rules in the module docstring) — and optionally
    deactivate ``from_user`` (``left_on`` defaults to today). One transaction: a refusal
    changes nothing. Every receiver is notified. Lock contract: the leaving user's row
    is locked, so records created for them meanwhile wait and are handed over too or
    created after."""
    from loudou.notifications.services import notify_many

    receivers = [u for u in receivers if u is not None]
    by_kind = {k: v for k, v in (by_kind or {}).items() if v is not None}
    check_allowed(actor, from_user, [to, *receivers, *by_kind.values()])
    options = {"to": to, "receivers": receivers, "split": split, "by_kind": by_kind,
               "pool": pool, "account_pool": account_pool}  # fmt: skip
    validate(from_user, **options)
    now = timezone.now()
    reason = _("Hand-over from %(user)s") % {"user": from_user}
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=from_user.pk).values_list("pk").first()
        the_plan = plan(from_user, **options)
        if the_plan.unplaced:
            raise ValidationFailed(
                _(
                    "Only open leads and accounts can go into a pool; choose a receiver "
                    "for the other %(n)d records."
                )
                % {"n": the_plan.unplaced},
                field="to",
            )
        people = {getattr(m.to, "pk", None) for m in the_plan.moves if m.count} - {None}
        single = next(iter(people)) if len(people) == 1 else None
        record = HandOver.objects.create(
            from_user=from_user, to_user_id=single,
            pool_name=", ".join(dict.fromkeys(str(p) for p in (pool, account_pool) if p)),
            deactivated=deactivate, by=actor, at=now,
        )  # fmt: skip
        for move in the_plan.moves:
            if move.count:
                move.count = _execute(move, from_user=from_user, record=record, actor=actor,
                                      now=now, reason=reason)  # fmt: skip
        record.counts = the_plan.counts()
        record.shares = the_plan.shares()
        record.save(update_fields=["counts", "shares"])
        if deactivate:
            from_user.is_active = False
            from_user.left_on = left_on or timezone.localdate()
            from_user.save(update_fields=["is_active", "left_on"])
        emit("handed_over", record, actor=actor)
        received: dict[int, int] = defaultdict(int)
        for share in record.shares:
            if share["to_id"]:
                received[share["to_id"]] += share["count"]
        languages = dict(User.objects.filter(pk__in=received).values_list("pk", "language"))
        items = []
        for user_id, n in received.items():
            with translation.override(languages.get(user_id) or settings.LANGUAGE_CODE):
                text = _("%(user)s handed %(n)d records over to you.") % {
                    "user": from_user,
                    "n": n,
                }
            items.append({"user": user_id, "text": text, "url": record.get_absolute_url(),
                          "kind": "handover", "key": f"handover:{record.pk}"})  # fmt: skip
        notify_many(items)
    return record


def preview(from_user, **options) -> Plan:
    """The plan with its checks, for the page, the API and ``--dry-run``."""
    validate(from_user, **options)
    return plan(from_user, **options)


def history_of(obj):
    """The hand-overs that moved ``obj`` (any owned record), oldest first."""
    return (
        HandOverItem.objects.filter(model=obj._meta.label_lower, object_id=obj.pk)
        .select_related("handover__from_user", "to_user")
        .order_by("handover__at", "pk")
    )
