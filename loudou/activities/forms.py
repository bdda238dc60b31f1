"""The activity form: one row on a record's page, the full edit page."""

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import Kind, Outcome, Purpose
from .models import MAX_DURATION_MINUTES

WHEN_FORMAT = "%Y-%m-%dT%H:%M"


def now_value() -> str:
    return timezone.localtime().strftime(WHEN_FORMAT)


class ActivityForm(forms.Form):
    """Kind, outcome, when (blank or untouched: now), duration, notes and what the
    customer was given. ``version`` is set on the edit page only."""

    kind = forms.ChoiceField(label=_("Type"), choices=Kind.choices, initial=Kind.CALL)
    outcome = forms.ChoiceField(
        label=_("Outcome"), choices=[("", _("Outcome…")), *Outcome.choices], required=False
    )
    occurred_at = forms.DateTimeField(
        label=_("When"),
        required=False,
        input_formats=[WHEN_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=WHEN_FORMAT),
    )
    duration_minutes = forms.IntegerField(
        label=_("Minutes"), required=False, min_value=0, max_value=MAX_DURATION_MINUTES
    )
    notes = forms.CharField(label=_("Notes"), required=False, max_length=5000)
    gave_something = forms.BooleanField(label=_("Gave something"), required=False)
    gave_what = forms.CharField(label=_("What was given"), required=False, max_length=200)
    purpose = forms.ChoiceField(
        label=_("Purpose"),
        choices=[("", _("Purpose: automatic")), *Purpose.choices],
        required=False,
    )
    # The "when" shown on a fresh form; submitted unchanged it means "now", so a page left
    # open for an hour does not log the call an hour early.
    shown_now = forms.CharField(required=False, widget=forms.HiddenInput)
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def service_data(self) -> dict:
        data = dict(self.cleaned_data)
        shown = data.pop("shown_now", "")
        data.pop("version", None)
        raw = self.data.get(self.add_prefix("occurred_at"), "")
        if shown and raw == shown:
            data["occurred_at"] = None
        if data["occurred_at"] is None:
            data.pop("occurred_at")
        return data
