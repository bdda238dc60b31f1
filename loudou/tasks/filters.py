"""The task list filters, shared by the list page, the calendar and the API."""

from datetime import date, timedelta
from typing import Literal

from django.utils import timezone
from ninja import Field, Schema

from loudou.activities.filters import FIRST_DAY, LAST_DAY, KindValue
from loudou.analytics.periods import local_midnight
from loudou.pipeline.filters import RowId

AssigneeValue = Literal["me", "team", "any"]
StatusValue = Literal["open", "overdue", "today", "week", "done", "all"]


def team_people(user):
    """The people whose tasks a user sees as "my team": a manager their subtree, an admin
    everyone active, a rep only themself."""
    from loudou.org.models import assignable_owners

    return assignable_owners(user)


class TaskFilter(Schema):
    """What the task lists can be narrowed by. ``apply`` takes a queryset already scoped
    with ``visible_to`` and never widens it."""

    assignee: AssigneeValue = Field(
        "me",
        description="me: tasks I am an assignee of; team: tasks of anyone in my team "
        "(managers: the team subtree; admins: everyone); any: every task I may see.",
    )
    person: RowId | None = Field(None, description="With assignee=team: only this person.")
    status: StatusValue = Field(
        "open",
        description="open (default), overdue (open and past due), today (open, due by the "
        "end of today, overdue included), week (open, due in the next 7 days, overdue "
        "included), done, all.",
    )
    kind: KindValue | None = None
    due_from: date | None = Field(
        None, ge=FIRST_DAY, le=LAST_DAY, description="Due on or after this local day."
    )
    due_to: date | None = Field(
        None, ge=FIRST_DAY, le=LAST_DAY, description="Due on or before this local day."
    )
    lead: RowId | None = None
    account: RowId | None = None
    contact: RowId | None = None
    opportunity: RowId | None = None

    def people(self, user):
        """The assignees this filter asks for, as a queryset of users."""
        from loudou.org.models import User

        if self.assignee == "team":
            people = team_people(user)
            if self.person is not None:
                people = people.filter(pk=self.person)
            return people
        return User.objects.filter(pk=user.pk)

    def apply(self, qs, user, *, now=None, status=True):
        """Narrow ``qs``; with ``status=False`` the status is left out (the calendar
        shows done and open tasks of its period)."""
        if self.assignee != "any":
            qs = qs.assigned_to_any(self.people(user).values("pk"))
        if status:
            qs = self.apply_status(qs, now)
        if self.kind:
            qs = qs.filter(kind=self.kind)
        for name in ("lead", "account", "contact", "opportunity"):
            value = getattr(self, name)
            if value is not None:
                qs = qs.filter(**{f"{name}_id": value})
        if self.due_from:
            qs = qs.filter(due_at__gte=local_midnight(self.due_from))
        if self.due_to:
            qs = qs.filter(due_at__lt=local_midnight(self.due_to + timedelta(days=1)))
        return qs

    def apply_status(self, qs, now=None):
        now = now or timezone.now()
        today = timezone.localdate(now)
        if self.status == "open":
            return qs.open()
        if self.status == "overdue":
            return qs.overdue(now)
        if self.status == "today":
            return qs.open().filter(due_at__lt=local_midnight(today + timedelta(days=1)))
        if self.status == "week":
            return qs.open().filter(due_at__lt=local_midnight(today + timedelta(days=8)))
        if self.status == "done":
            return qs.done()
        return qs

    def ordering(self) -> list[str]:
        return ["-done_at", "-pk"] if self.status == "done" else ["due_at", "pk"]
