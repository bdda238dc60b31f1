"""The task panel for the pages of other apps: ``{% load task_tags %}{% task_panel obj %}``
on a lead, account, contact or opportunity page shows the record's open tasks with a
quick-add form and done checkboxes, and refreshes itself when an activity is logged on
the same page (htmx event ``activity-logged``)."""

from django import template
from django.utils import timezone

from ..forms import TaskForm
from ..models import Task
from ..queries import mark_changeable, with_related

register = template.Library()

PANEL_LIMIT = 20


def panel_context(subject, user, form=None, *, saved=False) -> dict:
    """What ``tasks/_panel.html`` needs (also used by the panel's view)."""
    from ..services import assignable_people

    people = list(assignable_people(user))
    if form is None:
        form = TaskForm(
            people=people,
            initial={"due_date": timezone.localdate(), "assignees": [str(user.pk)], "kind": "call"},
        )
    open_tasks = with_related(Task.objects.visible_to(user).on(subject).open()).order_by(
        "due_at", "pk"
    )
    rows = list(open_tasks[: PANEL_LIMIT + 1])
    return {
        "subject": subject,
        "subject_type": subject._meta.model_name,
        "tasks": mark_changeable(rows[:PANEL_LIMIT], user),
        "more": len(rows) > PANEL_LIMIT,
        "form": form,
        "people": people,
        "saved": saved,
        "now": timezone.now(),
        "user": user,
    }


@register.inclusion_tag("tasks/_panel.html", takes_context=True)
def task_panel(context, subject):
    """The record's open tasks, the quick-add form and done checkboxes."""
    return panel_context(subject, context["request"].user)
