"""Forms of the Today page; they validate input and hand it to the services."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .choices import Category, ItemStatus
from .models import DailyPlan, PlanItem
from .services import MAX_TEXT

Text = {"class": "form-control form-control-sm", "rows": 2}


class PlanReviewForm(forms.Form):
    """Check (problems, risks, countermeasures) and Act (the three reflection
    questions) of a daily plan."""

    problems = forms.CharField(required=False, max_length=MAX_TEXT, widget=forms.Textarea(Text))
    risks = forms.CharField(required=False, max_length=MAX_TEXT, widget=forms.Textarea(Text))
    countermeasures = forms.CharField(
        required=False, max_length=MAX_TEXT, widget=forms.Textarea(Text)
    )
    not_finished = forms.CharField(required=False, max_length=MAX_TEXT, widget=forms.Textarea(Text))
    not_done_well = forms.CharField(
        required=False, max_length=MAX_TEXT, widget=forms.Textarea(Text)
    )
    not_done = forms.CharField(required=False, max_length=MAX_TEXT, widget=forms.Textarea(Text))
    version = forms.IntegerField(min_value=0, required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.fields:
            if name != "version":
                self.fields[name].label = DailyPlan._meta.get_field(name).verbose_name


class PlanItemForm(forms.Form):
    """A new item; the link fields come from a worklist line's "add to plan"."""

    text = forms.CharField(label=_("Item"), max_length=PlanItem._meta.get_field("text").max_length)
    category = forms.ChoiceField(label=_("Category"), choices=Category.choices, initial="key")
    subject_type = forms.ChoiceField(
        required=False, choices=[("", "")] + [(k, k) for k in ("lead", "account", "opportunity")]
    )
    subject_id = forms.IntegerField(required=False, min_value=1, max_value=2**62)
    task_id = forms.IntegerField(required=False, min_value=1, max_value=2**62)


class PlanItemUpdateForm(forms.Form):
    """Do: an item's status and record (each optional: only what was sent changes)."""

    status = forms.ChoiceField(required=False, choices=ItemStatus.choices)
    note = forms.CharField(required=False, max_length=PlanItem._meta.get_field("note").max_length)
    version = forms.IntegerField(min_value=0, required=False)


class ProspectingForm(forms.Form):
    start = forms.TimeField(label=_("From"), widget=forms.TimeInput(attrs={"type": "time"}))
    end = forms.TimeField(label=_("Until"), widget=forms.TimeInput(attrs={"type": "time"}))
    version = forms.IntegerField(min_value=0, required=False, widget=forms.HiddenInput)
