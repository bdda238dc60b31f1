"""Writes of the rules app, and its part in other apps' actions.

- Rules: :func:`create_rule`, :func:`update_rule`, :func:`set_rule_active` (admins only;
  the row is locked and its ``version`` checked; a rule switched off has its open
  breaches settled at once). :func:`clean_rule` is every check a rule must pass.
- Working time: :func:`set_working_hours`, :func:`save_holiday`, :func:`delete_holiday`.
- Sweep: :func:`run_sweep` (admins; the CLI and the scheduler call sweep.sweep directly).
- Listeners (registered in apps.py): :func:`on_activity_logged` and
  :func:`on_activity_changed` keep the follow-up state of an activity's records, settle
  their breaches that the contact meets and create the outcome tasks;
  :func:`on_activity_deleted` counts the records' contacts again without it;
  :func:`on_handed_over` settles the breaches of records that changed hands;
  :func:`check_before_lose` refuses closing as lost with too few contacts.
"""

from __future__ import annotations

from datetime import time

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.activities.choices import Kind, Outcome
from loudou.core.exceptions import NotPermitted, ValidationFailed
from loudou.core.services import check_version
from loudou.customers.choices import Grade, Source
from loudou.leads.choices import OPEN_STATUSES
from loudou.pipeline.models import Pipeline, Stage

from . import actions, engine, state
from .calendar import Calendar, load_calendar
from .models import (
    AppliesTo,
    Breach,
    FollowUpRule,
    Holiday,
    Requirement,
    Resolution,
    WorkingPeriod,
)

RULE_FIELDS = {
    "name", "name_en", "is_active", "position", "applies_to", "requirement", "amount",
    "conditions", "use_working_hours", "remind_owner", "tell_manager", "create_task",
    "return_to_pool",
}  # fmt: skip

# What N means per requirement, and its bounds (None: not used).
AMOUNT = {
    Requirement.FIRST_CONTACT_WITHIN: (1, 720),
    Requirement.CONTACT_EVERY: (1, 3650),
    Requirement.CONTACTS_BEFORE_LOST: (1, 1000),
    Requirement.TASK_ON_OUTCOME: (0, 720),
    Requirement.GREETING: (0, 60),
    Requirement.STALE_IN_STAGE: None,
    Requirement.REVISIT: None,
    Requirement.PAYMENT_OVERDUE: (0, 365),  # days of grace after the due date
}
# N when none is given.
AMOUNT_DEFAULT = {Requirement.TASK_ON_OUTCOME: 1, Requirement.PAYMENT_OVERDUE: 0}

# Every key ``conditions`` may hold; which apply depends on the rule (docs/rules.md).
CONDITION_KEYS = {
    "lead_statuses", "sources", "grades", "pipelines", "stages", "activity_kinds", "outcomes",
    "task_kinds", "occasions", "task_kind",
}  # fmt: skip


def _admin(actor) -> None:
    if actor is None or not getattr(actor, "sees_everything", False):
        raise NotPermitted(_("Only an administrator may change follow-up rules."))


def _choice_list(conditions, key, allowed, *, field="conditions") -> None:
    value = conditions.get(key)
    if value is None:
        return
    if not isinstance(value, list) or any(v not in allowed for v in value):
        raise ValidationFailed(
            _("Unknown value in %(key)s.") % {"key": key}, field=field, code="invalid"
        )


def _id_list(conditions, key, model) -> None:
    value = conditions.get(key)
    if value is None:
        return
    if not isinstance(value, list) or any(
        not isinstance(v, int) or isinstance(v, bool) or not 0 < v < 2**63 for v in value
    ):
        raise ValidationFailed(_("List ids as whole numbers."), field="conditions")
    if model.objects.filter(pk__in=value).count() != len(set(value)):
        raise ValidationFailed(_("Some of the chosen records do not exist."), field="conditions")


def clean_rule(rule: FollowUpRule) -> None:
    """Every check a rule must pass; raises ValidationFailed naming the field."""
    rule.name = (rule.name or "").strip()
    rule.name_en = (rule.name_en or "").strip()
    if not rule.name:
        raise ValidationFailed(_("Give the rule a name."), field="name", code="required")
    if rule.requirement not in Requirement.values:
        raise ValidationFailed(_("Choose a requirement."), field="requirement")
    evaluator = engine.EVALUATORS[rule.requirement]
    if rule.applies_to not in evaluator.applies_to:
        raise ValidationFailed(
            _("This requirement cannot apply to that kind of record."), field="applies_to"
        )
    bounds = AMOUNT[rule.requirement]
    if bounds is None:
        rule.amount = None
    else:
        low, high = bounds
        if rule.amount is None:
            rule.amount = AMOUNT_DEFAULT.get(rule.requirement)
        if rule.amount is None or not low <= rule.amount <= high:
            raise ValidationFailed(
                _("N must be between %(low)d and %(high)d.") % {"low": low, "high": high},
                field="amount",
            )
    conditions = rule.conditions if rule.conditions is not None else {}
    if not isinstance(conditions, dict):
        raise ValidationFailed(_("Conditions must be an object."), field="conditions")
    unknown = set(conditions) - CONDITION_KEYS
    if unknown:
        raise ValidationFailed(
            _("Unknown condition: %(keys)s.") % {"keys": ", ".join(sorted(unknown))},
            field="conditions",
        )
    _choice_list(conditions, "lead_statuses", [str(s) for s in OPEN_STATUSES])
    _choice_list(conditions, "sources", Source.values)
    _choice_list(conditions, "grades", Grade.values)
    _choice_list(conditions, "activity_kinds", Kind.values)
    _choice_list(conditions, "outcomes", Outcome.values)
    _choice_list(conditions, "task_kinds", Kind.values)
    _choice_list(conditions, "occasions", list(engine.Greeting.OCCASIONS))
    _id_list(conditions, "pipelines", Pipeline)
    _id_list(conditions, "stages", Stage)
    task_kind = conditions.get("task_kind")
    if task_kind is not None and task_kind not in Kind.values:
        raise ValidationFailed(_("Unknown task type."), field="conditions")
    if rule.requirement == Requirement.TASK_ON_OUTCOME and not conditions.get("task_kinds"):
        raise ValidationFailed(_("Choose the tasks to create."), field="conditions")
    if rule.requirement == Requirement.GREETING and conditions.get("occasions") == []:
        raise ValidationFailed(_("Choose at least one occasion."), field="conditions")
    if rule.return_to_pool and rule.applies_to not in (AppliesTo.LEAD, AppliesTo.ACCOUNT):
        raise ValidationFailed(
            _("Only leads and accounts can return to a pool."), field="return_to_pool"
        )
    if rule.return_to_pool and rule.requirement == Requirement.PAYMENT_OVERDUE:
        # a customer under contract who pays late is chased by their owner, not released
        raise ValidationFailed(
            _("An account does not return to a pool for a late payment."),
            field="return_to_pool",
        )
    rule.conditions = conditions


def _assign(rule: FollowUpRule, data: dict) -> None:
    unknown = set(data) - RULE_FIELDS
    if unknown:
        raise ValidationFailed(
            _("Unknown field: %(keys)s.") % {"keys": ", ".join(sorted(unknown))},
            field=sorted(unknown)[0],
        )
    for name, value in data.items():
        setattr(rule, name, value)


@transaction.atomic
def create_rule(*, actor, **data) -> FollowUpRule:
    """Add a rule (admins only)."""
    _admin(actor)
    rule = FollowUpRule()
    _assign(rule, data)
    clean_rule(rule)
    rule.full_clean()
    rule.save()
    return rule


@transaction.atomic
def update_rule(rule: FollowUpRule, *, actor, version=None, **data) -> FollowUpRule:
    """Change a rule (admins only). Breaches already found stay; the next sweep looks at
    everything again (an edited rule forces a full sweep)."""
    _admin(actor)
    locked = FollowUpRule.objects.select_for_update().get(pk=rule.pk)
    check_version(locked, version)
    _assign(locked, data)
    clean_rule(locked)
    locked.full_clean()
    locked.version += 1
    locked.save()
    if not locked.is_active:
        _settle_inactive(locked)
    return locked


@transaction.atomic
def set_rule_active(rule: FollowUpRule, *, actor, active: bool, version=None) -> FollowUpRule:
    """Switch a rule on or off (admins only). Switching off settles its open breaches."""
    _admin(actor)
    locked = FollowUpRule.objects.select_for_update().get(pk=rule.pk)
    check_version(locked, version)
    if locked.is_active != active:
        locked.is_active = active
        locked.version += 1
        locked.save(update_fields=["is_active", "version", "updated_at"])
    if not active:
        _settle_inactive(locked)
    return locked


def _settle_inactive(rule) -> int:
    return (
        Breach.objects.open()
        .filter(rule=rule)
        .update(resolved_at=timezone.now(), resolution=Resolution.RULE_INACTIVE)
    )


# --- working time ------------------------------------------------------------------------


@transaction.atomic
def set_working_hours(*, actor, periods) -> list[WorkingPeriod]:
    """Replace the weekly working hours with ``periods``: (weekday 0–6, start, end)
    triples. Ranges of one day may not overlap; an empty list means the clock of
    "working hours only" rules runs all the time."""
    _admin(actor)
    cleaned = []
    for weekday, start, end in periods:
        if weekday not in range(7) or not isinstance(start, time) or not isinstance(end, time):
            raise ValidationFailed(_("Give a weekday and two times."), field="periods")
        if start >= end:
            raise ValidationFailed(_("A range must end after it starts."), field="periods")
        cleaned.append((weekday, start, end))
    cleaned.sort()
    for (d1, _s1, e1), (d2, s2, _e2) in zip(cleaned, cleaned[1:], strict=False):
        if d1 == d2 and s2 < e1:
            raise ValidationFailed(_("The ranges of one day overlap."), field="periods")
    WorkingPeriod.objects.all().delete()
    return WorkingPeriod.objects.bulk_create(
        [WorkingPeriod(weekday=d, start=s, end=e) for d, s, e in cleaned]
    )


@transaction.atomic
def save_holiday(*, actor, date, name="", is_workday=False, workday_like=0) -> Holiday:
    """Add a day off, or a make-up working day (调休), or change the one on that date."""
    _admin(actor)
    if workday_like not in range(7):
        raise ValidationFailed(_("Choose a weekday."), field="workday_like")
    holiday, _created = Holiday.objects.update_or_create(
        date=date,
        defaults={"name": (name or "").strip()[:100], "is_workday": bool(is_workday),
                  "workday_like": workday_like},
    )  # fmt: skip
    return holiday


@transaction.atomic
def delete_holiday(holiday: Holiday, *, actor) -> None:
    _admin(actor)
    Holiday.objects.filter(pk=holiday.pk).delete()


# --- sweep ---------------------------------------------------------------------------------


def run_sweep(*, actor, full=False, rule_ids=None, now=None):
    """Run the sweep now on an administrator's request (the page and the API)."""
    from .sweep import sweep

    _admin(actor)
    return sweep(now, full=full, rule_ids=rule_ids)


# --- listeners and checks ----------------------------------------------------------------


def resolve_met(rule_ids, *, leads=(), accounts=(), opportunities=(), now=None) -> int:
    """Settle the open breaches of ``rule_ids`` (contact-based rules) on these records
    that a contact after their clock start now meets (one UPDATE per kind of record)."""
    now = now or timezone.now()
    total = 0
    for subject, ids in (
        (engine.SUBJECTS[AppliesTo.LEAD], leads),
        (engine.SUBJECTS[AppliesTo.ACCOUNT], accounts),
        (engine.SUBJECTS[AppliesTo.OPPORTUNITY], opportunities),
    ):
        ids = [i for i in ids if i is not None]
        if not ids:
            continue
        met = subject.state.objects.filter(
            pk=OuterRef(subject.column), last_contact_at__gt=OuterRef("basis_at")
        )
        rows = Breach.objects.open().filter(**{f"{subject.column}__in": ids}, rule_id__in=rule_ids)
        total += rows.filter(Exists(met)).update(
            resolved_at=engine.met_at(subject, now), resolution=Resolution.MET
        )
    return total


def _links(activity, linked_before=None) -> dict:
    """The records of ``activity`` (and those it was linked to before an edit or its
    deletion), as state.refresh / resolve_met keywords."""
    before = linked_before or {}
    return {
        plural: [i for i in {getattr(activity, f"{name}_id"), before.get(name)} if i is not None]
        for name, plural in (("lead", "leads"), ("account", "accounts"),
                             ("opportunity", "opportunities"))
    }  # fmt: skip


def _open_breach_of(activity, rule_ids) -> bool:
    """Whether a record of ``activity`` has an open breach of one of ``rule_ids`` (one
    EXISTS on the open-breach indexes)."""
    records = Q()
    for column in ("lead_id", "account_id", "opportunity_id"):
        if getattr(activity, column) is not None:
            records |= Q(**{column: getattr(activity, column)})
    if not records:
        return False
    return Breach.objects.open().filter(records, rule_id__in=rule_ids).exists()


def _on_activity(activity, *, changed: bool, linked_before=None) -> None:
    """The listeners' work, as little of it as the active rules need: one query for the
    rules; the state and the breaches only when a contact-based rule has an open
    breach on the activity's records (otherwise the next sweep's catch-up counts a new
    activity); the calendar only for an outcome rule that matches and counts working
    hours."""
    now = timezone.now()
    rules = list(
        FollowUpRule.objects.filter(
            is_active=True, requirement__in=[*engine.CONTACT_BASED, Requirement.TASK_ON_OUTCOME]
        )
    )
    contact_rules = [r.pk for r in rules if r.requirement in engine.CONTACT_BASED]
    # An edit is not seen by the sweep's catch-up (it follows new activity ids): its
    # records' state is recomputed now, whatever the rules.
    if changed or (contact_rules and _open_breach_of(activity, contact_rules)):
        state.refresh(**_links(activity, linked_before), now=now)
        if contact_rules:
            resolve_met(contact_rules, **_links(activity), now=now)
    if not activity.outcome:
        return
    outcome_rules = [
        r
        for r in rules
        if r.requirement == Requirement.TASK_ON_OUTCOME
        and actions.outcome_rule_matches(r, activity)
    ]
    if not outcome_rules:
        return
    calendar = load_calendar() if any(r.use_working_hours for r in outcome_rules) else Calendar()
    for rule in outcome_rules:
        actions.outcome_tasks(rule, activity, calendar=calendar, now=now)


def on_activity_logged(activity, actor=None, **context) -> None:
    """``activity_logged``: settle the breaches of the activity's records that the contact
    meets, and create the outcome tasks (not waiting for the sweep)."""
    _on_activity(activity, changed=False)


def on_activity_changed(activity, actor=None, **context) -> None:
    """``activity_changed``: the records' follow-up state again, their breaches the
    contact now meets, and the outcome tasks of a new outcome."""
    _on_activity(activity, changed=True, linked_before=context.get("linked_before"))


def on_activity_deleted(activity, actor=None, linked_before=None, **context) -> None:
    """``activity_deleted``: the follow-up state of the records it was linked to, counted
    again without it (a record left without contacts counts as never contacted)."""
    state.refresh(**_links(activity, linked_before))


def on_handed_over(record, **context) -> None:
    """``handed_over``: the breaches of the person who handed over whose records now
    belong to someone else (or to a pool) are settled as "owner changed"."""
    from_user = getattr(record, "from_user", None)
    if from_user is None:
        return
    now = timezone.now()
    for subject in engine.SUBJECTS.values():
        kept = subject.model.objects.filter(
            pk=OuterRef(subject.column), owner_id=OuterRef("owner_id")
        )
        rows = Breach.objects.open().filter(owner=from_user, **{f"{subject.column}__isnull": False})
        rows.filter(~Exists(kept)).update(resolved_at=now, resolution=Resolution.OWNER_CHANGED)


def contacts_for_opportunity(opp) -> int:
    """Contacts with an opportunity's customer: on the opportunity, on its account but
    no other opportunity, and on the lead it was converted from (one COUNT)."""
    return (
        state.contacts()
        .filter(
            Q(opportunity_id=opp.pk)
            | Q(account_id=opp.account_id, opportunity__isnull=True)
            | Q(lead__converted_opportunity_id=opp.pk)
        )
        .count()
    )


def check_before_lose(opp, actor=None, **context) -> None:
    """``before_lose``: refuse closing as lost while an active "at least N contacts"
    rule that applies to the opportunity is not met (422 on the reason field)."""
    rules = [
        rule
        for rule in FollowUpRule.objects.filter(
            is_active=True, requirement=Requirement.CONTACTS_BEFORE_LOST
        )
        if engine.matches(rule, opp)
    ]
    if not rules:
        return
    have = contacts_for_opportunity(opp)
    for rule in rules:
        if have < (rule.amount or 0):
            raise ValidationFailed(
                _(
                    "The customer must be contacted at least %(n)d times before the deal is "
                    "closed as lost (rule “%(rule)s”); so far: %(have)d."
                )
                % {"n": rule.amount, "rule": rule, "have": have},
                field="reason",
                code="too_few_contacts",
            )
