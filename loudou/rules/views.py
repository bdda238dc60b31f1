"""Rules pages: the rule list (managers read, admins edit, switch on and off, run the
sweep), a rule's form, working hours and holidays, and the breach list of me / my team
with counts per rep and per rule and downloads. Every write goes through a service."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loudou.activities.choices import Kind, Outcome
from loudou.analytics.exports import table_response
from loudou.core.exceptions import ServiceError
from loudou.customers.choices import Grade, Source
from loudou.leads.choices import LeadStatus
from loudou.org.models import User
from loudou.pipeline.models import Pipeline
from loudou.web.helpers import read_filters, save_with_service

from . import queries, services
from .calendar import load_calendar
from .filters import BreachFilter
from .forms import HolidayForm, RuleForm, WorkingHoursForm
from .models import FollowUpRule, Holiday, Requirement, Resolution, SweepRun

PAGE_SIZE = 50
EXPORT_LIMIT = 100_000


def _reader(user) -> bool:
    return user.sees_everything or bool(user.managed_team_path)


def _readers_only(request):
    if not _reader(request.user):
        raise Http404


def _summary(rule) -> str:
    """What the rule asks, in words: "A contact every 14 days · grades C"."""
    n = rule.amount
    words = {
        Requirement.FIRST_CONTACT_WITHIN: _("First contact within %(n)s hours"),
        Requirement.CONTACT_EVERY: _("A contact every %(n)s days"),
        Requirement.CONTACTS_BEFORE_LOST: _("At least %(n)s contacts before closing as lost"),
        Requirement.TASK_ON_OUTCOME: _("Tasks due %(n)s hours after an activity with the outcome"),
        Requirement.STALE_IN_STAGE: _("No longer in a stage than the stage allows"),
        Requirement.REVISIT: _("Revisit within the account's interval"),
        Requirement.GREETING: _("Greeting reminder %(n)s days ahead"),
        Requirement.PAYMENT_OVERDUE: _("Instalments paid by their due date")
        if not n
        else _("Instalments paid within %(n)s days of their due date"),
    }
    text = words[rule.requirement] % {"n": n if n is not None else "—"}
    if rule.use_working_hours and rule.requirement in (
        Requirement.FIRST_CONTACT_WITHIN, Requirement.TASK_ON_OUTCOME
    ):  # fmt: skip
        text += " " + _("(working hours)")
    return text


def _labels(choices, values) -> str:
    names = dict(choices)
    return ", ".join(str(names.get(v, v)) for v in values)


def _conditions(rule) -> str:
    """The rule's conditions in words, with the choices' labels."""
    c = rule.conditions or {}
    parts = []
    if c.get("grades"):
        parts.append(_labels(Grade.choices, c["grades"]))
    if c.get("lead_statuses"):
        parts.append(_labels(LeadStatus.choices, c["lead_statuses"]))
    if c.get("sources"):
        parts.append(_labels(Source.choices, c["sources"]))
    if c.get("pipelines"):
        parts.append(", ".join(str(p) for p in Pipeline.objects.filter(pk__in=c["pipelines"])))
    if c.get("stages"):
        parts.append(_("%(n)d stages") % {"n": len(c["stages"])})
    if c.get("activity_kinds") or c.get("outcomes"):
        parts.append(
            " + ".join(filter(None, [_labels(Kind.choices, c.get("activity_kinds", [])),
                                     _labels(Outcome.choices, c.get("outcomes", []))]))
        )  # fmt: skip
    if c.get("task_kinds"):
        parts.append("→ " + _labels(Kind.choices, c["task_kinds"]))
    if c.get("occasions"):
        names = {"birthday": _("Contacts' birthdays"), "anniversary": _("Company anniversary")}
        parts.append(", ".join(str(names.get(o, o)) for o in c["occasions"]))
    return " · ".join(parts)


@login_required
def rule_list(request):
    """Every rule in order, with what it asks and does, its open breaches and the last
    sweep (managers and admins)."""
    _readers_only(request)
    rules = list(FollowUpRule.objects.order_by("position", "pk"))
    open_counts = {
        row["rule_id"]: row["open"]
        for row in queries.counts_per_rule(queries.visible(request.user).open())
    }
    rows = [
        {"rule": r, "summary": _summary(r), "conditions": _conditions(r),
         "open": open_counts.get(r.pk, 0)}
        for r in rules
    ]  # fmt: skip
    return render(
        request,
        "rules/rule_list.html",
        {
            "nav": "activities",
            "rows": rows,
            "can_edit": request.user.sees_everything,
            "last_run": SweepRun.objects.filter(finished_at__isnull=False).first(),
        },
    )


def _rule_form_page(request, rule, *, title):
    can_edit = request.user.sees_everything
    form = RuleForm(request.POST or None, instance=rule)
    if request.method == "POST":
        if not can_edit:
            raise Http404
        if form.is_valid():
            data = form.service_data()
            if rule.pk:
                call = lambda: services.update_rule(  # noqa: E731
                    rule, actor=request.user, version=form.cleaned_data["version"], **data
                )
            else:
                call = lambda: services.create_rule(actor=request.user, **data)  # noqa: E731
            saved = save_with_service(form, call)
            if saved:
                messages.success(request, _("Rule saved."))
                return redirect("rules:rules")
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    return render(
        request,
        "rules/rule_form.html",
        {"nav": "activities", "form": form, "rule": rule, "title": title, "can_edit": can_edit},
    )


@login_required
def rule_create(request):
    """A new rule (admins)."""
    if not request.user.sees_everything:
        raise Http404
    rule = FollowUpRule(applies_to="account", requirement=Requirement.CONTACT_EVERY, amount=14)
    return _rule_form_page(request, rule, title=_("New follow-up rule"))


@login_required
def rule_detail(request, pk):
    """A rule's form: editable by admins, read-only for managers."""
    _readers_only(request)
    rule = get_object_or_404(FollowUpRule, pk=pk)
    return _rule_form_page(request, rule, title=str(rule))


@login_required
@require_POST
def rule_active(request, pk):
    """Switch a rule on or off (admins; the list asks for confirmation first)."""
    if not request.user.sees_everything:
        raise Http404
    rule = get_object_or_404(FollowUpRule, pk=pk)
    active = request.POST.get("active") == "1"
    try:
        services.set_rule_active(
            rule, actor=request.user, active=active, version=request.POST.get("version") or None
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("rules:rules")
    if active:
        messages.success(request, _("Rule “%(rule)s” is on.") % {"rule": rule})
    else:
        messages.success(
            request, _("Rule “%(rule)s” is off; its open breaches are settled.") % {"rule": rule}
        )
    return redirect("rules:rules")


@login_required
@require_POST
def sweep_now(request):
    """Run the sweep now (admins)."""
    if not request.user.sees_everything:
        raise Http404
    run = services.run_sweep(actor=request.user, full=request.POST.get("full") == "1")
    messages.success(
        request,
        _("Sweep done: %(opened)d breaches found, %(resolved)d settled.")
        % {"opened": run.opened, "resolved": run.resolved},
    )
    return redirect("rules:rules")


# --- working hours and holidays ------------------------------------------------------------


@login_required
def working_time(request):
    """The weekly working hours and the holidays / make-up days the "working hours"
    clock follows (admins edit, managers read)."""
    _readers_only(request)
    can_edit = request.user.sees_everything
    calendar = load_calendar()
    hours_form = WorkingHoursForm(
        request.POST if request.POST.get("form") == "hours" else None, week=calendar.week
    )
    holiday_form = HolidayForm(request.POST if request.POST.get("form") == "holiday" else None)
    if request.method == "POST":
        if not can_edit:
            raise Http404
        if request.POST.get("form") == "hours" and hours_form.is_valid():
            saved = save_with_service(
                hours_form,
                lambda: services.set_working_hours(
                    actor=request.user, periods=hours_form.cleaned_data["periods"]
                ),
            )
            if saved is not None:
                messages.success(request, _("Working hours saved."))
                return redirect("rules:working-time")
        elif request.POST.get("form") == "holiday" and holiday_form.is_valid():
            saved = save_with_service(
                holiday_form,
                lambda: services.save_holiday(actor=request.user, **holiday_form.cleaned_data),
            )
            if saved is not None:
                messages.success(request, _("Day saved."))
                return redirect("rules:working-time")
    today = timezone.localdate()
    return render(
        request,
        "rules/working_time.html",
        {
            "nav": "activities",
            "hours_form": hours_form,
            "holiday_form": holiday_form,
            "holidays": Holiday.objects.filter(date__gte=today.replace(month=1, day=1)),
            "can_edit": can_edit,
        },
    )


@login_required
@require_POST
def holiday_delete(request, pk):
    if not request.user.sees_everything:
        raise Http404
    holiday = get_object_or_404(Holiday, pk=pk)
    services.delete_holiday(holiday, actor=request.user)
    messages.success(request, _("Day removed."))
    return redirect("rules:working-time")


# --- breaches ------------------------------------------------------------------------------


def _headers():
    return [
        _("Rule"), _("Record"), _("Owner"), _("Due"), _("Found"), _("Resolved"),
        _("Resolution"),
    ]  # fmt: skip


def _rows(qs):
    for b in qs.iterator(chunk_size=2000):
        yield [
            str(b.rule), _record(b), str(b.owner), b.due_at, b.opened_at, b.resolved_at,
            b.get_resolution_display() if b.resolution else "",
        ]  # fmt: skip


def _record(breach) -> str:
    if breach.contact_id:
        return f"{breach.contact} · {breach.account}"
    return str(breach.subject or "")


@login_required
def breach_list(request):
    """My open breaches (a rep), my team's (a manager), everyone's (an admin): filtered,
    with counts per rep and per rule, soonest due first; ``?format=csv`` or ``xlsx``
    downloads the filtered list."""
    filters = read_filters(request, BreachFilter)
    scoped = filters.apply(queries.visible(request.user))
    qs = queries.with_related(scoped).order_by("due_at", "pk")
    fmt = request.GET.get("format")
    if fmt in {"csv", "xlsx"}:
        return table_response(fmt, "breaches", _headers(), _rows(qs[:EXPORT_LIMIT]))
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    per_owner = queries.counts_per_owner(scoped)
    per_rule = queries.counts_per_rule(scoped)
    is_lead = _reader(request.user)
    chart = {
        "names": [row["name"] for row in per_owner[:20]],
        "open": [row["open"] for row in per_owner[:20]],
        "resolved": [row["total"] - row["open"] for row in per_owner[:20]],
        "labels": {"open": _("Open"), "resolved": _("Resolved")},
    }
    return render(
        request,
        "rules/breach_list.html",
        {
            "nav": "activities",
            "page": page,
            "query": query.urlencode(),
            "filters": filters,
            "states": [
                ("open", _("Open")),
                ("late", _("Late")),
                ("resolved", _("Resolved")),
                ("all", _("All")),
            ],  # fmt: skip
            "rules": FollowUpRule.objects.filter(
                requirement__in=[
                    r
                    for r in Requirement.values
                    if r not in (Requirement.CONTACTS_BEFORE_LOST, Requirement.TASK_ON_OUTCOME)
                ]
            ).order_by("position", "pk"),  # fmt: skip
            "owners": User.objects.visible_to(request.user).filter(is_active=True)
            if is_lead
            else (),
            "is_lead": is_lead,
            "per_owner": per_owner,
            "per_rule": per_rule,
            "chart": chart,
            "now": timezone.now(),
            "resolutions": dict(Resolution.choices),
        },
    )
