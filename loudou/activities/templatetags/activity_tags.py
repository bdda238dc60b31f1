"""The activity panel and the merged timeline, for the pages of other apps: they include
``activities/_panel.html`` and need no view change."""

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _

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


@register.filter
def distance(metres) -> str:
    """``320 m`` below a kilometre, ``2.4 km`` above (one decimal up to 10 km)."""
    if metres is None:
        return ""
    metres = int(metres)
    if metres < 1000:
        return _("%(n)s m") % {"n": metres}
    km = metres / 1000
    text = number_format(round(km, 1) if km < 10 else round(km), 1 if km < 10 else 0)
    return _("%(n)s km") % {"n": text}


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


@register.inclusion_tag("activities/visits/_account_visits.html", takes_context=True)
def visit_card(context, subject):
    """On an account's page: its next planned visits the user may see and a "Plan a
    visit" button. Nothing on other pages."""
    if subject._meta.model_name != "account":
        return {"show": False}
    from ..models import Visit

    user = context["request"].user
    planned = (
        Visit.objects.visible_to(user)
        .planned()
        .filter(account=subject)
        .select_related("owner")
        .order_by("planned_for", "pk")[:5]
    )
    request = context["request"]
    return {"show": True, "account": subject, "planned": list(planned), "request": request}
