"""A record's timeline: its activities merged with stage changes, newest first.

The opportunity page shows the opportunity's own stage changes; the account page those of
the account's opportunities the user may see. A fixed number of queries whatever the
number of entries.
"""

import heapq
from dataclasses import dataclass
from datetime import datetime

from .models import Activity

LIMIT = 50


@dataclass
class Entry:
    """One line of a timeline: an activity or a stage change."""

    at: datetime
    kind: str  # "activity" or "stage"
    obj: object
    can_change: bool = False


def changeable_owner_ids(user):
    """The owners whose activities ``user`` may change: None means anybody (admin)."""
    if user.sees_everything:
        return None
    if user.managed_team_path:
        from loudou.org.models import assignable_owners

        return set(assignable_owners(user).values_list("pk", flat=True)) | {user.pk}
    return {user.pk}


def activities_of(subject, user, limit=LIMIT):
    """The newest activities linked to ``subject`` that ``user`` may see."""
    return list(
        Activity.objects.visible_to(user)
        .on(subject)
        .select_related("owner", "contact", "opportunity", "lead")
        .order_by("-occurred_at", "-pk")[:limit]
    )


def stage_changes_of(subject, user, limit=LIMIT):
    """The newest stage changes shown with ``subject``: an opportunity's own, or those
    of an account's visible opportunities; none for leads and contacts."""
    from loudou.pipeline.models import Opportunity, StageChange

    name = subject._meta.model_name
    if name == "opportunity":
        qs = StageChange.objects.filter(opportunity=subject)
    elif name == "account":
        opps = Opportunity.objects.visible_to(user).filter(account=subject).values("pk")
        qs = StageChange.objects.filter(opportunity__in=opps)
    else:
        return []
    return list(
        qs.select_related("from_stage", "to_stage", "changed_by", "opportunity").order_by(
            "-changed_at", "-pk"
        )[:limit]
    )


def merged(subject, user, limit=LIMIT) -> list[Entry]:
    """Activities and stage changes of ``subject`` in one list, newest first; at equal
    times the activity comes first (it was logged about the stage it happened in)."""
    allowed = changeable_owner_ids(user)
    activities = (
        Entry(a.occurred_at, "activity", a, allowed is None or a.owner_id in allowed)
        for a in activities_of(subject, user, limit)
    )
    changes = (Entry(c.changed_at, "stage", c) for c in stage_changes_of(subject, user, limit))
    return list(heapq.merge(activities, changes, key=lambda e: e.at, reverse=True))[:limit]
