"""``{% unread_notifications as n %}``: the bell's count, one indexed COUNT per page.

A template tag rather than a context processor: the count is computed only where the
bell is drawn (settings stay untouched), and at most once per request."""

from django import template

from ..services import unread_count

register = template.Library()


@register.simple_tag(takes_context=True)
def unread_notifications(context) -> int:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if request is not None:
        cached = getattr(request, "_loudou_unread", None)
        if cached is not None:
            return cached
    count = unread_count(user)
    if request is not None:
        request._loudou_unread = count
    return count


@register.filter
def kind_label(name: str) -> str:
    """The label of a notification kind (the name itself when no app registered it)."""
    from ..kinds import label

    return label(name)
