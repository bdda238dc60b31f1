"""What happens on a breach (remind the owner, tell the manager, create a task, return
to the pool) and the tasks of "tasks when an activity has an outcome".

Actions run only for the breaches a sweep opened itself (``Breach.sweep_run``), and each
carries a key: a notification per (user, key), a task per key. So a sweep run twice, or
two workers at once, remind, tell and create once; a record goes back to the pool only
from the run that opened its breach.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from loudou.activities.choices import Kind
from loudou.core.exceptions import ServiceError
from loudou.org.models import Role, Team, User

from .calendar import Calendar, due_after
from .models import Breach, FollowUpRule, Requirement

# The task a breach creates, unless the rule's conditions name another ("task_kind").
TASK_KINDS = {
    Requirement.FIRST_CONTACT_WITHIN: Kind.CALL,
    Requirement.CONTACT_EVERY: Kind.CALL,
    Requirement.REVISIT: Kind.VISIT,
    Requirement.STALE_IN_STAGE: Kind.OTHER,
    Requirement.GREETING: Kind.WECHAT,
    Requirement.PAYMENT_OVERDUE: Kind.CALL,
}


def _language(user_or_lang) -> str:
    lang = getattr(user_or_lang, "language", user_or_lang)
    return lang or settings.LANGUAGE_CODE


def managers_by_team() -> dict[int, list[int]]:
    """team id → the active managers responsible for it: those of the team itself, or
    else of the nearest team above that has any."""
    own: dict[int, list[int]] = defaultdict(list)
    for pk, team_id in User.objects.filter(
        role=Role.MANAGER, is_active=True, left_on__isnull=True, team__isnull=False
    ).values_list("pk", "team_id"):
        own[team_id].append(pk)
    result = {}
    for team_id, path in Team.objects.values_list("pk", "path"):
        chain = [int(part) for part in path.split("/") if part]
        for ancestor in reversed(chain):
            if own.get(ancestor):
                result[team_id] = own[ancestor]
                break
    return result


def breaches_url(rule, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"rule": rule.pk, "state": "open", **params}.items())
    return f"{reverse('rules:breaches')}?{query}"


def describe(breach: Breach) -> str:
    subject = breach.subject
    if breach.contact_id and breach.account_id:
        return f"{breach.contact} · {breach.account}"
    return str(subject) if subject is not None else "—"


def remind_owners(rule: FollowUpRule, new) -> int:
    """One notification per owner: the record itself when there is one, else how many
    (with a link to the list)."""
    from loudou.notifications.services import notify_many

    groups = list(new.order_by().values("owner_id").annotate(n=Count("pk"), first=Min("pk")))
    singles = {
        b.pk: b
        for b in Breach.objects.filter(pk__in=[g["first"] for g in groups if g["n"] == 1])
        .select_related("lead", "account", "opportunity", "contact")
    }  # fmt: skip
    languages = dict(
        User.objects.filter(pk__in=[g["owner_id"] for g in groups]).values_list("pk", "language")
    )
    items = []
    for g in groups:
        with translation.override(_language(languages.get(g["owner_id"]))):
            breach = singles.get(g["first"])
            if breach is not None:
                text = _("Follow-up rule “%(rule)s”: %(record)s needs you (due %(due)s).") % {
                    "rule": rule, "record": describe(breach),
                    "due": timezone.localtime(breach.due_at).strftime("%Y-%m-%d %H:%M"),
                }  # fmt: skip
                url = breach.get_absolute_url()
            else:
                text = _("%(n)d of your records break the follow-up rule “%(rule)s”.") % {
                    "n": g["n"], "rule": rule,
                }  # fmt: skip
                url = breaches_url(rule, owner=g["owner_id"])
        items.append({
            "user": g["owner_id"], "text": text, "url": url, "kind": "rule_breach",
            "key": f"rule:{rule.pk}:{g['first']}",
        })  # fmt: skip
    notify_many(items)
    return len(items)


def tell_managers(rule: FollowUpRule, new) -> int:
    """One notification per manager of the owners' teams: how many breaches, whose."""
    from loudou.notifications.services import notify_many

    groups = list(new.order_by().values("owner_id").annotate(n=Count("pk"), first=Min("pk")))
    if not groups:
        return 0
    owners = {
        u.pk: u for u in User.objects.filter(pk__in=[g["owner_id"] for g in groups])
    }  # fmt: skip
    by_team = managers_by_team()
    per_manager: dict[int, dict] = {}
    for g in groups:
        owner = owners[g["owner_id"]]
        for manager_id in by_team.get(owner.team_id, ()):
            if manager_id == owner.pk:
                continue
            entry = per_manager.setdefault(manager_id, {"n": 0, "first": g["first"], "names": []})
            entry["n"] += g["n"]
            entry["first"] = min(entry["first"], g["first"])
            entry["names"].append(str(owner))
    languages = dict(User.objects.filter(pk__in=per_manager).values_list("pk", "language"))
    items = []
    for manager_id, entry in per_manager.items():
        with translation.override(_language(languages.get(manager_id))):
            text = _("Your team: %(n)d new breaches of the follow-up rule “%(rule)s” (%(names)s).")
            text %= {"n": entry["n"], "rule": rule, "names": ", ".join(sorted(entry["names"]))}
        items.append({
            "user": manager_id, "text": text, "url": breaches_url(rule), "kind": "rule_breach",
            "key": f"rule-team:{rule.pk}:{entry['first']}",
        })  # fmt: skip
    notify_many(items)
    return len(items)


def task_title(rule: FollowUpRule, breach: Breach) -> str:
    record = describe(breach)
    if rule.requirement == Requirement.FIRST_CONTACT_WITHIN:
        return _("First contact: %(record)s") % {"record": record}
    if rule.requirement == Requirement.CONTACT_EVERY:
        return _("Get in touch: %(record)s (no contact for %(days)d days)") % {
            "record": record, "days": rule.amount or 0,
        }  # fmt: skip
    if rule.requirement == Requirement.REVISIT:
        return _("Revisit: %(record)s") % {"record": record}
    if rule.requirement == Requirement.STALE_IN_STAGE:
        return _("Move forward: %(record)s (stale in stage %(stage)s)") % {
            "record": record, "stage": breach.opportunity.stage if breach.opportunity else "",
        }  # fmt: skip
    if rule.requirement == Requirement.GREETING:
        if breach.contact_id:
            return _("Birthday greeting: %(record)s") % {"record": record}
        return _("Company anniversary greeting: %(record)s") % {"record": record}
    if rule.requirement == Requirement.PAYMENT_OVERDUE:
        return _("Chase the overdue payment: %(record)s (due %(day)s)") % {
            "record": record, "day": timezone.localtime(breach.basis_at).date().isoformat(),
        }  # fmt: skip
    return str(rule)


def task_due(rule: FollowUpRule, breach: Breach, now):
    """A greeting's task is due at 09:00 on the day; any other breach's task now."""
    if rule.requirement == Requirement.GREETING:
        day = timezone.localtime(breach.due_at) - timedelta(days=1)
        return day.replace(hour=9, minute=0, second=0, microsecond=0)
    return now


def create_tasks(rule: FollowUpRule, new, now) -> int:
    """A task per new breach, for its owner, keyed by the breach: one bulk insert per
    thousand (tasks.services.create_system_tasks, idempotent on the key like
    create_task); titles in each owner's language."""
    from loudou.tasks.services import create_system_tasks

    kind = (rule.conditions or {}).get("task_kind") or TASK_KINDS.get(rule.requirement, Kind.OTHER)
    rows = new.select_related("owner", "lead", "account", "contact", "opportunity__stage",
                              "opportunity__account")  # fmt: skip
    tasks = []
    for breach in rows.iterator(chunk_size=2000):
        with translation.override(_language(breach.owner)):
            title = task_title(rule, breach)
        tasks.append({
            "title": title[:200], "owner_id": breach.owner_id, "kind": kind,
            "due_at": task_due(rule, breach, now), "lead_id": breach.lead_id,
            "account_id": breach.account_id, "contact_id": breach.contact_id,
            "opportunity_id": breach.opportunity_id, "source": "rule", "breach_id": breach.pk,
            "key": f"breach:{breach.key}"[:200],
        })  # fmt: skip
    create_system_tasks(tasks)
    return len(tasks)


def return_to_pool(rule: FollowUpRule, new) -> dict:
    """Leads and accounts of the new breaches go back to a pool (the leads services
    choose which; the owner may not claim them back for the pool's block days).
    Opportunities stay. A record the pool refuses is counted, not fatal."""
    from loudou.leads.services import release_account, release_lead

    done = {"returned": 0, "refused": 0}
    with translation.override(settings.LANGUAGE_CODE):
        reason = _("Follow-up rule: %(rule)s") % {"rule": rule}
    for breach in new.select_related("lead__owner", "account__owner").iterator(chunk_size=500):
        try:
            with transaction.atomic():
                if breach.lead_id and breach.lead.owner_id:
                    release_lead(breach.lead, rep=breach.lead.owner, reason=reason)
                elif breach.account_id and not breach.opportunity_id and breach.account.owner_id:
                    release_account(breach.account, rep=breach.account.owner, reason=reason)
                else:
                    continue
            done["returned"] += 1
        except ServiceError:
            done["refused"] += 1
    return done


def perform(rule: FollowUpRule, run, now) -> dict:
    """Every action of ``rule`` for the breaches ``run`` opened."""
    new = Breach.objects.filter(sweep_run=run, rule=rule)
    counts = {}
    if rule.remind_owner:
        counts["reminded"] = remind_owners(rule, new)
    if rule.tell_manager:
        counts["managers_told"] = tell_managers(rule, new)
    if rule.create_task:
        counts["tasks"] = create_tasks(rule, new, now)
    if rule.return_to_pool:
        counts.update(return_to_pool(rule, new))
    return counts


# --- tasks when an activity has an outcome ---------------------------------------------


def outcome_rule_matches(rule: FollowUpRule, activity) -> bool:
    kinds = rule.condition("activity_kinds")
    outcomes = rule.condition("outcomes")
    if kinds and activity.kind not in kinds:
        return False
    if outcomes and activity.outcome not in outcomes:
        return False
    link = {"lead": activity.lead_id, "account": activity.account_id,
            "opportunity": activity.opportunity_id}.get(rule.applies_to, True)  # fmt: skip
    return bool(link)


def outcome_task_title(kind: str, activity) -> str:
    record = activity.subject
    labels = {
        Kind.WECHAT: _("Add on WeChat: %(record)s"),
        Kind.EMAIL: _("Send an e-mail: %(record)s"),
        Kind.CALL: _("Call again: %(record)s"),
        Kind.VISIT: _("Visit: %(record)s"),
        Kind.MEETING: _("Arrange a meeting: %(record)s"),
    }
    label = labels.get(kind, _("Follow up: %(record)s"))
    return label % {"record": record}


def outcome_tasks(rule: FollowUpRule, activity, *, calendar: Calendar, now=None) -> list:
    """The rule's tasks for one activity (one per task kind), for the activity's owner,
    due ``amount`` hours (working hours when the rule says so) after it was logged;
    keyed by rule, activity and kind, so logging, editing and the sweep create them
    once."""
    from loudou.tasks.services import create_task

    if not outcome_rule_matches(rule, activity) or activity.owner_id is None:
        return []
    owner = activity.owner
    due = due_after(
        now or timezone.now(), rule.amount if rule.amount is not None else 1,
        working=rule.use_working_hours, calendar=calendar,
    )  # fmt: skip
    made = []
    for kind in rule.condition("task_kinds", [Kind.WECHAT, Kind.EMAIL]):
        with translation.override(_language(owner)):
            title = outcome_task_title(kind, activity)
        made.append(
            create_task(
                None,
                title=title[:200],
                owner=owner,
                kind=kind,
                due_at=due,
                lead=activity.lead,
                account=activity.account,
                contact=activity.contact,
                opportunity=activity.opportunity,
                source="rule",
                origin_activity=activity,
                key=f"outcome:{rule.pk}:{activity.pk}:{kind}",
            )  # fmt: skip
        )
    return made
