"""Read-side queries of breaches, shared by the pages, the API, reports and the worklist.

Every count is one GROUP BY in the database. "Late" breaches (``Breach.objects.late``)
are those that count against a rep: due, and not met before they were due.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from loudou.analytics.periods import Period

from .models import Breach, FollowUpRule


def visible(user) -> QuerySet:
    """The breaches ``user`` may see: own, team subtree (managers), all (admins)."""
    return Breach.objects.visible_to(user)


def with_related(qs: QuerySet) -> QuerySet:
    return qs.select_related(
        "rule", "owner", "lead", "account", "opportunity", "opportunity__stage", "contact"
    )


def open_for(user) -> QuerySet:
    """The user's own open breaches, soonest due first (the worklist)."""
    return Breach.objects.open().filter(owner=user).order_by("due_at", "pk")


def breaches_by_owner(start: date, end: date, *, owners=None) -> dict[int, int]:
    """Late breaches per owner whose due time falls in [start, end) (company days);
    ``owners`` (a User queryset) narrows it. One GROUP BY on the (due_at, owner) index."""
    low, high = Period(start, end, "").bounds()
    qs = Breach.objects.late(timezone.now()).filter(due_at__gte=low, due_at__lt=high)
    if owners is not None:
        qs = qs.filter(owner_id__in=owners.values("pk"))
    rows = qs.order_by().values("owner_id").annotate(n=Count("pk"))
    return dict(rows.values_list("owner_id", "n"))


def counts_per_owner(qs: QuerySet) -> list[dict]:
    """[{owner_id, owner name, open, total}] for the breaches of ``qs``, most open first."""
    rows = (
        qs.order_by()
        .values("owner_id", "owner__name", "owner__username")
        .annotate(open=Count("pk", filter=Q(resolved_at__isnull=True)), total=Count("pk"))
        .order_by("-open", "-total", "owner__username")
    )
    return [
        {"owner_id": r["owner_id"], "name": r["owner__name"] or r["owner__username"],
         "open": r["open"], "total": r["total"]}
        for r in rows
    ]  # fmt: skip


def counts_per_rule(qs: QuerySet) -> list[dict]:
    """[{rule_id, rule, open, total}] for the breaches of ``qs``, in the rules' order."""
    counts = {
        r["rule_id"]: r
        for r in qs.order_by()
        .values("rule_id")
        .annotate(open=Count("pk", filter=Q(resolved_at__isnull=True)), total=Count("pk"))
    }
    rules = FollowUpRule.objects.filter(pk__in=counts).order_by("position", "pk")
    return [
        {"rule_id": rule.pk, "rule": rule, "open": counts[rule.pk]["open"],
         "total": counts[rule.pk]["total"]}
        for rule in rules
    ]  # fmt: skip
