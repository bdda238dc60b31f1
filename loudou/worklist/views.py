"""The Today page: the worklist (queries.py) beside the PDCA daily plan.

A manager (or an administrator) may open a team member's page with ``?user=``: the
same lists, read-only. Every write is the viewer's own: task ticks, quick activity logs
and plan edits all go through services, and htmx requests get the changed fragment
back (``#worklist``, ``#plan-items``, ``#plan-review``); plain form posts come back to
the page.
"""

from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loudou.activities import services as activity_services
from loudou.activities.choices import Kind, Outcome
from loudou.activities.forms import ActivityForm, now_value
from loudou.core.exceptions import ServiceError
from loudou.customers.models import Account
from loudou.leads.models import Lead
from loudou.pipeline.models import Opportunity
from loudou.tasks.models import Task
from loudou.tasks.services import complete_task
from loudou.web.helpers import save_with_service

from . import services
from .choices import Category, ItemStatus
from .forms import PlanItemForm, PlanItemUpdateForm, PlanReviewForm, ProspectingForm
from .models import MAX_ITEMS, PlanItem
from .queries import parse_day, plan_context, viewable_users, worklist

SUBJECTS = {"lead": Lead, "account": Account, "opportunity": Opportunity}
QUICK_KINDS = (Kind.CALL, Kind.WECHAT, Kind.VISIT, Kind.EMAIL, Kind.MEETING, Kind.OTHER)


def _day(value, default: date) -> date:
    return parse_day(value) or default


def _target(request):
    """Whose page: ``?user=`` among the people the viewer may read, else the viewer."""
    raw = request.GET.get("user")
    if not raw:
        return request.user
    if not raw.isdigit() or len(raw) > 18:
        raise Http404
    return get_object_or_404(viewable_users(request.user), pk=int(raw))


def _worklist_context(request, target, **extra) -> dict:
    wl = worklist(target)
    block = services.prospecting_block(target)
    now = timezone.localtime(wl.now).time()
    planned = set(
        PlanItem.objects.filter(plan__user=target, plan__day=wl.today).values_list(
            "lead_id", "account_id", "opportunity_id", "task_id"
        )
    )
    return {
        "wl": wl,
        "target": target,
        "read_only": target.pk != request.user.pk,
        "prospecting": block,
        "in_block": block.start <= now < block.end,
        "quick_kinds": [(k.value, k.label) for k in QUICK_KINDS],
        "outcomes": Outcome.choices,
        "now_value": now_value(),
        "planned": _planned_keys(planned),
        **extra,
    }


def _planned_keys(rows) -> set[str]:
    keys = set()
    for lead_id, account_id, opportunity_id, task_id in rows:
        for kind, pk in (
            ("lead", lead_id), ("account", account_id), ("opportunity", opportunity_id),
            ("task", task_id),
        ):  # fmt: skip
            if pk:
                keys.add(f"{kind}-{pk}")
    return keys


def _plan_context(request, target, day, **extra) -> dict:
    ctx = plan_context(target, day)
    plan = ctx["plan"]
    initial = {name: getattr(plan, name, "") for name in services.PLAN_FIELDS}
    initial["version"] = plan.version if plan else 0
    ctx.update(
        target=target,
        read_only=target.pk != request.user.pk,
        today=timezone.localdate(),
        max_items=MAX_ITEMS,
        full=len(ctx["items"]) >= MAX_ITEMS,
        categories=Category.choices,
        statuses=ItemStatus.choices,
        review_form=extra.pop("review_form", None) or PlanReviewForm(initial=initial),
        item_form=extra.pop("item_form", None) or PlanItemForm(),
        **extra,
    )
    return ctx


@login_required
def today(request):
    """The worklist and the daily plan; ``?user=`` a team member's (read-only),
    ``?date=`` the plan of another day."""
    target = _target(request)
    local_today = timezone.localdate()
    day = _day(request.GET.get("date"), local_today)
    team = None
    if request.user.sees_everything or request.user.managed_team_path:
        team = list(viewable_users(request.user).order_by("username"))
    context = {
        "nav": "today",
        "team": team,
        "day": day,
        **_worklist_context(request, target),
        **_plan_context(request, target, day),
        "prospecting_form": ProspectingForm(),
    }
    return render(request, "worklist/today.html", context)


def _back(request, day=None):
    url = reverse("worklist:today")
    if day is not None and day != timezone.localdate():
        url += f"?date={day.isoformat()}"
    return redirect(url)


def _render_worklist(request, **extra):
    return render(
        request, "worklist/_worklist.html", _worklist_context(request, request.user, **extra)
    )


@login_required
@require_POST
def task_done(request, pk):
    """Tick one of my tasks done from the list."""
    task = get_object_or_404(Task.objects.filter(assignees=request.user).distinct(), pk=pk)
    complete_task(task, actor=request.user)
    if not request.htmx:
        messages.success(request, _("Task done."))
        return _back(request)
    return _render_worklist(request, flash=_("Done: %(task)s") % {"task": task.title})


@login_required
@require_POST
def log(request, subject_type, pk):
    """Log an activity on a line's record without leaving the list."""
    model = SUBJECTS.get(subject_type)
    if model is None:
        raise Http404
    subject = get_object_or_404(model.objects.visible_to(request.user), pk=pk)
    form = ActivityForm(request.POST)
    saved = None
    if form.is_valid():
        saved = save_with_service(
            form,
            lambda: activity_services.log_activity(
                request.user, **{subject_type: subject}, **form.service_data()
            ),
        )
    errors = " ".join(e for errs in form.errors.values() for e in errs)
    if not request.htmx:
        if saved:
            messages.success(request, _("Activity logged."))
        else:
            messages.error(request, errors)
        return _back(request)
    if saved:
        return _render_worklist(request, flash=_("Logged: %(what)s") % {"what": subject})
    return _render_worklist(request, log_error=(f"{subject_type}-{pk}", errors))


def _plan_response(request, day, template, **extra):
    if not request.htmx:
        return _back(request, day)
    return render(request, template, _plan_context(request, request.user, day, **extra))


def _refused(request, exc: ServiceError):
    if not request.htmx:
        messages.error(request, exc.message)
    return exc.message


@login_required
@require_POST
def plan_review(request, day):
    """Save the Check and Act parts of my plan of ``day``."""
    day = _day(day, timezone.localdate())
    form = PlanReviewForm(request.POST)
    saved = None
    if form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "version"}
        saved = save_with_service(
            form,
            lambda: services.update_plan(
                request.user, day, actor=request.user, version=form.cleaned_data["version"],
                **data,
            ),
        )  # fmt: skip
    if not request.htmx:
        if saved:
            messages.success(request, _("Plan saved."))
        else:
            messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
        return _back(request, day)
    if saved:
        return _plan_response(request, day, "worklist/_plan_review.html", saved_review=True)
    return _plan_response(request, day, "worklist/_plan_review.html", review_form=form)


@login_required
@require_POST
def plan_add(request, day):
    """Add an item to my plan of ``day`` (typed, or a worklist line's record)."""
    day = _day(day, timezone.localdate())
    form = PlanItemForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        links = {}
        model = SUBJECTS.get(data.get("subject_type") or "")
        if model is not None and data.get("subject_id"):
            links[data["subject_type"]] = (
                model.objects.visible_to(request.user).filter(pk=data["subject_id"]).first()
            )
        if data.get("task_id"):
            links["task"] = Task.objects.filter(pk=data["task_id"]).first()
        save_with_service(
            form,
            lambda: services.add_item(
                request.user, day, actor=request.user, text=data["text"],
                category=data["category"], **links,
            ),
        )  # fmt: skip
    if form.errors:
        if not request.htmx:
            messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
            return _back(request, day)
        return _plan_response(request, day, "worklist/_plan_items.html", item_form=form)
    return _plan_response(request, day, "worklist/_plan_items.html")


def _my_item(request, pk) -> PlanItem:
    return get_object_or_404(
        PlanItem.objects.filter(plan__user=request.user).select_related("plan"), pk=pk
    )


@login_required
@require_POST
def plan_item(request, pk):
    """Do: change one of my items' status or record."""
    item = _my_item(request, pk)
    form = PlanItemUpdateForm(request.POST)
    error = None
    if form.is_valid():
        fields = {k: form.cleaned_data[k] for k in ("status", "note") if k in request.POST}
        try:
            services.update_item(
                item, actor=request.user, version=form.cleaned_data["version"], **fields
            )
        except ServiceError as exc:
            error = _refused(request, exc)
    else:
        error = " ".join(e for errs in form.errors.values() for e in errs)
        if not request.htmx:
            messages.error(request, error)
    return _plan_response(request, item.plan.day, "worklist/_plan_items.html", item_error=error)


@login_required
@require_POST
def plan_item_delete(request, pk):
    """Remove one of my items (the page asks first)."""
    item = _my_item(request, pk)
    raw = request.POST.get("version", "")
    error = None
    try:
        services.delete_item(
            item, actor=request.user, version=int(raw) if raw.isdigit() and len(raw) < 10 else None
        )
    except ServiceError as exc:
        error = _refused(request, exc)
    return _plan_response(request, item.plan.day, "worklist/_plan_items.html", item_error=error)


@login_required
@require_POST
def plan_carry(request, day):
    """Carry the unfinished items of ``day`` to ``to`` (default the next day). The page
    shows ``shown`` afterwards (the day it was on)."""
    day = _day(day, timezone.localdate())
    to = _day(request.POST.get("to"), day + timedelta(days=1))
    shown = _day(request.POST.get("shown"), day)
    error = flash = None
    try:
        _plan, n = services.carry_over(request.user, day, to, actor=request.user)
        flash = _("%(n)s unfinished items carried to %(day)s.") % {"n": n, "day": to.isoformat()}
        if not request.htmx:
            messages.success(request, flash)
    except ServiceError as exc:
        error = _refused(request, exc)
    return _plan_response(
        request, shown, "worklist/_plan_items.html", item_error=error, item_flash=flash
    )


@login_required
@require_POST
def prospecting(request):
    """Set my daily prospecting block."""
    form = ProspectingForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.set_prospecting_time(
                request.user, actor=request.user, start=data["start"], end=data["end"],
                version=data["version"],
            )  # fmt: skip
            messages.success(request, _("Prospecting time saved."))
        except ServiceError as exc:
            messages.error(request, exc.message)
    else:
        messages.error(request, _("Enter a start and an end time."))
    return redirect("worklist:today")
