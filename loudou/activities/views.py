"""Activity pages: logging from a record's page (htmx), the edit page, deleting, and
the list of my / my team's activities with downloads. Every lookup is scoped with
``visible_to``; every change goes through a service."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loudou.analytics.exports import table_response
from loudou.core.exceptions import ServiceError
from loudou.org.models import User
from loudou.web.helpers import read_filters, save_with_service

from . import services
from .choices import Kind, Outcome, Purpose
from .filters import ActivityFilter
from .forms import ActivityForm
from .models import Activity
from .services import LINKS
from .templatetags.activity_tags import panel_context
from .timeline import changeable_owner_ids

PAGE_SIZE = 50
EXPORT_LIMIT = 100_000


def _subject(request, subject_type, pk):
    model = LINKS.get(subject_type)
    if model is None:
        raise Http404
    return get_object_or_404(model.objects.visible_to(request.user), pk=pk)


def _visible_activity(request, pk) -> Activity:
    return get_object_or_404(
        Activity.objects.visible_to(request.user).select_related(
            "owner", "lead", "account", "contact", "opportunity"
        ),
        pk=pk,
    )


@login_required
@require_POST
def log(request, subject_type, pk):
    """Log an activity on a record from its page. htmx gets the panel back (a fresh form
    and the timeline, or the form with its errors); a plain form post goes back to the
    record's page."""
    subject = _subject(request, subject_type, pk)
    form = ActivityForm(request.POST)
    saved = None
    if form.is_valid():
        saved = save_with_service(
            form,
            lambda: services.log_activity(
                request.user, **{subject_type: subject}, **form.service_data()
            ),
        )
    if not request.htmx:
        if saved:
            messages.success(request, _("Activity logged."))
        else:
            messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
        return redirect(subject)
    context = panel_context(subject, request.user, None if saved else form, saved=bool(saved))
    response = render(request, "activities/_panel_body.html", context)
    if saved:
        # Other panels on the page (the task panel) listen for this and refresh.
        response["HX-Trigger"] = "activity-logged"
    return response


@login_required
def activity_edit(request, pk):
    """An activity's page: its fields, editable by the owner, their manager or an admin."""
    activity = _visible_activity(request, pk)
    allowed = changeable_owner_ids(request.user)
    can_change = allowed is None or activity.owner_id in allowed
    initial = {
        "kind": activity.kind, "outcome": activity.outcome, "purpose": activity.purpose,
        "occurred_at": timezone.localtime(activity.occurred_at).strftime("%Y-%m-%dT%H:%M"),
        "duration_minutes": activity.duration_minutes, "notes": activity.notes,
        "gave_something": activity.gave_something, "gave_what": activity.gave_what,
        "version": activity.version,
    }  # fmt: skip
    form = ActivityForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.service_data()
        data.setdefault("occurred_at", activity.occurred_at)
        saved = save_with_service(
            form,
            lambda: services.update_activity(
                activity, actor=request.user, version=form.cleaned_data["version"], **data
            ),
        )
        if saved:
            messages.success(request, _("Activity saved."))
            return redirect(saved.subject or "activities:activities")
    return render(
        request,
        "activities/activity_form.html",
        {"nav": "activities", "form": form, "activity": activity, "can_change": can_change},
    )


@login_required
@require_POST
def activity_delete(request, pk):
    """Delete an activity (the page asks for confirmation first)."""
    activity = _visible_activity(request, pk)
    subject = activity.subject
    version = request.POST.get("version") or None
    try:
        services.delete_activity(activity, actor=request.user, version=version)
    except ServiceError as exc:
        if request.htmx:
            return HttpResponse(exc.message, status=exc.status)
        messages.error(request, exc.message)
        return redirect(activity)
    if request.htmx:
        return HttpResponse("")
    messages.success(request, _("Activity deleted."))
    return redirect(subject or "activities:activities")


def _rows(qs):
    for a in qs.iterator(chunk_size=2000):
        yield [
            timezone.localtime(a.occurred_at).strftime("%Y-%m-%d %H:%M"),
            str(a.owner or ""),
            a.get_kind_display(),
            a.get_purpose_display(),
            a.get_outcome_display() if a.outcome else "",
            a.duration_minutes,
            a.gave_something,
            a.gave_what,
            str(a.account or ""),
            str(a.contact or ""),
            str(a.opportunity or ""),
            str(a.lead or ""),
            a.notes,
        ]


def _headers() -> list[str]:
    return [
    _("When"), _("Owner"), _("Type"), _("Purpose"), _("Outcome"), _("Minutes"),
    _("Gave something"), _("What was given"), _("Account"), _("Contact"), _("Opportunity"),
    _("Lead"), _("Notes"),
    ]  # fmt: skip


@login_required
def activity_list(request):
    """My / my team's activities (everything the user may see), filtered, newest first;
    ``?format=csv`` or ``xlsx`` downloads the filtered list."""
    filters = read_filters(request, ActivityFilter)
    qs = (
        filters.apply(Activity.objects.visible_to(request.user), request.user)
        .select_related("owner", "lead", "account", "contact", "opportunity")
        .order_by("-occurred_at", "-pk")
    )
    fmt = request.GET.get("format")
    if fmt in {"csv", "xlsx"}:
        return table_response(fmt, f"activities.{fmt}", _headers(), _rows(qs[:EXPORT_LIMIT]))
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    allowed = changeable_owner_ids(request.user)
    return render(
        request,
        "activities/activity_list.html",
        {
            "nav": "activities",
            "page": page,
            "query": query.urlencode(),
            "filters": filters,
            "allowed": allowed,
            "kinds": Kind.choices,
            "outcomes": Outcome.choices,
            "purposes": Purpose.choices,
            "owners": User.objects.visible_to(request.user).filter(is_active=True),
            "linked_choices": [
                ("lead", _("Leads")),
                ("account", _("Accounts")),
                ("contact", _("Contacts")),
                ("opportunity", _("Opportunities")),
            ],  # fmt: skip
        },
    )
