"""Forms of the rules pages; they validate input and hand it to the services."""

import re
from datetime import time

from django import forms
from django.utils.translation import gettext_lazy as _

from loudou.activities.choices import Kind, Outcome
from loudou.customers.choices import Grade, Source
from loudou.leads.choices import OPEN_STATUSES, LeadStatus
from loudou.pipeline.models import Pipeline, Stage

from .models import AppliesTo, FollowUpRule, Requirement, Weekday

# Which condition fields show for which kind of record / requirement (rule_form.js hides
# the others; the view keeps only these when saving).
FOR_APPLIES = {
    "lead_statuses": {AppliesTo.LEAD}, "sources": {AppliesTo.LEAD},
    "grades": {AppliesTo.ACCOUNT},
    "pipelines": {AppliesTo.OPPORTUNITY}, "stages": {AppliesTo.OPPORTUNITY},
}  # fmt: skip
FOR_REQUIREMENT = {
    "activity_kinds": {Requirement.TASK_ON_OUTCOME},
    "outcomes": {Requirement.TASK_ON_OUTCOME},
    "task_kinds": {Requirement.TASK_ON_OUTCOME},
    "occasions": {Requirement.GREETING},
    "task_kind": {
        Requirement.FIRST_CONTACT_WITHIN, Requirement.CONTACT_EVERY, Requirement.REVISIT,
        Requirement.STALE_IN_STAGE, Requirement.GREETING, Requirement.PAYMENT_OVERDUE,
    },
}  # fmt: skip
CONDITION_FIELDS = [*FOR_APPLIES, *FOR_REQUIREMENT]


def CHECKS():  # noqa: N802 - a widget factory
    return forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"})


def _checks(choices, label):
    return forms.MultipleChoiceField(label=label, choices=choices, required=False, widget=CHECKS())


class RuleForm(forms.ModelForm):
    """A rule with its conditions as separate fields."""

    lead_statuses = _checks(
        [(s, LeadStatus(s).label) for s in OPEN_STATUSES], _("Lead statuses (none: all open)")
    )
    sources = _checks(Source.choices, _("Sources (none: all)"))
    grades = _checks(
        [(v, label if v else _("No grade")) for v, label in Grade.choices],
        _("Account grades (none: all)"),
    )
    pipelines = forms.ModelMultipleChoiceField(
        label=_("Pipelines (none: all)"), queryset=Pipeline.objects.filter(is_archived=False),
        required=False, widget=CHECKS(),
    )  # fmt: skip
    stages = forms.ModelMultipleChoiceField(
        label=_("Stages (none: all)"),
        queryset=Stage.objects.filter(is_archived=False, kind="open").select_related("pipeline"),
        required=False, widget=CHECKS(),
    )  # fmt: skip
    activity_kinds = _checks(Kind.choices, _("When an activity of type"))
    outcomes = _checks(Outcome.choices, _("has the outcome"))
    task_kinds = _checks(Kind.choices, _("create these tasks"))
    occasions = _checks(
        [("birthday", _("Contacts' birthdays")), ("anniversary", _("Company anniversary"))],
        _("Occasions"),
    )
    task_kind = forms.ChoiceField(
        label=_("Type of the task created"), choices=[("", _("Default")), *Kind.choices],
        required=False,
    )  # fmt: skip
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = FollowUpRule
        fields = [
            "name", "name_en", "position", "is_active", "applies_to", "requirement", "amount",
            "use_working_hours", "remind_owner", "tell_manager", "create_task", "return_to_pool",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stages"].label_from_instance = lambda s: f"{s.pipeline} · {s}"
        conditions = self.instance.conditions or {}
        for name in CONDITION_FIELDS:
            if name in conditions and not self.is_bound:
                self.initial[name] = conditions[name]
        self.initial.setdefault("version", self.instance.version)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxSelectMultiple | forms.HiddenInput):
                continue
            if isinstance(widget, forms.CheckboxInput):
                widget.attrs.setdefault("class", "form-check-input")
            elif isinstance(widget, forms.Select):
                widget.attrs.setdefault("class", "form-select")
            else:
                widget.attrs.setdefault("class", "form-control")

    def condition_fields(self):
        """(bound field, attribute, values) of the checkbox conditions, for the template:
        the attribute tells rule_form.js when to show the field."""
        for name in CONDITION_FIELDS:
            if name == "task_kind":
                continue
            if name in FOR_APPLIES:
                yield self[name], "data-applies", " ".join(FOR_APPLIES[name])
            else:
                yield self[name], "data-requirements", " ".join(FOR_REQUIREMENT[name])

    def service_data(self) -> dict:
        """The rule's fields and its conditions, keeping only the conditions that apply
        to the chosen kind of record and requirement."""
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        applies, requirement = data["applies_to"], data["requirement"]
        conditions = {}
        for name in CONDITION_FIELDS:
            if name in FOR_APPLIES and applies not in FOR_APPLIES[name]:
                continue
            if name in FOR_REQUIREMENT and requirement not in FOR_REQUIREMENT[name]:
                continue
            value = self.cleaned_data.get(name)
            if name in ("pipelines", "stages"):
                value = [obj.pk for obj in value or ()]
            if value:
                conditions[name] = value if isinstance(value, str) else list(value)
        data["conditions"] = conditions
        if requirement == Requirement.PAYMENT_OVERDUE:
            data["return_to_pool"] = False  # hidden for it (services refuse it)
        return data


RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–~]\s*(\d{1,2}):(\d{2})\s*$")


def parse_ranges(text: str) -> list[tuple[time, time]]:
    """ "09:00-12:00, 13:00-18:00" → time pairs; ValueError on anything else."""
    ranges = []
    for part in filter(None, (p.strip() for p in re.split(r"[,，;；\n]", text or ""))):
        match = RANGE.match(part)
        if not match:
            raise ValueError(part)
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h2 == 24 and m2 == 0:
            h2, m2 = 23, 59
        ranges.append((time(h1, m1), time(h2, m2)))
    return ranges


class WorkingHoursForm(forms.Form):
    """One text field per weekday: "09:00-12:00, 13:00-18:00"; empty for a day off."""

    def __init__(self, *args, week=None, **kwargs):
        super().__init__(*args, **kwargs)
        week = week or {}
        attrs = {"class": "form-control", "placeholder": _("day off")}
        for day in Weekday:
            ranges = week.get(day.value, ())
            self.fields[f"day{day.value}"] = forms.CharField(
                label=day.label, required=False, max_length=200,
                initial=", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in ranges),
                widget=forms.TextInput(attrs=attrs),
            )  # fmt: skip

    def clean(self):
        data = super().clean()
        periods = []
        for day in Weekday:
            try:
                ranges = parse_ranges(data.get(f"day{day.value}", ""))
            except (ValueError, TypeError):
                self.add_error(f"day{day.value}", _("Write ranges like 09:00-12:00, 13:00-18:00."))
                continue
            periods += [(day.value, start, end) for start, end in ranges]
        data["periods"] = periods
        return data


class HolidayForm(forms.Form):
    date = forms.DateField(
        label=_("Date"), widget=forms.DateInput(attrs={"type": "date", "class": "form-control"})
    )
    name = forms.CharField(
        label=_("Name"), max_length=100, required=False,
        widget=forms.TextInput(attrs={"class": "form-control", "placeholder": _("National Day")}),
    )  # fmt: skip
    is_workday = forms.BooleanField(
        label=_("Make-up working day (调休)"), required=False,
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
    )  # fmt: skip
    workday_like = forms.TypedChoiceField(
        label=_("Works like"), choices=Weekday.choices, coerce=int, initial=0,
        widget=forms.Select(attrs={"class": "form-select"}),
    )  # fmt: skip
