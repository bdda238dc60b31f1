"""Hand-over (DOMAIN §10): when a rep leaves or changes job, everything they own goes to
another rep — the open leads optionally into a public pool — in one transaction, with a
:class:`~loudou.org.models.HandOver` record and history rows on every lead.

"Everything they own" is every concrete subclass of :class:`~loudou.core.models.OwnedModel`
found in ``apps.get_models()``: accounts, opportunities, leads, and whatever later apps
add (contracts, activities...) without changing this module. Each kind moves with one
UPDATE.
"""

from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from loudou.core.exceptions import NotPermitted, ValidationFailed
from loudou.core.hooks import emit
from loudou.core.models import OwnedModel, VersionedModel

from .models import HandOver, User, assignable_owners

LEAD_LABEL = "leads.lead"


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
    subtree, to people in their subtree; nobody else. ``actor`` None is the command line."""
    if actor is None:
        return
    if not (actor.sees_everything or actor.managed_team_path):
        raise NotPermitted(_("Only a manager or an administrator may hand over records."))
    scope = User.objects.visible_to(actor)
    if from_user.pk == actor.pk or not scope.filter(pk=from_user.pk).exists():
        raise NotPermitted(_("You may not hand over this person's records."))
    if to is not None and not assignable_owners(actor).filter(pk=to.pk).exists():
        raise ValidationFailed(_("You cannot give records to that user."), field="to")


def validate(from_user, *, to=None, pool=None) -> None:
    if to is None and pool is None:
        raise ValidationFailed(_("Choose who receives the records, or a pool."), field="to")
    if to is not None:
        if to.pk == from_user.pk:
            raise ValidationFailed(_("Choose someone else to receive the records."), field="to")
        if not to.is_active or to.left_on is not None:
            raise ValidationFailed(_("The receiver has left or is deactivated."), field="to")
    if pool is not None and not pool.is_active:
        raise ValidationFailed(_("This pool is closed."), field="pool")
    if to is None:
        rest = sum(line.count for line in inventory(from_user)) - open_leads_of(from_user)
        if rest:
            raise ValidationFailed(
                _(
                    "Only open leads can go into a pool; choose a receiver for the other "
                    "%(n)d records."
                )
                % {"n": rest},
                field="to",
            )


def hand_over(
    from_user, *, actor=None, to=None, pool=None, deactivate=False, left_on=None
) -> HandOver:
    """Give everything ``from_user`` owns to ``to``; with ``pool``, their open leads go
    into that pool instead. Optionally deactivate ``from_user`` (``left_on`` defaults to
    today). One transaction: a refusal changes nothing. The receiver is notified.
    Lock contract: the leaving user's row is locked, so records created for them
    meanwhile wait and are handed over too or created after."""
    from loudou.leads.services import hand_over_leads
    from loudou.notifications.services import notify

    check_allowed(actor, from_user, to)
    validate(from_user, to=to, pool=pool)
    now = timezone.now()
    reason = _("Hand-over from %(user)s") % {"user": from_user}
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=from_user.pk).values_list("pk").first()
        counts: dict[str, int] = {}
        leads = hand_over_leads(from_user, to=to, pool=pool, by=actor, now=now, reason=reason)
        if leads["into_pool"]:
            counts["leads.lead:pool"] = leads["into_pool"]
        if leads["to_receiver"]:
            counts[LEAD_LABEL] = leads["to_receiver"]
        for model in owned_models():
            label = model._meta.label_lower
            if label == LEAD_LABEL:
                continue
            changes = {"owner": to}
            if issubclass(model, VersionedModel):
                changes["version"] = F("version") + 1
            if any(f.name == "updated_at" for f in model._meta.concrete_fields):
                changes["updated_at"] = now
            moved = model._base_manager.filter(owner=from_user).update(**changes)
            if moved:
                counts[label] = moved
        record = HandOver.objects.create(
            from_user=from_user, to_user=to, pool_name=str(pool) if pool else "",
            counts=counts, deactivated=deactivate, by=actor, at=now,
        )  # fmt: skip
        if deactivate:
            from_user.is_active = False
            from_user.left_on = left_on or timezone.localdate()
            from_user.save(update_fields=["is_active", "left_on"])
        emit("handed_over", record, actor=actor)
        total = sum(v for k, v in counts.items() if not k.endswith(":pool"))
        if to is not None and total:
            with translation.override(to.language or settings.LANGUAGE_CODE):
                text = _("%(user)s handed %(n)d records over to you.") % {
                    "user": from_user,
                    "n": total,
                }
            notify(to, text, url=record.get_absolute_url(), kind="handover",
                   key=f"handover:{record.pk}")  # fmt: skip
    return record
