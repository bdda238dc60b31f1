"""The inbox: the user's notifications, newest first; open one (marks it read and
follows its link), mark one or all read. A user only ever reaches their own rows."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import services
from .models import Notification

PAGE_SIZE = 30
MENU_SIZE = 5


@login_required
def inbox(request):
    """Every notification of the user (or only the unread ones), paginated."""
    unread_only = request.GET.get("unread") == "1"
    qs = Notification.objects.for_user(request.user)
    if unread_only:
        qs = qs.unread()
    page = Paginator(qs.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "notifications/inbox.html",
        {
            "nav": "notifications",
            "page": page,
            "unread_only": unread_only,
            "query": "unread=1" if unread_only else "",
        },
    )


@login_required
def menu(request):
    """The bell's drop-down (loaded by htmx when opened): the latest few notifications."""
    latest = Notification.objects.for_user(request.user).order_by("-created_at", "-pk")
    return render(request, "notifications/_menu.html", {"latest": latest[:MENU_SIZE]})


@login_required
def open_notification(request, pk):
    """Mark the notification read and follow its link (only a link into this site)."""
    notification = get_object_or_404(Notification.objects.for_user(request.user), pk=pk)
    services.mark_read(request.user, [notification.pk])
    url = notification.url
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(url)
    return redirect("notifications:inbox")


@login_required
@require_POST
def mark_read(request, pk):
    notification = get_object_or_404(Notification.objects.for_user(request.user), pk=pk)
    services.mark_read(request.user, [notification.pk])
    if request.headers.get("HX-Request"):
        notification.refresh_from_db()
        return render(request, "notifications/_item.html", {"n": notification})
    return redirect(request.POST.get("next") or "notifications:inbox")


@login_required
@require_POST
def mark_all_read(request):
    count = services.mark_all_read(request.user)
    messages.success(request, _("%d notifications marked read.") % count)
    return redirect("notifications:inbox")


@login_required
def channels(request):
    return render(request, "web/placeholder.html", {})
