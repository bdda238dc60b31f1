"""Task pages: my / my team's task list with quick add and done checkboxes, a task's
page (edit, done, reopen, delete), the task panel of a record's page (htmx), the
calendar (day / week / month) and the secret calendar feed. Every lookup is scoped with
``visible_to``; every change goes through a service."""

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loudou.activities.services import LINKS
from loudou.core.exceptions import ServiceError
from loudou.web.helpers import read_filters, save_with_service

from . import ics, queries, services
from .filters import TaskFilter, team_people
from .forms import TaskForm
from .models import CalendarFeed, Task
from .templatetags.task_tags import panel_context

PAGE_SIZE = 50


def _status_labels():
    return [
        ("open", _("Open")), ("overdue", _("Overdue")), ("today", _("Today")),
        ("week", _("Next 7 days")), ("done", _("Done")), ("all", _("All")),
    ]  # fmt: skip


def _visible_task(request, pk) -> Task:
    return get_object_or_404(queries.with_related(Task.objects.visible_to(request.user)), pk=pk)


def _is_lead(user) -> bool:
    """Whether the user has a team to look at (managers and admins)."""
    return user.sees_everything or bool(user.managed_team_path)


def _new_form(request, data=None, **initial):
    people = services.assignable_people(request.user)
    today = timezone.localdate()
    return TaskForm(
        data,
        people=people,
        initial={"due_date": today, "assignees": [str(request.user.pk)], **initial},
    )


@login_required
def task_list(request):
    """My tasks (or, for a manager, the team's), by status, soonest first; the new-task
    form on top."""
    filters = read_filters(request, TaskFilter)
    if not _is_lead(request.user) and filters.assignee == "team":
        filters.assignee, filters.person = "me", None
    qs = filters.apply(Task.objects.visible_to(request.user), request.user)
    qs = queries.with_related(qs).order_by(*filters.ordering())
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = queries.mark_changeable(page.object_list, request.user)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "tasks/task_list.html",
        {
            "nav": "activities",
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
            "statuses": _status_labels(),
            "subject_params": [
                (name, getattr(filters, name))
                for name in ("lead", "account", "contact", "opportunity")
                if getattr(filters, name)
            ],
            "is_lead": _is_lead(request.user),
            "people": team_people(request.user) if _is_lead(request.user) else (),
            "form": _new_form(request),
            "now": timezone.now(),
        },
    )


@login_required
@require_POST
def task_create(request):
    """The new-task form of the list page."""
    form = _new_form(request, request.POST)
    saved = None
    if form.is_valid():
        saved = save_with_service(
            form, lambda: services.create_task(request.user, **form.service_data())
        )
    if saved:
        messages.success(request, _("Task added."))
        return redirect("tasks:tasks")
    messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect("tasks:tasks")


@login_required
def task_detail(request, pk):
    """A task's page: what, when, who, links; editable by whoever may change it."""
    task = _visible_task(request, pk)
    can_change = services.can_change(task, request.user)
    form = TaskForm(
        request.POST or None,
        people=services.assignable_people(request.user),
        task=task,
        initial=TaskForm.initial_for(task),
    )
    if request.method == "POST" and can_change and form.is_valid():
        data = form.service_data()
        saved = save_with_service(
            form,
            lambda: services.update_task(
                task, actor=request.user, version=form.cleaned_data["version"], **data
            ),
        )
        if saved:
            messages.success(request, _("Task saved."))
            return redirect(saved)
    return render(
        request,
        "tasks/task_detail.html",
        {"nav": "activities", "task": task, "form": form, "can_change": can_change},
    )


def _answer_refusal(request, exc, task):
    if request.htmx:
        return HttpResponse(exc.message, status=exc.status)
    messages.error(request, exc.message)
    return redirect(task)


def _after_toggle(request, task):
    """htmx: the task's row (list) or the record's panel; otherwise back where it was."""
    where = request.POST.get("from", "")
    if request.htmx and where == "panel" and task.subject is not None:
        subject = task.subject
        return render(request, "tasks/_panel.html", panel_context(subject, request.user))
    if request.htmx:
        t = queries.mark_changeable(
            [queries.with_related(Task.objects.filter(pk=task.pk)).get()], request.user
        )[0]
        return render(request, "tasks/_row.html", {"t": t, "now": timezone.now()})
    return redirect(request.POST.get("next") or task.get_absolute_url())


@login_required
@require_POST
def task_complete(request, pk):
    """Tick a task done (the checkbox of lists and panels, the button of its page)."""
    task = _visible_task(request, pk)
    try:
        task = services.complete_task(task, actor=request.user)
    except ServiceError as exc:
        return _answer_refusal(request, exc, task)
    return _after_toggle(request, task)


@login_required
@require_POST
def task_reopen(request, pk):
    """Untick a done task."""
    task = _visible_task(request, pk)
    try:
        task = services.reopen_task(task, actor=request.user)
    except ServiceError as exc:
        return _answer_refusal(request, exc, task)
    return _after_toggle(request, task)


@login_required
@require_POST
def task_delete(request, pk):
    """Delete a task (the page asks for confirmation first)."""
    task = _visible_task(request, pk)
    subject = task.subject
    try:
        services.delete_task(task, actor=request.user, version=request.POST.get("version") or None)
    except ServiceError as exc:
        return _answer_refusal(request, exc, task)
    messages.success(request, _("Task deleted."))
    return redirect(subject or "tasks:tasks")


# --- the panel on a record's page ---------------------------------------------------------


def _subject(request, subject_type, pk):
    model = LINKS.get(subject_type)
    if model is None:
        raise Http404
    return get_object_or_404(model.objects.visible_to(request.user), pk=pk)


@login_required
def panel(request, subject_type, pk):
    """GET: the record's task panel (htmx refreshes it after an activity is logged).
    POST: quick-add a task linked to the record; the panel comes back with the new task
    or the form's errors."""
    subject = _subject(request, subject_type, pk)
    if request.method != "POST":
        return render(request, "tasks/_panel.html", panel_context(subject, request.user))
    form = TaskForm(request.POST, people=services.assignable_people(request.user))
    saved = None
    if form.is_valid():
        saved = save_with_service(
            form,
            lambda: services.create_task(
                request.user, **{subject_type: subject}, **form.service_data()
            ),
        )
    if not request.htmx:
        if saved:
            messages.success(request, _("Task added."))
        else:
            messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
        return redirect(subject)
    context = panel_context(subject, request.user, None if saved else form, saved=bool(saved))
    return render(request, "tasks/_panel.html", context)


# --- calendar -----------------------------------------------------------------------------


def _anchor(value) -> date:
    try:
        return date.fromisoformat(value) if value else timezone.localdate()
    except ValueError:
        return timezone.localdate()


@login_required
def calendar(request):
    """Day / week / month of my tasks, or of my team's (managers: everyone or one
    person), placed on their due day: all-day tasks first, then by time."""
    view = request.GET.get("view")
    if view not in queries.VIEWS:
        view = "week"
    today = timezone.localdate()
    p = queries.period(view, _anchor(request.GET.get("date")))
    is_lead = _is_lead(request.user)
    who = request.GET.get("who", "me") if is_lead else "me"
    filters = TaskFilter(assignee="me", status="all")
    person = None
    if who != "me":
        filters.assignee = "team"
        if who.isdigit():
            person = team_people(request.user).filter(pk=int(who)).first()
            filters.person = person.pk if person else None
            if person is None:
                who = "team"
        else:
            who = "team"
    start, end = p.bounds
    scoped = filters.apply(Task.objects.visible_to(request.user), request.user, status=False)
    tasks = list(queries.with_related(scoped.due_between(start, end)).order_by("due_at", "pk"))
    overdue_before = 0
    if p.start <= today:
        overdue_before = scoped.overdue().filter(due_at__lt=start).count()
    day_list = queries.days(p, tasks, today)
    feed = services.calendar_feed(request.user)
    feed_url = request.build_absolute_uri(feed.get_absolute_url())
    return render(
        request,
        "tasks/calendar.html",
        {
            "nav": "activities",
            "p": p,
            "days": day_list,
            "weeks": queries.weeks(day_list) if view == "month" else None,
            "count": len(tasks),
            "views": [("day", _("Day")), ("week", _("Week")), ("month", _("Month"))],
            "today": today,
            "now": timezone.now(),
            "who": who,
            "person": person,
            "is_lead": is_lead,
            "people": team_people(request.user) if is_lead else (),
            "overdue_before": overdue_before,
            "feed_url": feed_url,
            "webcal_url": "webcal://" + feed_url.split("://", 1)[1],
        },
    )


@login_required
@require_POST
def feed_regenerate(request):
    """A new secret address for my calendar feed; the old one stops working."""
    services.regenerate_feed(request.user)
    messages.success(
        request,
        _("Your calendar has a new address. Subscribe again with it; the old one no longer works."),
    )
    return redirect(reverse("tasks:calendar") + "#feed")


def feed(request, token):
    """The calendar feed of the user owning ``token``: no login, the token is the key.
    An unknown or replaced token, or a deactivated user, is a 404."""
    row = (
        CalendarFeed.objects.select_related("user")
        .filter(token=token, user__is_active=True)
        .first()
    )
    if row is None:
        raise Http404
    body = ics.feed(row.user, queries.feed_tasks(row.user), request.build_absolute_uri("/"))
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="loudou-tasks.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response
