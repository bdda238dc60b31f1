"""Forms of the visit pages; they validate input and hand it to ``services``."""

from django import forms
from django.utils.translation import gettext_lazy as _

from ..choices import VISIT_OUTCOMES, Outcome, Purpose
from ..forms import WHEN_FORMAT
from ..models import MAX_DURATION_MINUTES


def _when(label):
    return forms.DateTimeField(
        label=label,
        input_formats=[WHEN_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local", "class": "form-control"}, format=WHEN_FORMAT
        ),
    )


class PlanForm(forms.Form):
    """Plan a visit to ``account``: when, with whom, about which deal, what for; a
    manager also says who goes. The choices come from the view (scoped querysets)."""

    account = forms.TypedChoiceField(label=_("Account"), coerce=int)
    planned_for = _when(_("When"))
    contact = forms.TypedChoiceField(
        label=_("Contact"), coerce=int, required=False, empty_value=None
    )
    opportunity = forms.TypedChoiceField(
        label=_("Opportunity"), coerce=int, required=False, empty_value=None
    )
    purpose = forms.ChoiceField(
        label=_("Purpose"), choices=[("", _("Purpose: automatic")), *Purpose.choices],
        required=False,
    )  # fmt: skip
    topic = forms.CharField(
        label=_("What for"), max_length=200, required=False,
        widget=forms.TextInput(
            attrs={"class": "form-control", "placeholder": _("e.g. demonstrate the new version")}
        ),
    )  # fmt: skip
    owner = forms.TypedChoiceField(
        label=_("Who goes"), coerce=int, required=False, empty_value=None
    )

    def __init__(self, *args, accounts=(), contacts=(), opportunities=(), owners=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [("", _("Choose an account…")), *accounts]
        self.fields["contact"].choices = [("", "—"), *contacts]
        self.fields["opportunity"].choices = [("", "—"), *opportunities]
        if owners:
            self.fields["owner"].choices = list(owners)
        else:
            del self.fields["owner"]
        for name in ("account", "contact", "opportunity", "purpose", "owner"):
            if name in self.fields:
                self.fields[name].widget.attrs["class"] = "form-select"


class CheckInForm(forms.Form):
    """What the browser's geolocation gave; the service checks the ranges."""

    latitude = forms.CharField(max_length=40)
    longitude = forms.CharField(max_length=40)
    accuracy = forms.CharField(max_length=40, required=False)
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class RecordForm(forms.Form):
    """How the visit went. ``check_out`` (shown after a check-in) records leaving now."""

    outcome = forms.ChoiceField(
        label=_("How did it go?"),
        choices=[(v, Outcome(v).label) for v in VISIT_OUTCOMES],
        initial=Outcome.VISITED,
        widget=forms.Select(attrs={"class": "form-select form-select-lg"}),
    )
    notes = forms.CharField(
        label=_("Notes"), required=False, max_length=5000,
        widget=forms.Textarea(
            attrs={
                "class": "form-control", "rows": 3,
                "placeholder": _("Who you met, what was agreed"),
            }
        ),
    )  # fmt: skip
    gave_something = forms.BooleanField(label=_("Gave the customer something"), required=False)
    gave_what = forms.CharField(
        label=_("What was given"), max_length=200, required=False,
        widget=forms.TextInput(
            attrs={"class": "form-control", "placeholder": _("Information, a sample, a quote…")}
        ),
    )  # fmt: skip
    duration_minutes = forms.IntegerField(
        label=_("Minutes"), required=False, min_value=0, max_value=MAX_DURATION_MINUTES,
        widget=forms.NumberInput(attrs={"class": "form-control", "inputmode": "numeric"}),
    )  # fmt: skip
    check_out = forms.BooleanField(label=_("I am leaving now (check out)"), required=False)
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class RescheduleForm(forms.Form):
    planned_for = _when(_("New time"))
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is it cancelled?"), max_length=300,
        widget=forms.TextInput(attrs={"class": "form-control"}),
    )  # fmt: skip
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)
