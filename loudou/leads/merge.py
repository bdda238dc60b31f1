"""Merge two duplicate leads, accounts or contacts into one (DOMAIN §5).

The kept record takes the fields the user chose from the other one; every row that
pointed at the other record is re-pointed at the kept one — found generically from the
model's relations (``_meta``), so related objects of apps written later (activities,
contracts...) follow without changing this module; the collaborators (``shared_with``)
are united; many-to-many links are united. Then the other record is deleted, and a
:class:`~loudou.leads.models.MergeRecord` keeps all of its fields as JSON, the fields
taken and how many rows moved. One transaction; both rows are locked; both must be
within the user's scope.
"""

import json

from django.core import serializers
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.customers.models import Account, Contact
from loudou.pipeline import summaries as won_counts

from . import summaries
from .choices import OPEN_STATUSES, LeadStatus, PoolEventKind
from .models import Lead, MergeRecord, PoolEvent
from .normalize import normalize_company, normalize_email, normalize_phone

MODELS = {"lead": Lead, "account": Account, "contact": Contact}

# Fields a merge never copies: bookkeeping, ownership and state with their own verbs.
NOT_CHOOSABLE = {
    "id", "created_at", "updated_at", "version", "created_by", "owner", "pool", "status",
    "disqualified_reason", "converted_account", "converted_contact", "converted_opportunity",
    "converted_at", "owned_since", "last_owner", "released_by", "released_at",
    "claim_blocked_until", "recycle_warned_at", "grade",
}  # fmt: skip


def choosable_fields(model) -> list:
    """The fields the user picks between, in the model's order."""
    return [
        f
        for f in model._meta.concrete_fields
        if f.editable and not f.primary_key and f.name not in NOT_CHOOSABLE
    ]


def model_for(name: str):
    try:
        return MODELS[name]
    except KeyError:
        raise ValidationFailed(_("Choose lead, account or contact."), field="model") from None


def _visible(model, user):
    return model.objects.visible_to(user)


def candidates(obj, user, limit: int = 20) -> list:
    """Possible duplicates of ``obj`` the user may see (the same normalised keys)."""
    model = type(obj)
    if model is Lead:
        from .dedupe import find_duplicates

        return find_duplicates(obj, user=user, limit=limit).leads
    if model is Account:
        if not obj.name_key:
            return []
        q = Q(name_key=obj.name_key)
    else:
        q = Q(pk__in=[])
        if obj.mobile_key:
            q |= Q(mobile_key=obj.mobile_key)
        if obj.email_key:
            q |= Q(email_key=obj.email_key)
    return list(_visible(model, user).filter(q).exclude(pk=obj.pk).order_by("pk")[:limit])


def _pooled(obj) -> bool:
    """Whether ``obj`` (or a contact's account) waits in a public pool."""
    if isinstance(obj, Contact):
        return Account.objects.filter(pk=obj.account_id, pool__isnull=False).exists()
    return getattr(obj, "pool_id", None) is not None


def _refresh_keys(obj) -> None:
    if isinstance(obj, Lead):
        from .dedupe import keys_of

        keys = keys_of(obj)
        obj.mobile_key, obj.email_key, obj.company_key = keys.mobile, keys.email, keys.company
    elif isinstance(obj, Account):
        obj.name_key = normalize_company(obj.name)
    elif isinstance(obj, Contact):
        obj.mobile_key = normalize_phone(obj.mobile) or normalize_phone(obj.phone)
        obj.email_key = normalize_email(obj.email)


def _repoint(model, keep, lose) -> dict:
    """Point every relation of ``lose`` at ``keep``; returns rows moved per relation."""
    moved = {}
    for rel in model._meta.get_fields(include_hidden=True):
        if not rel.auto_created or rel.concrete:
            continue
        label = f"{rel.related_model._meta.label_lower}.{rel.field.name}"
        if rel.many_to_many:
            field = rel.field
            through = field.remote_field.through
            ours, theirs = field.m2m_reverse_field_name(), field.m2m_field_name()
            rows = through._base_manager.filter(**{ours: lose.pk})
            rows.filter(
                **{f"{theirs}__in": through._base_manager.filter(**{ours: keep.pk}).values(theirs)}
            ).delete()
            n = rows.update(**{ours: keep.pk})
        elif rel.one_to_many or rel.one_to_one:
            if rel.related_model._meta.auto_created:
                continue  # a many-to-many table: handled with its field
            try:
                with transaction.atomic():
                    n = rel.related_model._base_manager.filter(**{rel.field.name: lose}).update(
                        **{rel.field.name: keep}
                    )
            except IntegrityError:
                raise Conflict(
                    _("Both records have a %(what)s; they cannot be merged.")
                    % {"what": rel.related_model._meta.verbose_name},
                    code="merge_conflict",
                ) from None
        else:
            continue
        if n:
            moved[label] = moved.get(label, 0) + n
    for field in model._meta.many_to_many:  # the records' own links, e.g. shared_with
        linked = list(getattr(lose, field.name).all())
        if linked:
            getattr(keep, field.name).add(*linked)
            moved[f"{model._meta.label_lower}.{field.name}"] = len(linked)
    return moved


def merge(model_name: str, keep_id: int, lose_id: int, *, actor, take=()) -> MergeRecord:
    """Merge record ``lose_id`` into ``keep_id`` (both of kind ``model_name``: lead,
    account or contact). ``take`` names the fields whose value comes from the removed
    record. Refused (nothing changes): the same record twice, an unknown field, a record
    outside the actor's scope (403), a pooled record for anyone but an admin, or a
    converted lead merged into an open one (keep the converted one)."""
    model = model_for(model_name)
    if keep_id == lose_id:
        raise ValidationFailed(_("Choose two different records."), field="lose_id")
    fields = {f.name: f for f in choosable_fields(model)}
    unknown = sorted(set(take) - set(fields))
    if unknown:
        raise ValidationFailed(_("Unknown field: %s") % ", ".join(unknown), field="take")
    with transaction.atomic():
        rows = {
            obj.pk: obj
            for obj in model._base_manager.select_for_update().filter(pk__in=[keep_id, lose_id])
        }
        visible = set(_visible(model, actor).filter(pk__in=list(rows)).values_list("pk", flat=True))
        if len(rows) != 2 or visible != {keep_id, lose_id}:
            raise NotPermitted(_("You may only merge records you can see."))
        keep, lose = rows[keep_id], rows[lose_id]
        if _pooled(keep) or _pooled(lose):
            if not actor.sees_everything:
                raise NotPermitted(_("Claim a pooled record before merging it."))
        if model is Lead:
            if lose.status == LeadStatus.CONVERTED and keep.status in OPEN_STATUSES:
                raise Conflict(
                    _("Keep the converted lead and merge the open one into it."),
                    code="merge_conflict",
                )
        data = json.loads(serializers.serialize("json", [lose]))[0]
        before = summaries.snapshot(keep) if model is Lead else None
        for name in take:
            setattr(keep, fields[name].attname, getattr(lose, fields[name].attname))
        _refresh_keys(keep)
        # an account's won deals keep their breakdown rows (WonCount) in step
        with won_counts.accounts_moving([keep.pk, lose.pk] if model is Account else []):
            moved = _repoint(model, keep, lose)
            if hasattr(keep, "version"):
                keep.version += 1
            keep.save()
        if model is Lead:  # the loser leaves the counts with its row (pre_delete)
            summaries.apply(before, summaries.snapshot(keep))
        now = timezone.now()
        record = MergeRecord.objects.create(
            model=model._meta.label_lower, kept_id=keep.pk, merged_id=lose.pk,
            merged_data=data, fields_taken=sorted(take), moved=moved, by=actor, at=now,
        )  # fmt: skip
        if model is Lead:
            PoolEvent.objects.create(
                lead=keep, kind=PoolEventKind.MERGE, by=actor, owner=keep.owner, pool=keep.pool,
                at=now, reason=(_("Merged lead #%(id)d: %(name)s") % {
                    "id": lose.pk, "name": str(lose)})[:300],
            )  # fmt: skip
        model._base_manager.filter(pk=lose.pk).delete()
    return record
