"""Analytics pages: the funnel, each rep against the team, the forecast and the reverse
funnel planner. Each page shows the payload of one report in loudou.analytics.reports
(the same numbers as the CLI and the API) as cards, charts and a table, and offers that
table as CSV or Excel with the current filters (``?format=csv`` / ``?format=xlsx``).

Views are thin: a form reads the filters (the API's parameter names), build_scope turns
them into a Scope over what the user may see, a report computes, and the page renders.
Invalid filters (an owner the user may not see, a bad date) answer 422 with the form's
errors and no figures.
"""

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loudou.org.models import Team, User
from loudou.pipeline.models import Opportunity, Pipeline, ProductLine
from loudou.web.templatetags.loudou import SYMBOLS, percent

from . import exports, queries, reports
from .exports import Percent
from .periods import containing, parse_period
from .scope import ScopeError, build_scope

SHORTCUTS = {
    "week": gettext_lazy("This week"),
    "month": gettext_lazy("This month"),
    "quarter": gettext_lazy("This quarter"),
    "year": gettext_lazy("This year"),
}
FIRST_YEAR, LAST_YEAR = 1900, 2999
MONEY = {"max_digits": 16, "decimal_places": 2, "min_value": Decimal(0)}


# --- filters ---------------------------------------------------------------------------


class _Select(forms.Select):
    def __init__(self):
        super().__init__(attrs={"class": "form-select form-select-sm"})


class FilterForm(forms.Form):
    """The filters every analytics page shares, named as in the API (pipeline, from, to,
    team, owner, product_line), plus ``range``: a shortcut that fills from/to with this
    week, month, quarter or year. Teams and owners offered are those the user may see;
    anything else is refused as "not one of the available choices"."""

    pipeline = forms.ModelChoiceField(
        label=gettext_lazy("Pipeline"), queryset=Pipeline.objects.none(), empty_label=None,
        widget=_Select(),
    )  # fmt: skip
    team = forms.ModelChoiceField(
        label=gettext_lazy("Team"), queryset=Team.objects.none(), required=False,
        empty_label=gettext_lazy("All teams"), widget=_Select(),
    )  # fmt: skip
    owner = forms.ModelChoiceField(
        label=gettext_lazy("Owner"), queryset=User.objects.none(), required=False,
        empty_label=gettext_lazy("All owners"), widget=_Select(),
    )  # fmt: skip
    product_line = forms.ModelChoiceField(
        label=gettext_lazy("Product line"), queryset=ProductLine.objects.none(), required=False,
        empty_label=gettext_lazy("All product lines"), widget=_Select(),
    )  # fmt: skip

    # ``from`` is a Python keyword, so the date fields are added by name in __init__.
    date_fields = (("from", gettext_lazy("Created from")), ("to", gettext_lazy("Created to")))

    def __init__(self, data: QueryDict, *, user):
        data = data.copy()
        self.shortcut = data.pop("range", [""])[-1]
        if self.shortcut in SHORTCUTS:
            self.apply_shortcut(data, containing(self.shortcut, timezone.localdate()))
        super().__init__(data)
        self.user = user
        visible = User.objects.visible_to(user)
        pipelines = Pipeline.objects.filter(is_archived=False)
        self.fields["pipeline"].queryset = pipelines
        self.fields["team"].queryset = Team.objects.filter(
            pk__in=visible.exclude(team=None).values("team_id")
        )
        self.fields["owner"].queryset = visible
        self.fields["product_line"].queryset = ProductLine.objects.filter(is_active=True)
        for name, label in self.date_fields:
            self.fields[name] = forms.DateField(
                label=label, required=False,
                widget=forms.DateInput(
                    attrs={"type": "date", "class": "form-control form-control-sm"},
                    format="%Y-%m-%d",
                ),
            )  # fmt: skip
        order = ["pipeline", "from", "to", "team", "owner", "product_line"]
        self.order_fields(order + [f for f in self.fields if f not in order])
        if not self.data.get("pipeline"):
            first = pipelines.values_list("pk", flat=True).first()
            if first is not None:
                self.data["pipeline"] = str(first)

    def apply_shortcut(self, data, period):
        """Fill from/to with the period's first and last day."""
        data["from"] = period.start.isoformat()
        data["to"] = (period.end - timedelta(days=1)).isoformat()

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("from"), cleaned.get("to")
        if start and end and start > end:
            self.add_error("to", _("The end date is before the start date."))
        return cleaned

    def scope_params(self) -> dict:
        data = self.cleaned_data

        def pk(name):
            return data[name].pk if data.get(name) else None

        return {
            "pipeline": pk("pipeline"), "date_from": data.get("from"), "date_to": data.get("to"),
            "team": pk("team"), "owner": pk("owner"), "product_line": pk("product_line"),
        }  # fmt: skip

    def query(self) -> str:
        """The valid filters as a query string, for the export links."""
        query = QueryDict(mutable=True)
        for name, value in self.cleaned_data.items():
            if value in (None, ""):
                continue
            query[name] = value.pk if hasattr(value, "pk") else value
        return query.urlencode()

    @property
    def date_range(self):
        return [self[name] for name, _label in self.date_fields]

    @property
    def scope_fields(self):
        return [self[name] for name in ("pipeline", "team", "owner", "product_line")]

    @property
    def page_fields(self):
        """What a page adds to the shared filters (period, target…)."""
        shared = {"pipeline", "from", "to", "team", "owner", "product_line"}
        return [self[name] for name in self.fields if name not in shared]


def _period_field(**kwargs):
    return forms.CharField(
        label=gettext_lazy("Period"), max_length=10,
        widget=forms.TextInput(attrs={"class": "form-control form-control-sm",
                                      "list": "period-choices", "autocomplete": "off"}),
        help_text=gettext_lazy("2026Q4, 2026-11, 2026W47 or 2026."), **kwargs,
    )  # fmt: skip


def _money_field(label, **kwargs):
    return forms.DecimalField(
        label=label, **MONEY,
        widget=forms.NumberInput(attrs={"class": "form-control form-control-sm", "step": "any",
                                        "inputmode": "decimal"}),
        **kwargs,
    )  # fmt: skip


class PeriodMixin:
    """A period (default: this quarter), which the shortcuts set on these pages."""

    def apply_shortcut(self, data, period):
        data["period"] = period.label

    def clean_period(self):
        text = self.cleaned_data.get("period") or ""
        if not text:
            return containing("quarter", timezone.localdate())
        try:
            period = parse_period(text)
        except (ValueError, OverflowError):  # 9999W52 runs past the last date
            raise forms.ValidationError(
                _("Not a period: use 2026Q4, 2026-11, 2026W47 or 2026.")
            ) from None
        # Years at the ends of the calendar overflow once moved between time zones.
        if not FIRST_YEAR <= period.start.year <= period.end.year <= LAST_YEAR:
            raise forms.ValidationError(
                _("Choose a period between %(first)s and %(last)s.")
                % {"first": FIRST_YEAR, "last": LAST_YEAR}
            )
        return period

    def query(self) -> str:
        query = QueryDict(super().query(), mutable=True)
        query["period"] = self.cleaned_data["period"].label
        return query.urlencode()

    def period_choices(self):
        today = timezone.localdate()
        quarter = containing("quarter", today)
        current = [containing(kind, today) for kind in SHORTCUTS]
        return current + [quarter.previous(), parse_period(_next_quarter(quarter.label))]


def _next_quarter(label: str) -> str:
    year, q = int(label[:4]), int(label[-1])
    return f"{year + q // 4}Q{q % 4 + 1}"


class ForecastForm(PeriodMixin, FilterForm):
    period = _period_field(required=False)
    target = _money_field(
        gettext_lazy("Target"), required=False,
        help_text=gettext_lazy(
            "Empty: the target set in Targets for these filters (rep, team or company)."
        ),
    )  # fmt: skip
    run_rate = forms.BooleanField(
        label=gettext_lazy("Add the out-of-funnel run-rate"), required=False,
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
        help_text=gettext_lazy(
            "Out-of-funnel sales to date ÷ elapsed part of the period × remaining part."
        ),
    )  # fmt: skip

    def __init__(self, data, *, user):
        super().__init__(data, user=user)
        if not self.data.get("period"):
            self.data["period"] = containing("quarter", timezone.localdate()).label


class ReverseForm(PeriodMixin, FilterForm):
    period = _period_field(required=False)
    target = _money_field(
        gettext_lazy("Target"), required=False,
        help_text=gettext_lazy(
            "The period's sales target (first shown: the one set in Targets); what is "
            "already completed counts."
        ),
    )  # fmt: skip
    avg_deal = _money_field(
        gettext_lazy("Average deal"), required=False,
        help_text=gettext_lazy("Empty: the average won deal in these filters."),
    )  # fmt: skip

    def __init__(self, data, *, user):
        super().__init__(data, user=user)
        if not self.data.get("period"):
            self.data["period"] = containing("quarter", timezone.localdate()).label
        # The browser asks for it; the server lets the first visit (no target yet) through.
        self.fields["target"].widget.attrs["required"] = True

    def clean_target(self):
        value = self.cleaned_data.get("target")
        if value is None and "target" in self.data:  # submitted empty; absent: first visit
            raise forms.ValidationError(_("Enter the target."))
        return value

    def clean_avg_deal(self):
        value = self.cleaned_data.get("avg_deal")
        if value is not None and value <= 0:
            raise forms.ValidationError(_("The average deal must be more than 0."))
        return value


class BreakdownForm(PeriodMixin, FilterForm):
    period = _period_field(required=False)
    by = forms.ChoiceField(
        label=gettext_lazy("Break down by"), required=False,
        choices=[
            ("region", gettext_lazy("Region")), ("industry", gettext_lazy("Industry")),
            ("product_line", gettext_lazy("Product line")), ("source", gettext_lazy("Source")),
            ("team", gettext_lazy("Team")), ("rep", gettext_lazy("Rep")),
        ],
        widget=_Select(),
    )  # fmt: skip

    def __init__(self, data, *, user):
        super().__init__(data, user=user)
        if not self.data.get("period"):
            self.data["period"] = containing("quarter", timezone.localdate()).label

    def clean_by(self):
        return self.cleaned_data.get("by") or "region"

    def query(self) -> str:
        query = QueryDict(super().query(), mutable=True)
        query["by"] = self.cleaned_data["by"]
        return query.urlencode()


# --- the pages -------------------------------------------------------------------------


def _scope(form):
    """The report Scope of a valid form, or None with the errors on the form."""
    if not form.is_valid():
        return None
    try:
        return build_scope(form.user, **form.scope_params())
    except ScopeError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        return None


def _render(request, template, form, nav, context=None, *, status=200):
    base = {
        "nav": "analytics",
        "section": nav,
        "form": form,
        "query": form.query() if form.is_valid() else "",
        "shortcuts": SHORTCUTS,
        "is_rep": not (request.user.sees_everything or request.user.managed_team_path),
        "stable_at": settings.LOUDOU_STABLE_THRESHOLD,
    }
    return render(request, template, {**base, **(context or {})}, status=status)


def _export(request, name, table):
    fmt = request.GET.get("format", "")
    if fmt not in exports.FORMATS:
        return None
    headers, rows = table
    return exports.table_response(fmt, name, headers, rows)


@login_required
def funnel(request):
    """The funnel by furthest stage: entered, conversion with its interval, win rate from
    each stage, open and weighted amounts, time in stage."""
    form = FilterForm(request.GET, user=request.user)
    scope = _scope(form)
    if scope is None:
        return _render(request, "analytics/funnel.html", form, "funnel", status=422)
    report = reports.funnel_report(scope)
    table = funnel_table(report)
    return _export(request, "funnel", table) or _render(
        request, "analytics/funnel.html", form, "funnel",
        {"report": report, "empty": not (report["won"] + report["lost"] + report["open"]),
         "charts": funnel_charts(report)},
    )  # fmt: skip


@login_required
def reps(request):
    """Each rep's conversion per stage against the team's pooled rate, weak steps and the
    shape of their open funnel. A rep sees their own row and the team's average only."""
    form = FilterForm(request.GET, user=request.user)
    scope = _scope(form)
    if scope is None:
        return _render(request, "analytics/reps.html", form, "reps", status=422)
    report = reports.reps_report(scope)
    if not (request.user.sees_everything or request.user.managed_team_path):
        # Deals shared with a rep bring their owners into the rows; a rep compares
        # only themself with the team.
        report["reps"] = [r for r in report["reps"] if r["owner_id"] == request.user.pk]
    for rep in report["reps"]:
        rep["verdict"] = shape_verdict(rep, report["team"])
    table = reps_table(report)
    return _export(request, "reps", table) or _render(
        request, "analytics/reps.html", form, "reps",
        {"report": report, "charts": reps_charts(report)},
    )  # fmt: skip


@login_required
def forecast(request):
    """Forecast 销售预计 for a period against a target: completed + weighted pipeline,
    coverage, sales progress with its two terms, the Monte Carlo band, velocity."""
    form = ForecastForm(request.GET, user=request.user)
    scope = _scope(form)
    if scope is None:
        return _render(request, "analytics/forecast.html", form, "forecast", status=422)
    period = form.cleaned_data["period"]
    report = reports.forecast_report(
        scope, period, target=_given(scope, period, form.cleaned_data.get("target")),
        run_rate=form.cleaned_data.get("run_rate", False),
    )  # fmt: skip
    table = forecast_table(report)
    return _export(request, "forecast", table) or _render(
        request, "analytics/forecast.html", form, "forecast",
        {"report": report, "period": period, "whole": _whole(report),
         "as_of": datetime.fromisoformat(report["as_of"]),
         "charts": forecast_charts(report)},
    )  # fmt: skip


@login_required
def reverse(request):
    """The reverse-funnel planner: how many opportunities each stage needs to reach the
    target, and which stages hold too few (replenish them)."""
    form = ReverseForm(request.GET, user=request.user)
    scope = _scope(form)
    if scope is None:
        return _render(request, "analytics/reverse.html", form, "reverse", status=422)
    data = form.cleaned_data
    target = _given(scope, data["period"], data["target"])
    if target is None:
        target, _source = reports.scope_target(scope, data["period"])
        if target is None:  # first visit and no target set in Targets: ask for it
            return _render(request, "analytics/reverse.html", form, "reverse", {"waiting": True})
        form.data = form.data.copy()
        form.data["target"] = str(target)  # shown in the field, sent again on Apply
        target = None  # the report reads it from Targets and says so
    report = reports.reverse_report(
        scope, target, avg_deal=data.get("avg_deal"), period=data["period"]
    )
    table = reverse_table(report)
    return _export(request, "reverse", table) or _render(
        request, "analytics/reverse.html", form, "reverse",
        {"report": report, "replenish": [s for s in report["stages"] if s["replenish"]],
         "charts": reverse_charts(report)},
    )  # fmt: skip


@login_required
def leads(request):
    """Lead conversion by source: leads → opportunities and opportunities → won, each
    with its interval, as a chart and a table."""
    form = FilterForm(request.GET, user=request.user)
    scope = _scope(form)
    if scope is None:
        return _render(request, "analytics/leads.html", form, "leads", status=422)
    report = reports.leads_report(scope)
    table = leads_table(report)
    return _export(request, "lead-conversion", table) or _render(
        request, "analytics/leads.html", form, "leads",
        {"report": report, "empty": not report["sources"], "charts": leads_charts(report)},
    )  # fmt: skip


@login_required
def breakdown(request):
    """Won amount by region, industry, product line, source, team or rep in a period,
    with growth against the period before and the same period a year earlier."""
    form = BreakdownForm(request.GET, user=request.user)
    scope = _scope(form)
    if scope is None:
        return _render(request, "analytics/breakdown.html", form, "breakdown", status=422)
    data = form.cleaned_data
    report = reports.breakdown_report(scope, data["by"], data["period"])
    report["dimension_label"] = dict(form.fields["by"].choices)[data["by"]]
    table = breakdown_table(report)
    return _export(request, f"breakdown-{data['by']}", table) or _render(
        request, "analytics/breakdown.html", form, "breakdown",
        {"report": report, "empty": not report["rows"], "charts": breakdown_charts(report)},
    )  # fmt: skip


def _given(scope, period, target):
    """A typed target equal to the one set in Targets counts as that one (the pages fill
    the field with it), so the page keeps saying where it came from."""
    if target is None:
        return None
    found, _source = reports.scope_target(scope, period)
    return None if found is not None and found == target else target


def _whole(report) -> dict:
    """The report's amounts rounded to whole units for the cards: a forecast is not
    accurate to the cent (the download keeps the cents)."""
    whole = {}
    for key, value in report.items():
        if isinstance(value, str) and value.replace(".", "", 1).lstrip("-").isdigit():
            whole[key] = Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        else:
            whole[key] = value
    return whole


# --- tables (the page's table and its download) ----------------------------------------


def _pct(value):
    return None if value is None else Percent(value)


def _dec(value):
    return None if value is None else Decimal(value)


def funnel_table(report):
    headers = [
        _("Stage"), _("Entered"), _("Advanced"), _("Lost"), _("Open"), _("Resolved (n)"),
        _("Conversion"), _("Interval low (95%)"), _("Interval high (95%)"), _("Stable"),
        _("Win rate from stage"), _("Win rate used"), _("Win rate learned"),
        _("Open now"), _("Open amount"), _("Weighted amount"),
        _("Mean days in stage"), _("Median days in stage"),
    ]  # fmt: skip
    rows = [
        [
            s["name"],
            s["entered"],
            s["advanced"],
            s["lost"],
            s["open"],
            s["n"],
            _pct(s["conversion"]),
            _pct(s["ci_low"]),
            _pct(s["ci_high"]),
            s["stable"],
            _pct(s["win_rate_from"]),
            _pct(s["win_rate_used"]),
            s["win_rate_learned"],
            s["open_now"],
            _dec(s["open_amount"]),
            _dec(s["weighted_amount"]),
            s["days_mean"],
            s["days_median"],
        ]  # fmt: skip
        for s in report["stages"]
    ]
    return headers, rows


def reps_table(report):
    headers = [
        _("Rep"), _("Username"), _("Stage"), _("Resolved (n)"), _("Rep's conversion"),
        _("Interval low (95%)"), _("Interval high (95%)"), _("Team conversion"), _("Weak step"),
        _("Open now"), _("Shape"),
    ]  # fmt: skip
    rows = [
        [
            rep["name"],
            rep["username"],
            s["name"],
            s["n"],
            _pct(s["conversion"]),
            _pct(s["ci_low"]),
            _pct(s["ci_high"]),
            _pct(s["team"]),
            s["weak"],
            s["open_now"],
            rep["verdict"]["label"],
        ]  # fmt: skip
        for rep in report["reps"]
        for s in rep["stages"]
    ]
    return headers, rows


def forecast_table(report):
    """One row per figure: its name, value and a one-line explanation."""
    d = _dec
    rows = [
        [_("Target"), d(report["target"]), _("The sales target of the period.")],
        [_("Quarter target"), d(report["quarter_target"]),
         _("What sales progress is divided by.")],
        [_("Completed"), d(report["completed"]),
         _("Won in the period so far (out-of-funnel orders included).")],
        [_("Out-of-funnel sales"), d(report["out_of_funnel"]),
         _("Orders below the funnel threshold, signed in the period so far.")],
        [_("Out-of-funnel run-rate"), d(report["out_of_funnel_run_rate"]),
         _("Out-of-funnel sales to date ÷ elapsed part of the period × remaining part.")],
        [_("Weighted pipeline"), d(report["weighted_pipeline"]),
         _("Σ open amount × stage win rate.")],
        [_("Forecast"), d(report["forecast"]),
         _("Forecast = completed + Σ open amount × stage win rate.")],
        [_("Coverage"), _pct(report["coverage"]),
         _("Forecast ÷ target: are there enough opportunities?")],
        [_("Forecast a week ago"), d(report["forecast_last_week"]),
         _("The same forecast as it stood seven days ago.")],
        [_("Forecast change"), d(report["progress_forecast_delta"]),
         _("This week's forecast − last week's.")],
        [_("Sales change"), d(report["progress_sales_delta"]),
         _("This week's cumulative sales − last week's.")],
        [_("Sales progress"), _pct(report["progress"]),
         _("(Forecast change + sales change) ÷ the quarter's target; a win counts in both.")],
        [_("P10"), d(report["p10"]),
         _("Simulated revenue: 9 in 10 runs reach at least this.")],
        [_("P50"), d(report["p50"]), _("Simulated revenue: the middle run.")],
        [_("P90"), d(report["p90"]),
         _("Simulated revenue: only 1 in 10 runs reaches more.")],
        [_("Velocity per day"), d(report["velocity_per_day"]),
         _("Open deals × average won deal × win rate ÷ average cycle days.")],
    ]  # fmt: skip
    return [_("Figure"), _("Value"), _("Meaning")], rows


def reverse_table(report):
    headers = [_("Stage"), _("Conversion"), _("Needed"), _("Open now"), _("Replenish")]
    rows = [
        [s["name"], _pct(s.get("conversion")), s["needed"], s["open"], s["replenish"]]
        for s in report["stages"]
    ]
    return headers, rows


def leads_table(report):
    headers = [
        _("Source"), _("Leads"), _("Converted"), _("Disqualified"), _("Leads still open"),
        _("Lead conversion"), _("Interval low (95%)"), _("Interval high (95%)"), _("Stable"),
        _("Leads won in this pipeline"), _("Opportunities"), _("Won"), _("Lost"), _("Open"),
        _("Win rate"), _("Interval low (95%)"), _("Interval high (95%)"), _("Stable"),
        _("Won amount"),
    ]  # fmt: skip
    rows = [
        [
            r["name"],
            r["leads"],
            r["converted"],
            r["disqualified"],
            r["open_leads"],
            _pct(r["lead_conversion"]),
            _pct(r["lead_conversion_ci_low"]),
            _pct(r["lead_conversion_ci_high"]),
            r["lead_conversion_stable"],
            r["leads_won"],
            r["opportunities"],
            r["won"],
            r["lost"],
            r["open"],
            _pct(r["win_rate"]),
            _pct(r["win_rate_ci_low"]),
            _pct(r["win_rate_ci_high"]),
            r["win_rate_stable"],
            _dec(r["won_amount"]),
        ]  # fmt: skip
        for r in [*report["sources"], report["total"]]
    ]
    return headers, rows


def breakdown_table(report):
    headers = [
        report["dimension_label"], _("Won deals"), _("Won amount"),
        _("Previous period (%(period)s)") % {"period": report["previous"]},
        _("Growth on previous period"),
        _("A year earlier (%(period)s)") % {"period": report["year_ago"]},
        _("Growth year on year"),
    ]  # fmt: skip
    rows = [
        [
            r["key"] or _("(none)"),
            r["won"],
            _dec(r["amount"]),
            _dec(r["previous_amount"]),
            _pct(r["growth_previous"]),
            _dec(r["year_ago_amount"]),
            _pct(r["growth_year"]),
        ]  # fmt: skip
        for r in report["rows"]
    ]
    return headers, rows


# --- reading the shape -----------------------------------------------------------------


def shape_verdict(rep, team) -> dict:
    """The shape flags of funnel.shape as translated text: a label and one reason per
    flag, with the numbers the flag was decided on."""
    counts = [s["open_now"] for s in rep["stages"]]
    reasons = []
    shape = rep["shape"]
    if shape.get("inverted"):
        reasons.append(
            _(
                "A later stage holds more open opportunities (%(later)s) than the first "
                "stage (%(first)s): too little prospecting."
            )
            % {"later": max(counts[1:], default=0), "first": counts[0] if counts else 0}
        )
    if shape.get("weak_follow_up"):
        half = len(counts) // 2
        first = rep["stages"][0]["conversion"] if rep["stages"] else None
        team_first = team[0]["conversion"] if team else None
        reasons.append(
            _(
                "%(early)s open opportunities in the first half of the stages against "
                "%(late)s in the second half, and a first-stage conversion of %(rate)s "
                "(team: %(team)s): weak follow-up."
            )
            % {
                "early": sum(counts[:half]),
                "late": sum(counts[len(counts) - half :]),
                "rate": percent(first),
                "team": percent(team_first),
            }  # fmt: skip
        )
    if shape.get("inverted") and shape.get("weak_follow_up"):
        label = _("Inverted, weak follow-up")
    elif shape.get("inverted"):
        label = _("Inverted")
    elif shape.get("weak_follow_up"):
        label = _("Weak follow-up")
    else:
        label = _("Healthy")
    return {"label": label, "reasons": reasons, "ok": not reasons}


# --- chart data (rendered by static/analytics/charts.js) -------------------------------


def _symbol():
    return SYMBOLS.get(settings.LOUDOU_CURRENCY, "")


def funnel_charts(report):
    names = [s["name"] for s in report["stages"]]
    return [
        {
            "id": "chart-funnel", "type": "funnel", "title": _("Entered per stage"),
            "series": _("Entered"), "names": names,
            "values": [s["entered"] for s in report["stages"]],
        },
        {
            "id": "chart-conversion", "type": "conversion", "names": names,
            "series": _("Conversion"), "interval": _("Interval (95%)"),
            "rates": [s["conversion"] for s in report["stages"]],
            "low": [s["ci_low"] for s in report["stages"]],
            "high": [s["ci_high"] for s in report["stages"]],
            "n": [s["n"] for s in report["stages"]],
            "stable": [s["stable"] for s in report["stages"]],
            "unstable": _("not yet stable"),
        },
    ]  # fmt: skip


def reps_charts(report):
    return [
        {
            "id": "chart-reps", "type": "reps", "names": [t["name"] for t in report["team"]],
            "team": {"name": _("Team"), "rates": [t["conversion"] for t in report["team"]]},
            "reps": [
                {"name": r["name"], "rates": [s["conversion"] for s in r["stages"]],
                 "weak": [s["weak"] for s in r["stages"]]}
                for r in report["reps"]
            ],
            "weak": _("weak step"),
        }
    ]  # fmt: skip


def forecast_charts(report):
    def number(key):
        return None if report.get(key) is None else float(report[key])

    return [
        {
            "id": "chart-coverage", "type": "gauge", "name": _("Coverage"),
            "value": report["coverage"],
        },
        {
            "id": "chart-band", "type": "band", "symbol": _symbol(),
            "p10": number("p10"), "p50": number("p50"), "p90": number("p90"),
            "forecast": number("forecast"), "target": number("target"),
            "completed": number("completed"),
            "labels": {"band": _("P10–P90"), "p50": _("P50"), "forecast": _("Forecast"),
                       "target": _("Target"), "completed": _("Completed")},
        },
    ]  # fmt: skip


def reverse_charts(report):
    return [
        {
            "id": "chart-reverse", "type": "reverse",
            "names": [s["name"] for s in report["stages"]],
            "needed": [s["needed"] for s in report["stages"]],
            "open": [s["open"] for s in report["stages"]],
            "labels": {"needed": _("Needed"), "open": _("Open now")},
        }
    ]  # fmt: skip


def leads_charts(report):
    rows = report["sources"]
    return [
        {
            "id": "chart-sources", "type": "sources", "names": [r["name"] for r in rows],
            "series": [
                {"name": _("Lead → opportunity"), "rates": [r["lead_conversion"] for r in rows],
                 "n": [r["lead_conversion_n"] for r in rows],
                 "stable": [r["lead_conversion_stable"] for r in rows]},
                {"name": _("Opportunity → won"), "rates": [r["win_rate"] for r in rows],
                 "n": [r["win_rate_n"] for r in rows],
                 "stable": [r["win_rate_stable"] for r in rows]},
            ],
            "counts": {"name": _("Leads"), "values": [r["leads"] for r in rows]},
            "unstable": _("not yet stable"),
        }
    ]  # fmt: skip


def breakdown_charts(report):
    rows = report["rows"]
    return [
        {
            "id": "chart-breakdown", "type": "breakdown", "symbol": _symbol(),
            "names": [r["key"] or _("(none)") for r in rows],
            "series": [
                {"name": report["period"], "values": [float(r["amount"]) for r in rows]},
                {"name": report["previous"],
                 "values": [float(r["previous_amount"]) for r in rows]},
                {"name": report["year_ago"],
                 "values": [float(r["year_ago_amount"]) for r in rows]},
            ],
            "growth": {"previous": [r["growth_previous"] for r in rows],
                       "year": [r["growth_year"] for r in rows],
                       "labels": {"previous": _("Growth on previous period"),
                                  "year": _("Growth year on year")}},
        }
    ]  # fmt: skip


# --- the dashboard's pipeline headline -------------------------------------------------


def dashboard_target(user, period) -> Decimal | None:
    """The sales target of ``user``'s scope (a rep's own, a manager's team, an admin's
    company) for ``period``, from Targets; None when none is set."""
    try:
        scope = build_scope(user)
    except ScopeError:
        return None
    return reports.scope_target(scope, period)[0]


def _f_ratio(value: Decimal, target: Decimal) -> float | None:
    return float(value / target) if target else None


def dashboard_summary(user) -> dict | None:
    """Headline numbers of the default pipeline in the user's scope, and the alerts that
    link to the analytics pages: stages to replenish and low coverage (forecast ÷ the
    quarter's target below 100%, when a target is set in Targets), weak steps (a rep's
    own, or how many reps have one), stale deals. None without a pipeline.

    A fixed number of queries whatever the data: the funnel report, the per-rep weak
    steps, the completed revenue of the quarter, the target, the reverse plan and the
    stale count."""
    try:
        scope = build_scope(user)
    except ScopeError:
        return None
    funnel_data = reports.funnel_report(scope, stays=False)  # no time in stage shown
    quarter = containing("quarter", timezone.localdate())
    start, end = quarter.bounds()
    now = timezone.now()
    done = reports.completed_revenue(scope, scope.opportunities(), start, min(end, now))
    won = queries.won_between(scope.opportunities(), start, end)
    weak_by_rep = reports.rep_weak_steps(scope)  # the per-rep report's weak steps only
    sees_team = bool(user.sees_everything or user.managed_team_path)
    weak_steps = weak_by_rep.get(user.pk, [])
    weak_reps = sum(1 for steps in weak_by_rep.values() if steps)
    target, target_source = reports.scope_target(scope, quarter)
    replenish = None
    stages = funnel_data["stages"]
    weighted = sum((Decimal(s["weighted_amount"]) for s in stages), Decimal(0))
    coverage = None
    if target is not None:
        read = done["completed"] if start < now else None  # the plan's completed revenue
        plan = reports.reverse_report(scope, target, period=quarter, completed=read)
        replenish = [s["name"] for s in plan["stages"] if s["replenish"]]
        coverage = _f_ratio(done["completed"] + weighted, target)
    return {
        "pipeline": scope.pipeline,
        "quarter": quarter.label,
        "open_count": sum(s["open_now"] for s in stages),
        "weighted": weighted.quantize(Decimal(1), rounding=ROUND_HALF_UP),
        "won_amount": won["amount"],
        "won_count": won["count"],
        "completed": done["completed"],
        "out_of_funnel": done["out_of_funnel"],
        "replenish": replenish,
        "has_target": target is not None,
        "target": target,
        "target_source": target_source,
        "coverage": coverage,
        "low_coverage": coverage is not None and coverage < 1,
        "sees_team": sees_team,
        "weak_steps": weak_steps,
        "weak_reps": weak_reps,
        "stale": _stale_count(user),
    }


def _stale_count(user) -> int:
    """Opportunity.objects.visible_to(user).stale().count(), with the viewer's scope
    written as "owned by these people, or one of these few shared deals" (ids first):
    the stale ranges of opp_stale_idx then carry the owner, and no deal is joined to its
    owner's team."""
    qs = Opportunity.objects.all()
    if user is None or not user.is_authenticated or not user.is_active:
        return 0
    if not user.sees_everything:
        owners, shared = queries.viewer_ids(user)
        qs = qs.filter(Q(owner_id__in=sorted(owners)) | Q(pk__in=shared))
    return qs.stale().count()
