"""Visit pages: the visits list with the weekly statistics (and their downloads),
planning, and the visit page made for a phone — check in, record, reschedule, cancel.
Every lookup is scoped with ``visible_to``; every change goes through ``services``."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loudou.analytics.exports import Percent, table_response
from loudou.analytics.periods import local_midnight
from loudou.customers.models import Account, Contact
from loudou.org.models import User, assignable_owners
from loudou.pipeline.choices import Status
from loudou.pipeline.models import Opportunity
from loudou.web.helpers import save_with_service

from ..choices import Outcome, VisitStatus
from ..forms import now_value
from ..models import Visit
from . import services
from .forms import CancelForm, CheckInForm, PlanForm, RecordForm, RescheduleForm
from .queries import last_weeks, people_in_scope, stats_rows, weekly_stats

LIST_LIMIT = 10
WEEK_CHOICES = (8, 12)
ACCOUNT_CHOICES_LIMIT = 500


def _visible(request, pk) -> Visit:
    return get_object_or_404(
        Visit.objects.visible_to(request.user).select_related(
            "account", "owner", "contact", "opportunity", "activity", "task"
        ),
        pk=pk,
    )


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _is_team_viewer(user) -> bool:
    return bool(user.sees_everything or user.managed_team_path)


# --- the list and the statistics -------------------------------------------------------------


def _stats_rows(stats, people):
    """The statistics' rows, best first."""
    rows = stats_rows(stats, people)
    rows.sort(key=lambda r: (-r["total"].done, -r["total"].planned, str(r["person"])))
    return rows


def _chart(stats) -> dict:
    weeks = [stats.week_total(m) for m in stats.weeks]
    return {
        "id": "visit-chart",
        "weeks": [m.strftime("%m-%d") for m in stats.weeks],
        "series": [
            {"name": _("Done"), "color": "#198754", "values": [w.done for w in weeks]},
            {"name": _("Cancelled"), "color": "#adb5bd", "values": [w.cancelled for w in weeks]},
            {
                "name": _("Not done yet"),
                "color": "#9ec5fe",
                "values": [w.planned - w.done - w.cancelled for w in weeks],
            },
        ],
        "share": {
            "name": _("Checked in"),
            "values": [
                None if w.checked_in_share is None else round(w.checked_in_share, 3) for w in weeks
            ],
        },
        "far": {"name": _("Far from the address"), "values": [w.far for w in weeks]},
    }


def _download(fmt, stats, rows):
    headers = [
        _("Person"), _("Week (Monday)"), _("Planned"), _("Done"), _("Cancelled"),
        _("Checked in"), _("Checked-in share"), _("Far from the address"),
    ]  # fmt: skip

    def lines():
        for row in rows:
            for monday, counts in zip(stats.weeks, row["weeks"], strict=True):
                share = counts.checked_in_share
                yield [
                    str(row["person"]), monday, counts.planned, counts.done, counts.cancelled,
                    counts.checked_in, None if share is None else Percent(share), counts.far,
                ]  # fmt: skip

    return table_response(fmt, "visits", headers, lines())


@login_required
def visit_list(request):
    """My planned visits (today first, then overdue, then upcoming) and recent done or
    cancelled ones; a manager sees the team's. Below, visits per rep and week with a
    chart; ``?format=csv`` or ``xlsx`` downloads the statistics."""
    user = request.user
    team_viewer = _is_team_viewer(user)
    scope = request.GET.get("scope") or ("team" if team_viewer else "mine")
    if not team_viewer:
        scope = "mine"
    people = people_in_scope(user) if scope == "team" else User.objects.filter(pk=user.pk)
    owner_id = _int(request.GET.get("owner")) if scope == "team" else None
    if owner_id is not None:
        people = people.filter(pk=owner_id)
    people = list(people.order_by("name", "username"))
    weeks = _int(request.GET.get("weeks"), WEEK_CHOICES[0])
    weeks = weeks if weeks in WEEK_CHOICES else WEEK_CHOICES[0]
    stats = weekly_stats(last_weeks(weeks), [p.pk for p in people])
    rows = _stats_rows(stats, people)
    fmt = request.GET.get("format")
    if fmt in {"csv", "xlsx"}:
        return _download(fmt, stats, rows)

    visits = Visit.objects.visible_to(user).select_related("account", "owner", "contact")
    if owner_id is not None:
        visits = visits.filter(owner_id=owner_id)
    elif scope == "mine":
        shared = Visit.shared_with.through.objects.filter(user=user).values("visit_id")
        visits = visits.filter(Q(owner=user) | Q(pk__in=shared))
    start = local_midnight(timezone.localdate())
    end = start + timedelta(days=1)
    planned = visits.planned().order_by("planned_for", "pk")
    overdue = planned.filter(planned_for__lt=start).order_by("-planned_for")
    past = visits.exclude(status=VisitStatus.PLANNED).order_by("-planned_for", "-pk")
    context = {
        "nav": "activities",
        "scope": scope,
        "team_viewer": team_viewer,
        "owner_id": owner_id,
        "owners": list(people_in_scope(user).filter(is_active=True).order_by("name"))
        if team_viewer
        else [],
        "today": list(planned.filter(planned_for__gte=start, planned_for__lt=end)),
        "overdue": list(overdue[:LIST_LIMIT]),
        "upcoming": list(planned.filter(planned_for__gte=end)[:LIST_LIMIT]),
        "past": list(past[:LIST_LIMIT]),
        "stats": stats,
        "rows": rows,
        "totals": [stats.week_total(m) for m in stats.weeks],
        "total": stats.total(),
        "weeks": weeks,
        "week_choices": WEEK_CHOICES,
        "chart": _chart(stats),
        "far_metres": settings.LOUDOU_VISIT_FAR_METRES,
    }
    return render(request, "activities/visits/visit_list.html", context)


# --- planning ------------------------------------------------------------------------------------


def _plan_form(request, data, account):
    user = request.user
    accounts = Account.objects.visible_to(user)
    if account is None:
        # The rep's own accounts first, for a short list; anything else from its page.
        mine = accounts.filter(owner=user) if not user.sees_everything else accounts
        choices = list(mine.order_by("name").values_list("pk", "name")[:ACCOUNT_CHOICES_LIMIT])
    else:
        choices = [(account.pk, account.name)]
    contacts, opportunities = [], []
    if account is not None:
        contacts = Contact.objects.visible_to(user).filter(account=account).order_by("name")
        contacts = list(contacts.values_list("pk", "name"))
        opportunities = Opportunity.objects.visible_to(user).filter(
            account=account, status=Status.OPEN
        )
        opportunities = list(opportunities.order_by("name").values_list("pk", "name"))
    owners = []
    if _is_team_viewer(user):
        owners = [(u.pk, str(u)) for u in assignable_owners(user).order_by("name")]
    return PlanForm(
        data, accounts=choices, contacts=contacts, opportunities=opportunities, owners=owners,
        initial={"account": getattr(account, "pk", None), "owner": user.pk},
    )  # fmt: skip


def _next_url(request):
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return ""


@login_required
def visit_plan(request):
    """Plan a visit; ``?account=`` (from the account page) fixes the account. Changing
    the account reloads the form with its contacts and open opportunities."""
    user = request.user
    source = request.POST if request.method == "POST" else request.GET
    account = None
    account_id = _int(source.get("account"))
    if account_id is not None:
        account = Account.objects.visible_to(user).filter(pk=account_id).first()
        if account is None and request.method == "GET":
            raise Http404
    if request.method != "POST":
        form = _plan_form(request, None, account)
        if account is not None:
            form.initial["planned_for"] = source.get("planned_for") or _next_hour()
        else:
            form.initial["planned_for"] = _next_hour()
        return _render_plan(request, form, account)
    form = _plan_form(request, request.POST, account)
    visit = None
    if form.is_valid():
        data = form.cleaned_data
        visit = save_with_service(form, lambda: services.plan_visit(
            user, account=account, planned_for=data["planned_for"],
            contact=_pick(Contact, user, data["contact"]),
            opportunity=_pick(Opportunity, user, data["opportunity"]),
            purpose=data["purpose"], topic=data["topic"],
            owner=_pick_owner(user, data.get("owner")),
        ))  # fmt: skip
    if visit is None:
        return _render_plan(request, form, account, status=422)
    messages.success(request, _("Visit planned; it is in the calendar."))
    return redirect(_next_url(request) or visit.get_absolute_url())


def _render_plan(request, form, account, status=200):
    context = {"nav": "activities", "form": form, "account": account, "next": _next_url(request)}
    return render(request, "activities/visits/visit_plan.html", context, status=status)


def _next_hour() -> str:
    moment = timezone.localtime() + timedelta(hours=1)
    return moment.replace(minute=0).strftime("%Y-%m-%dT%H:%M")


def _pick(model, user, pk):
    """A row the user may see, or a placeholder the service refuses (never a lookup
    outside the scope)."""
    if pk is None:
        return None
    found = model.objects.visible_to(user).filter(pk=pk).first()
    return found if found is not None else model(pk=pk)


def _pick_owner(user, pk):
    if pk is None or pk == user.pk:
        return user
    owner = assignable_owners(user).filter(pk=pk).first()
    return owner if owner is not None else User(pk=pk)


# --- the visit page -----------------------------------------------------------------------------


def _page_context(request, visit, **forms):
    user = request.user
    can_change = services.can_change(visit, user)
    record_initial = {
        "outcome": Outcome.VISITED,
        "check_out": visit.is_checked_in and visit.checked_out_at is None,
        "version": visit.version,
    }
    return {
        "nav": "activities",
        "visit": visit,
        "is_owner": visit.owner_id == user.pk,
        "can_change": can_change,
        "record_form": forms.get("record") or RecordForm(initial=record_initial),
        "checkin_errors": forms.get("checkin_errors", []),
        "reschedule_form": forms.get("reschedule")
        or RescheduleForm(
            initial={
                "planned_for": timezone.localtime(visit.planned_for).strftime("%Y-%m-%dT%H:%M"),
                "version": visit.version,
            }
        ),
        "cancel_form": forms.get("cancel") or CancelForm(initial={"version": visit.version}),
        "open_panel": forms.get("open_panel", ""),
        "far_metres": settings.LOUDOU_VISIT_FAR_METRES,
        "now_value": now_value(),
    }


@login_required
def visit_detail(request, pk):
    """One visit, made for a phone: check in, then record; or reschedule, cancel."""
    visit = _visible(request, pk)
    return render(request, "activities/visits/visit_detail.html", _page_context(request, visit))


def _answer(request, visit, saved, done_message, **forms):
    """htmx: the visit's body again (fresh, or with the errors); otherwise a redirect
    with a message."""
    if not request.htmx:
        if saved:
            messages.success(request, done_message)
        else:
            errors = [e for form in forms.values() if hasattr(form, "errors") for e in _flat(form)]
            errors += forms.get("checkin_errors", [])
            messages.error(request, " ".join(errors) or _("The action was refused."))
        return redirect(visit)
    fresh = _visible(request, visit.pk)
    context = _page_context(request, fresh, **({} if saved else forms))
    if saved:
        context["flash"] = done_message
    return render(request, "activities/visits/_visit_body.html", context)


def _flat(form):
    return [e for errors in form.errors.values() for e in errors]


@login_required
@require_POST
def visit_check_in(request, pk):
    """The position the browser gave on the owner's click."""
    visit = _visible(request, pk)
    form = CheckInForm(request.POST)
    saved, errors = None, []
    if form.is_valid():
        data = form.cleaned_data
        saved = save_with_service(form, lambda: services.check_in(
            visit, actor=request.user, latitude=data["latitude"], longitude=data["longitude"],
            accuracy=data["accuracy"] or None, version=data["version"],
        ))  # fmt: skip
    if saved is None:
        errors = _flat(form) or [_("Your position did not arrive; try again.")]
    return _answer(request, visit, saved, _("Checked in."), checkin_errors=errors)


def _act(request, pk, form_class, panel, done_message, service):
    """Validate ``form_class`` on the POST and run ``service(visit, actor=…, **data)``
    with its cleaned data; the answer shows the refusal on the form of ``panel``."""
    visit = _visible(request, pk)
    form = form_class(request.POST)
    saved = None
    if form.is_valid():
        data = form.cleaned_data
        saved = save_with_service(form, lambda: service(visit, actor=request.user, **data))
    return _answer(request, visit, saved, done_message, **{panel: form}, open_panel=panel)


@login_required
@require_POST
def visit_record(request, pk):
    """Record how the visit went: logs its activity and completes its task."""
    return _act(request, pk, RecordForm, "record", _("Visit recorded."), services.record_visit)


@login_required
@require_POST
def visit_reschedule(request, pk):
    return _act(
        request, pk, RescheduleForm, "reschedule", _("Visit moved."), services.reschedule_visit
    )


@login_required
@require_POST
def visit_cancel(request, pk):
    return _act(request, pk, CancelForm, "cancel", _("Visit cancelled."), services.cancel_visit)
