"""The activity panel and the merged timeline, for the pages of other apps: they include
``activities/_panel.html`` and need no view change."""

from django import template

from ..choices import Kind
from ..forms import ActivityForm, now_value
from ..timeline import merged

register = template.Library()

ICONS = {
    Kind.CALL: "bi-telephone",
    Kind.VISIT: "bi-geo-alt",
    Kind.EMAIL: "bi-envelope",
    Kind.WECHAT: "bi-wechat",
    Kind.MEETING: "bi-people",
    Kind.RESEARCH: "bi-search",
    Kind.OTHER: "bi-three-dots",
}


@register.filter
def activity_icon(kind) -> str:
    return ICONS.get(kind, "bi-three-dots")


def panel_context(subject, user, form=None, *, saved=False) -> dict:
    """What ``activities/_panel_body.html`` needs (also used by the logging view)."""
    name = subject._meta.model_name
    now = now_value()
    if form is None:
        form = ActivityForm(initial={"occurred_at": now, "shown_now": now})
    context = {
        "subject": subject,
        "subject_type": name,
        "form": form,
        "saved": saved,
        # The opportunity page has its own Timeline card, which this panel refreshes.
        "own_timeline": name != "opportunity",
    }
    # After a save on an opportunity, the response also replaces its Timeline card.
    if context["own_timeline"] or saved:
        context["entries"] = merged(subject, user)
    return context


@register.inclusion_tag("activities/_panel_body.html", takes_context=True)
def activity_panel(context, subject):
    """The quick "log an activity" form and, except on an opportunity, the timeline."""
    return panel_context(subject, context["request"].user)


@register.inclusion_tag("activities/_timeline.html", takes_context=True)
def activity_timeline(context, subject):
    """The merged timeline (activities and stage changes) of ``subject``."""
    return {"entries": merged(subject, context["request"].user), "subject": subject}
