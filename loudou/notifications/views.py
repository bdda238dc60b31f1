"""The inbox: the user's notifications, newest first; open one (marks it read and
follows its link), mark one or all read. A user only ever reaches their own rows.

The channels page: my e-mail preference, my webhooks and my teams' (managers, admins),
test messages and recent deliveries. Every channel lookup goes through
``Channel.objects.visible_to``: someone else's is a 404."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loudou.core.exceptions import ServiceError
from loudou.web.helpers import save_with_service

from . import delivery, services
from .choices import Flavour
from .forms import FLAVOUR_HELP, EmailPreferenceForm, WebhookForm
from .models import Channel, Delivery, Notification

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


# --- channels -------------------------------------------------------------------------

RECENT_DELIVERIES = 20


def _webhook_or_404(request, pk) -> Channel:
    qs = Channel.objects.visible_to(request.user).webhooks().select_related("team", "user")
    return get_object_or_404(qs, pk=pk)


@login_required
def channels(request, *, email_form=None):
    """Where my notifications go besides the inbox: my e-mail, my webhooks, the webhooks
    of the teams I manage, and the latest deliveries through them."""
    visible = Channel.objects.visible_to(request.user)
    hooks = list(visible.webhooks().select_related("team").order_by("name", "pk"))
    email = services.email_channel(request.user)
    if email_form is None:
        email_form = EmailPreferenceForm(
            initial={"active": email.active, "kinds": email.kinds, "version": email.version}
        )
    recent = (
        Delivery.objects.visible_to(request.user)
        .select_related("channel", "channel__team", "notification")
        .order_by("-created_at", "-pk")[:RECENT_DELIVERIES]
    )
    teams = services.manageable_teams(request.user)
    return render(
        request,
        "notifications/channels.html",
        {
            "nav": "channels",
            "email": email,
            "email_form": email_form,
            "email_configured": delivery.email_configured(),
            "mine": [c for c in hooks if c.team_id is None],
            "team_hooks": [c for c in hooks if c.team_id is not None],
            "manages_teams": teams.exists(),
            "recent": recent,
            "flavour_help": [(Flavour(f).label, text) for f, text in FLAVOUR_HELP.items()],
        },
    )


@login_required
@require_POST
def email_preference(request):
    """Save my e-mail preference (on/off, which kinds)."""
    form = EmailPreferenceForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        saved = save_with_service(
            form,
            lambda: services.set_email_preference(
                request.user, active=data["active"], kinds=data["kinds"], version=data["version"]
            ),
        )
        if saved is not None:
            messages.success(request, _("E-mail notifications saved."))
            return redirect("notifications:channels")
    return channels(request, email_form=form)


def _webhook_form_page(request, form, channel=None):
    return render(
        request,
        "notifications/webhook_form.html",
        {
            "nav": "channels",
            "form": form,
            "channel": channel,
            "flavour_help": [(Flavour(f).label, text) for f, text in FLAVOUR_HELP.items()],
        },
        status=200 if not form.errors else 422,
    )


@login_required
def webhook_new(request):
    """Add a webhook: my own, or (a manager, an admin) one of my teams'."""
    teams = services.manageable_teams(request.user)
    if request.method == "POST":
        form = WebhookForm(request.POST, teams=teams)
        if form.is_valid():
            team = form.cleaned_data.get("team")
            created = save_with_service(
                form,
                lambda: services.create_webhook(request.user, team=team, **form.service_fields()),
            )
            if created is not None:
                messages.success(request, _("Webhook “%(name)s” added.") % {"name": created})
                return redirect("notifications:channels")
    else:
        initial = {"active": True, "flavour": Flavour.WECOM}
        team_id = request.GET.get("team", "")
        if team_id.isdigit():
            initial["team"] = teams.filter(pk=int(team_id)).first()
        form = WebhookForm(initial=initial, teams=teams)
    return _webhook_form_page(request, form)


@login_required
def webhook_edit(request, pk):
    channel = _webhook_or_404(request, pk)
    if request.method == "POST":
        form = WebhookForm(request.POST, channel=channel)
        if form.is_valid():
            version = form.cleaned_data.get("version") or channel.version
            saved = save_with_service(
                form,
                lambda: services.update_webhook(
                    channel, actor=request.user, version=version, **form.service_fields()
                ),
            )
            if saved is not None:
                messages.success(request, _("Webhook “%(name)s” saved.") % {"name": saved})
                return redirect("notifications:channels")
    else:
        form = WebhookForm(
            channel=channel,
            initial={
                "name": channel.name,
                "flavour": channel.flavour,
                "url": channel.url,
                "kinds": channel.kinds,
                "active": channel.active,
                "include_subteams": channel.include_subteams,
                "version": channel.version,
            },  # fmt: skip
        )
    return _webhook_form_page(request, form, channel)


@login_required
def webhook_delete(request, pk):
    """Confirm, then remove a webhook (and its delivery history)."""
    channel = _webhook_or_404(request, pk)
    if request.method == "POST":
        try:
            services.delete_channel(channel, actor=request.user)
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Webhook “%(name)s” deleted.") % {"name": channel})
        return redirect("notifications:channels")
    count = channel.deliveries.count()
    return render(
        request,
        "notifications/webhook_delete.html",
        {"nav": "channels", "channel": channel, "deliveries": count},
    )


@login_required
@require_POST
def channel_test(request, pk=None):
    """Queue a test message through a webhook (or, without ``pk``, my e-mail) and show
    its delivery, which polls itself until the worker has an answer."""
    if pk is None:
        channel = services.email_channel(request.user)
    else:
        channel = _webhook_or_404(request, pk)
    try:
        sent = services.send_test(channel, actor=request.user)
    except ServiceError as exc:
        if request.htmx:
            return HttpResponse(f'<div class="small text-danger">{escape(exc.message)}</div>')
        messages.error(request, exc.message)
        return redirect("notifications:channels")
    if request.htmx:
        return render(request, "notifications/_test_result.html", {"d": sent})
    messages.info(request, _("Test message queued; its result appears under recent deliveries."))
    return redirect("notifications:channels")


@login_required
def delivery_status(request, pk):
    """One delivery's status (the test button's result polls this until it is final)."""
    found = get_object_or_404(
        Delivery.objects.visible_to(request.user).select_related("channel"), pk=pk
    )
    return render(request, "notifications/_test_result.html", {"d": found})
