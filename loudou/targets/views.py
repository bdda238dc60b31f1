"""Pages of targets and performance: the year grid (months × measures, quarters and the
year with both the set and the rolled-up figure, edited in place with htmx), the
performance list (table, chart, standards, downloads), the standards admin, and the
dashboard's progress panel (loaded lazily).

Views are thin: parse the query string, call services / performance / progress, render.
"""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from loudou.analytics import exports
from loudou.analytics.exports import Percent
from loudou.analytics.periods import Period, containing, parse_period
from loudou.core.exceptions import ServiceError
from loudou.org.models import Level, Team, User
from loudou.pipeline.models import ProductLine
from loudou.web.templatetags.loudou import SYMBOLS

from . import performance, progress, services
from .models import (
    MONEY_MEASURES,
    Measure,
    PeriodKind,
    Standard,
    StandardPeriod,
    TargetLevel,
    period_end,
    period_start_is_valid,
)
from .progress import Owner

SHORTCUTS = {
    "month": gettext_lazy("This month"),
    "quarter": gettext_lazy("This quarter"),
    "year": gettext_lazy("This year"),
}
FIRST_YEAR, LAST_YEAR = 1900, 2999


def _is_rep(user) -> bool:
    return not (user.sees_everything or user.managed_team_path)


# --- owners ----------------------------------------------------------------------------


def owner_choices(user) -> list[Owner]:
    """Whose targets the user may look at: admin everything, a manager the company, the
    teams and people of their subtree, a rep themself and their team."""
    owners = []
    if user.sees_everything or user.managed_team_path:
        owners.append(Owner(TargetLevel.COMPANY))
    teams = Team.objects.order_by("path")
    people = User.objects.filter(is_active=True, team__isnull=False).select_related("team")
    if user.sees_everything:
        pass
    elif user.managed_team_path:
        teams = teams.filter(path__startswith=user.managed_team_path)
        people = people.filter(team__path__startswith=user.managed_team_path)
    else:
        teams = teams.filter(pk=user.team_id) if user.team_id else teams.none()
        people = people.filter(pk=user.pk)
    owners += [Owner(TargetLevel.TEAM, team=t) for t in teams]
    owners += [Owner(TargetLevel.REP, user=p) for p in people.order_by("team__path", "username")]
    if _is_rep(user) and not user.team_id:
        owners.append(Owner(TargetLevel.REP, user=user))
    return owners


def find_owner(user, key: str) -> Owner:
    """The owner named ``company`` / ``team-<id>`` / ``rep-<id>``, if the user may see it;
    404 otherwise (existence is not leaked)."""
    if key == "company":
        owner = Owner(TargetLevel.COMPANY)
    elif key.startswith("team-") and key[5:].isdigit():
        owner = Owner(TargetLevel.TEAM, team=Team.objects.filter(pk=int(key[5:])).first())
        if owner.team is None:
            raise Http404
    elif key.startswith("rep-") and key[4:].isdigit():
        found = User.objects.filter(pk=int(key[4:])).select_related("team").first()
        if found is None:
            raise Http404
        owner = Owner(TargetLevel.REP, user=found)
    else:
        raise Http404
    if not services.visible_owner(user, user=owner.user, team=owner.team):
        raise Http404
    return owner


def default_owner(user) -> Owner:
    if user.sees_everything:
        return Owner(TargetLevel.COMPANY)
    if user.managed_team_path:
        return Owner(TargetLevel.TEAM, team=user.team)
    return Owner(TargetLevel.REP, user=user)


def _year(request) -> int:
    text = request.GET.get("year", "")
    if text.isdigit() and FIRST_YEAR <= int(text) <= LAST_YEAR:
        return int(text)
    return timezone.localdate().year


def _can_edit(user, owner: Owner) -> bool:
    return services.can_set(user, level=owner.level, team=owner.team, user=owner.user)


# --- the year grid ---------------------------------------------------------------------


def measure_labels() -> dict:
    return dict(Measure.choices)


def _cell(owner, measure, kind, start, rows, actual, *, editable):
    direct, rolled = progress.resolve_from(rows, measure, kind, start)
    tiers = direct or rolled
    row = next(
        (r for r in rows if r.measure == measure and r.period == kind and r.start == start), None
    )
    return {
        "owner": owner,
        "measure": measure,
        "money": measure in MONEY_MEASURES,
        "kind": kind,
        "start": start,
        "label": _period_label(kind, start),
        "direct": direct,
        "rolled": rolled,
        "differ": bool(direct and rolled and direct.target != rolled.target),
        "tiers": tiers,
        "row": row,
        "actual": actual,
        "percent": tiers.percent(actual) if tiers else None,
        "tier": tiers.tier_reached(actual) if tiers else None,
        "editable": editable,
    }


def _period_label(kind, start) -> str:
    """2026-03, 2026Q1 or 2026: the label of ``loudou.analytics.periods``."""
    return containing(kind, start).label


def grid_rows(owner: Owner, year: int, *, editable: bool) -> list[dict]:
    """The grid: twelve months, each quarter after its third month, and the year."""
    rows = progress.year_targets(owner, year)
    monthly = progress.monthly_actuals(year, owners=owner.members())
    measures = Measure.values
    lines = []

    def line(kind, start, actuals, css=""):
        return {
            "kind": kind, "label": _period_label(kind, start), "css": css,
            "cells": [_cell(owner, m, kind, start, rows, actuals.get(m, 0), editable=editable)
                      for m in measures],
        }  # fmt: skip

    for m in range(1, 13):
        lines.append(line(PeriodKind.MONTH, date(year, m, 1), monthly[m]))
        if m % 3 == 0:
            q_actual = progress.sum_months(monthly, range(m - 2, m + 1))
            lines.append(line(PeriodKind.QUARTER, date(year, m - 2, 1), q_actual, "table-light"))
    lines.append(
        line(
            PeriodKind.YEAR,
            date(year, 1, 1),
            progress.sum_months(monthly, range(1, 13)),
            "table-secondary",
        )  # fmt: skip
    )
    return lines


@login_required
def targets(request):
    """The year grid of one owner's targets with progress; editable in place by those
    who may set them."""
    owners = owner_choices(request.user)
    key = request.GET.get("owner", "")
    owner = find_owner(request.user, key) if key else default_owner(request.user)
    if owner.level == TargetLevel.TEAM and owner.team is None:
        owner = Owner(TargetLevel.REP, user=request.user)
    year = _year(request)
    editable = _can_edit(request.user, owner)
    lines = grid_rows(owner, year, editable=editable)
    has_any = any(c["tiers"] for line in lines for c in line["cells"])
    return render(request, "targets/targets.html", {
        "nav": "targets", "owner": owner, "owners": owners, "year": year,
        "years": [year - 1, year, year + 1], "lines": lines, "measures": measure_labels(),
        "editable": editable, "has_any": has_any, "symbol": _symbol(),
        "today": timezone.localdate(),
    })  # fmt: skip


def _symbol():
    return SYMBOLS.get(settings.LOUDOU_CURRENCY, "")


class CellForm(forms.Form):
    target = forms.CharField(label=gettext_lazy("Target"), required=False, max_length=30)
    stretch = forms.CharField(label=gettext_lazy("Stretch"), required=False, max_length=30)
    challenge = forms.CharField(label=gettext_lazy("Challenge"), required=False, max_length=30)
    version = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)


def _cell_args(request, data):
    """owner, measure, period kind and start from the request; 404 when invalid."""
    owner = find_owner(request.user, data.get("owner", ""))
    measure, kind = data.get("measure", ""), data.get("period", "")
    if measure not in Measure.values or kind not in PeriodKind.values:
        raise Http404
    try:
        start = date.fromisoformat(data.get("start", ""))
    except ValueError:
        raise Http404 from None
    if not period_start_is_valid(kind, start) or not FIRST_YEAR <= start.year <= LAST_YEAR:
        raise Http404
    return owner, measure, kind, start


def _render_cell(request, owner, measure, kind, start, *, status=200):
    rows = progress.year_targets(owner, start.year)
    end = period_end(kind, start)
    actual = progress.period_actuals(start, end, owners=owner.members()).get(measure, 0)
    cell = _cell(owner, measure, kind, start, rows, actual, editable=_can_edit(request.user, owner))
    return render(request, "targets/_cell.html", {"cell": cell, "symbol": _symbol()},
                  status=status)  # fmt: skip


@login_required
@require_http_methods(["GET", "POST"])
def cell(request):
    """One cell of the grid: GET shows it (or, with ``edit=1``, its form); POST saves the
    tiers through the service (a blank target deletes) and answers the cell, or the form
    with its errors (422) or a conflict (409)."""
    data = request.POST if request.method == "POST" else request.GET
    owner, measure, kind, start = _cell_args(request, data)
    if request.method == "GET" and not request.GET.get("edit"):
        return _render_cell(request, owner, measure, kind, start)
    if not _can_edit(request.user, owner):
        raise Http404
    rows = progress.year_targets(owner, start.year)
    row = next((r for r in rows if r.measure == measure and r.period == kind
                and r.start == start), None)  # fmt: skip
    if request.method == "GET":
        initial = {"version": row.version if row else None}
        if row:
            initial.update(target=row.target, stretch=row.stretch or "",
                           challenge=row.challenge or "")  # fmt: skip
        form = CellForm(initial=initial)
        return _render_form(request, form, owner, measure, kind, start)
    form = CellForm(request.POST)
    status = 422
    if form.is_valid():
        values = form.cleaned_data
        try:
            if not (values["target"] or "").strip():
                if row is not None:
                    services.delete_target(row, actor=request.user, version=values["version"])
            else:
                services.set_target(
                    request.user, level=owner.level, team=owner.team, user=owner.user,
                    measure=measure, period=kind, start=start, target=values["target"],
                    stretch=values["stretch"], challenge=values["challenge"],
                    version=values["version"],
                )  # fmt: skip
            return _render_cell(request, owner, measure, kind, start)
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            status = exc.status
    return _render_form(request, form, owner, measure, kind, start, status=status)


def _render_form(request, form, owner, measure, kind, start, *, status=200):
    return render(request, "targets/_cell_form.html", {
        "form": form, "owner": owner, "measure": measure, "kind": kind, "start": start,
        "label": _period_label(kind, start), "measure_label": measure_labels()[measure],
    }, status=status)  # fmt: skip


class YearForm(forms.Form):
    """Bulk entry of a year's twelve months for one owner and measure."""

    def __init__(self, *args, rows=(), **kwargs):
        super().__init__(*args, **kwargs)
        existing = {r.start.month: r for r in rows}
        for m in range(1, 13):
            row = existing.get(m)
            for tier in ("target", "stretch", "challenge"):
                value = getattr(row, tier) if row else None
                self.fields[f"month_{m}.{tier}"] = forms.CharField(
                    required=False, max_length=30, initial=value if value is not None else "",
                    widget=forms.TextInput(attrs={"class": "form-control form-control-sm",
                                                  "inputmode": "decimal"}),
                )  # fmt: skip
            self.fields[f"month_{m}.version"] = forms.IntegerField(
                required=False, widget=forms.HiddenInput, initial=row.version if row else None
            )

    def months(self):
        return [
            {"month": m, "fields": [self[f"month_{m}.{t}"] for t in ("target", "stretch",
                                                                      "challenge")],
             "version": self[f"month_{m}.version"]}
            for m in range(1, 13)
        ]  # fmt: skip


@login_required
@require_http_methods(["GET", "POST"])
def year_entry(request):
    """Enter the twelve months of one measure at once (one transaction)."""
    data = request.POST if request.method == "POST" else request.GET
    owner = find_owner(request.user, data.get("owner", ""))
    measure = data.get("measure", "")
    if measure not in Measure.values:
        raise Http404
    year = int(data["year"]) if str(data.get("year", "")).isdigit() else timezone.localdate().year
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise Http404
    if not _can_edit(request.user, owner):
        raise Http404
    rows = [r for r in progress.year_targets(owner, year)
            if r.measure == measure and r.period == PeriodKind.MONTH]  # fmt: skip
    status = 200
    if request.method == "POST":
        form = YearForm(request.POST, rows=rows)
        if form.is_valid():
            values = form.cleaned_data
            months = {m: {t: values[f"month_{m}.{t}"] for t in ("target", "stretch", "challenge")}
                      for m in range(1, 13)}  # fmt: skip
            versions = {m: values[f"month_{m}.version"] for m in range(1, 13)}
            try:
                services.set_months(
                    request.user, level=owner.level, team=owner.team, user=owner.user,
                    measure=measure, year=year, months=months, versions=versions,
                )  # fmt: skip
                query = QueryDict(mutable=True)
                query.update({"owner": owner.key, "year": year})
                return redirect(f"{_targets_url()}?{query.urlencode()}")
            except ServiceError as exc:
                if exc.field in form.fields:
                    form.add_error(exc.field, exc.message)
                else:
                    form.add_error(None, exc.message)
                status = exc.status
        else:
            status = 422
    else:
        form = YearForm(rows=rows)
    return render(request, "targets/year_entry.html", {
        "nav": "targets", "form": form, "owner": owner, "measure": measure,
        "measure_label": measure_labels()[measure], "year": year,
    }, status=status)  # fmt: skip


def _targets_url():
    from django.urls import reverse

    return reverse("targets:targets")


# --- performance -----------------------------------------------------------------------


class PerformanceForm(forms.Form):
    """Filters of the performance list, named as in the API."""

    period = forms.CharField(
        label=gettext_lazy("Period"), required=False, max_length=10,
        widget=forms.TextInput(attrs={"class": "form-control form-control-sm",
                                      "list": "period-choices", "autocomplete": "off"}),
        help_text=gettext_lazy("2026Q4, 2026-11 or 2026; or a date range."),
    )  # fmt: skip
    date_from = forms.DateField(
        label=gettext_lazy("From"), required=False,
        widget=forms.DateInput(attrs={"type": "date", "class": "form-control form-control-sm"}),
    )  # fmt: skip
    date_to = forms.DateField(
        label=gettext_lazy("To"), required=False,
        widget=forms.DateInput(attrs={"type": "date", "class": "form-control form-control-sm"}),
    )  # fmt: skip
    team = forms.ModelChoiceField(
        label=gettext_lazy("Team"), queryset=Team.objects.none(), required=False,
        empty_label=gettext_lazy("All teams"),
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )  # fmt: skip
    group = forms.ChoiceField(
        label=gettext_lazy("One row per"), required=False,
        choices=[("rep", gettext_lazy("Rep")), ("team", gettext_lazy("Team"))],
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )  # fmt: skip
    sort = forms.ChoiceField(
        label=gettext_lazy("Rank by"), required=False, choices=[],
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )  # fmt: skip
    order = forms.ChoiceField(
        label=gettext_lazy("Show"), required=False,
        choices=[("top", gettext_lazy("Top first")), ("bottom", gettext_lazy("Bottom first"))],
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )  # fmt: skip
    limit = forms.IntegerField(
        label=gettext_lazy("How many"), required=False, min_value=1, max_value=1000,
        widget=forms.NumberInput(attrs={"class": "form-control form-control-sm"}),
    )  # fmt: skip

    def __init__(self, data, *, user):
        data = data.copy()
        self.shortcut = data.pop("range", [""])[-1]
        if self.shortcut in SHORTCUTS:
            data["period"] = containing(self.shortcut, timezone.localdate()).label
            data.pop("date_from", None)
            data.pop("date_to", None)
        super().__init__(data)
        self.user = user
        teams = Team.objects.order_by("path")
        if not user.sees_everything:
            path = user.managed_team_path
            teams = teams.filter(path__startswith=path) if path else teams.none()
        self.fields["team"].queryset = teams
        labels = performance.column_labels()
        self.fields["sort"].choices = [("", "—")] + list(labels.items()) + [
            (f"pct_{m}", _("%(measure)s: %% of target") % {"measure": labels[m]})
            for m in ("signed", "collected", "won_count", "visits")
        ]  # fmt: skip

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start or end:
            if not (start and end):
                self.add_error("date_to", _("Give both dates of a range."))
            elif start > end:
                self.add_error("date_to", _("The end date is before the start date."))
            elif not FIRST_YEAR <= start.year <= end.year <= LAST_YEAR:
                self.add_error("date_to", _("Choose dates between 1900 and 2999."))
            else:
                cleaned["period_obj"] = Period(
                    start, end + timedelta(days=1), f"{start.isoformat()}–{end.isoformat()}"
                )
                return cleaned
        text = (cleaned.get("period") or "").strip()
        if not text:
            cleaned["period_obj"] = containing("month", timezone.localdate())
            return cleaned
        try:
            period = parse_period(text)
        except (ValueError, OverflowError):
            self.add_error("period", _("Not a period: use 2026Q4, 2026-11 or 2026."))
            return cleaned
        if not FIRST_YEAR <= period.start.year <= period.end.year <= LAST_YEAR:
            self.add_error("period", _("Choose a period between 1900 and 2999."))
            return cleaned
        cleaned["period_obj"] = period
        return cleaned

    def query(self) -> str:
        query = QueryDict(mutable=True)
        for name, value in self.cleaned_data.items():
            if name == "period_obj" or value in (None, ""):
                continue
            query[name] = value.pk if hasattr(value, "pk") else value
        if "period" not in query and "date_from" not in query:
            query["period"] = self.cleaned_data["period_obj"].label
        return query.urlencode()

    def period_choices(self):
        today = timezone.localdate()
        return [containing(kind, today) for kind in ("month", "quarter", "year")] + [
            containing("quarter", today).previous(),
            containing("month", today).previous(),
        ]


def run_report(user, form) -> performance.Report:
    data = form.cleaned_data
    report = performance.build_report(
        user, data["period_obj"], group=data.get("group") or "rep", team=data.get("team")
    )
    if data.get("sort"):
        report.rows = performance.sort_rows(
            report.rows, data["sort"], descending=(data.get("order") or "top") == "top",
            limit=data.get("limit"),
        )  # fmt: skip
    elif data.get("limit"):
        report.rows = report.rows[: data["limit"]]
    return report


def performance_table(report: performance.Report):
    """Headers and rows of the download: the same columns as the page."""
    labels = performance.column_labels()
    headers = [_("Name"), _("Team"), _("Level")]
    for column in performance.COLUMNS:
        headers.append(labels[column])
    if report.has_breaches:
        headers.append(_("Breaches"))
    for m in performance.TARGET_MEASURES:
        headers += [f"{labels[m]}: {_('target')}", f"{labels[m]}: {_('% of target')}",
                    f"{labels[m]}: {_('tier')}"]  # fmt: skip
    headers += [_("Standards met"), _("Standards below")]
    rows = []
    for row in [*report.rows, *([report.average] if report.average else [])]:
        line = [row.name, row.team_name, _level_label(row.level)]
        for column in performance.COLUMNS:
            value = row.values.get(column)
            line.append(Percent(value) if column == "win_rate" and value is not None else value)
        if report.has_breaches:
            line.append(row.values.get("breaches"))
        for m in performance.TARGET_MEASURES:
            tiers = row.targets.get(m)
            pct = row.percent(m)
            line += [tiers.target if tiers else None, Percent(pct) if pct is not None else None,
                     _tier_label(row.tier(m))]  # fmt: skip
        line += [len(row.ratings) - row.below, row.below]
        rows.append(line)
    return headers, rows


def _level_label(level):
    return dict(Level.choices).get(level, "")


def _tier_label(tier):
    return {"target": _("Target"), "stretch": _("Stretch"), "challenge": _("Challenge")}.get(
        tier, ""
    )


def performance_chart(report, column: str):
    labels = performance.column_labels()
    rows = [r for r in report.rows if r.values.get(column) is not None][:40]
    return {
        "type": "bar", "id": "chart-performance", "title": labels[column],
        "names": [r.name for r in rows],
        "values": [float(r.values[column]) for r in rows],
        "targets": [float(r.targets[column].target) if column in r.targets else None
                    for r in rows],
        "target_label": _("Target"), "money": column in ("signed", "collected", "avg_deal"),
        "percent": column == "win_rate", "symbol": _symbol(),
    }  # fmt: skip


@login_required
def performance_page(request):
    """The performance list with ranking, chart, standards and downloads."""
    form = PerformanceForm(request.GET, user=request.user)
    context = {"nav": "targets", "form": form, "shortcuts": SHORTCUTS,
               "is_rep": _is_rep(request.user), "labels": performance.column_labels()}  # fmt: skip
    if not form.is_valid():
        return render(request, "targets/performance.html", context, status=422)
    report = run_report(request.user, form)
    fmt = request.GET.get("format", "")
    if fmt in exports.FORMATS:
        headers, rows = performance_table(report)
        return exports.table_response(fmt, "performance", headers, rows)
    column = form.cleaned_data.get("sort") or "signed"
    column = column[4:] if column.startswith("pct_") else column
    context.update(
        report=report, query=form.query(), columns=performance.COLUMNS,
        target_measures=performance.TARGET_MEASURES,
        chart=performance_chart(report, column) if report.rows else None,
        standards=report.standards, is_admin=request.user.sees_everything,
    )  # fmt: skip
    return render(request, "targets/performance.html", context)


# --- standards -------------------------------------------------------------------------


class StandardForm(forms.ModelForm):
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Standard
        fields = ["measure", "period", "level", "product_line", "minimum", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product_line"].queryset = ProductLine.objects.filter(is_active=True)
        for name, field in self.fields.items():
            if name == "version":
                continue
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs["class"] = css
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version


def _admin_only(user):
    if not user.sees_everything:
        raise Http404


@login_required
@require_http_methods(["GET", "POST"])
def standards(request, pk=None):
    """List the standards; an admin adds and edits them here."""
    row = get_object_or_404(Standard, pk=pk) if pk else None
    form = None
    status = 200
    if request.user.sees_everything:
        if request.method == "POST":
            form = StandardForm(request.POST, instance=Standard() if row is None else None)
            if form.is_valid():
                values = {k: v for k, v in form.cleaned_data.items() if k != "version"}
                try:
                    if row is None:
                        services.create_standard(request.user, **values)
                    else:
                        version = form.cleaned_data["version"]
                        services.update_standard(row, actor=request.user, version=version, **values)
                    return redirect("targets:standards")
                except ServiceError as exc:
                    form.add_error(exc.field if exc.field in form.fields else None, exc.message)
                    status = exc.status
            else:
                status = 422
        else:
            form = StandardForm(instance=row) if row else StandardForm()
    elif request.method == "POST":
        raise Http404
    items = Standard.objects.select_related("product_line")
    return render(request, "targets/standards.html", {
        "nav": "targets", "standards": items, "form": form, "editing": row,
        "is_admin": request.user.sees_everything,
        "periods": dict(StandardPeriod.choices),
    }, status=status)  # fmt: skip


@login_required
@require_POST
def standard_delete(request, pk):
    _admin_only(request.user)
    row = get_object_or_404(Standard, pk=pk)
    version = request.POST.get("version")
    try:
        version = int(version) if str(version).isdigit() else None
        services.delete_standard(row, actor=request.user, version=version)
    except ServiceError as exc:
        return HttpResponse(exc.message, status=exc.status)
    return redirect("targets:standards")


# --- the dashboard ---------------------------------------------------------------------


@login_required
def dashboard(request):
    """The dashboard's progress panel (loaded by hx-get from the dashboard): for each
    level the user may see, this month's, quarter's and year's target against the
    completed revenue (signed or collected, the LOUDOU_COMPLETED_BASIS setting)."""
    measure = settings.LOUDOU_COMPLETED_BASIS
    data = progress.dashboard_data(request.user, measure)
    gauge = None
    if data["cards"]:
        first = data["cards"][0]["items"][1]  # this quarter of the top level
        if first["tiers"] and first["tiers"].target:
            gauge = {
                "type": "gauge", "id": "chart-target-gauge",
                "value": float(first["actual"]), "target": float(first["tiers"].target),
                "stretch": float(first["tiers"].stretch) if first["tiers"].stretch else None,
                "challenge": (float(first["tiers"].challenge)
                              if first["tiers"].challenge else None),
                "name": f'{data["cards"][0]["owner"].name} · {first["period"].label}',
                "symbol": _symbol(),
            }  # fmt: skip
    return render(request, "targets/_dashboard_body.html", {
        **data, "measure_label": measure_labels()[measure], "gauge": gauge,
        "symbol": _symbol(), "more": len(data["cards"]) > 8,
        "cards": data["cards"][:8],
    })  # fmt: skip
