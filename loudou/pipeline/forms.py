from django import forms
from django.utils.translation import gettext_lazy as _

from loudou.customers.models import Account, Contact
from loudou.org.models import User, assignable_owners
from loudou.web.forms import BootstrapMixin

from .choices import StageKind
from .models import LostReason, Opportunity, Pipeline, Stage


class OpportunityForm(BootstrapMixin, forms.ModelForm):
    """Create or edit an opportunity. The stage is chosen only on creation; afterwards
    it changes through the move/win/lose actions, which keep the history."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    stage = forms.ModelChoiceField(queryset=Stage.objects.none(), label=_("stage"))
    probability = forms.DecimalField(
        label=_("win probability (%)"), min_value=0, max_value=100, decimal_places=2,
        required=False, help_text=_("Leave empty to use the stage's default win rate."),
    )  # fmt: skip

    class Meta:
        model = Opportunity
        fields = [
            "name", "account", "pipeline", "amount", "currency", "expected_close_date",
            "product_line", "source", "owner", "contacts", "shared_with", "competitors",
            "next_step", "next_step_date", "description",
        ]  # fmt: skip
        widgets = {
            "expected_close_date": forms.DateInput,
            "next_step_date": forms.DateInput,
            "description": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        accounts = Account.objects.visible_to(actor)
        owners = assignable_owners(actor)
        if self.instance.pk:
            # Keeping the current account and owner is not a choice the editor makes: a
            # collaborator may edit a deal whose account or owner is outside their scope.
            accounts = accounts | Account.objects.filter(pk=self.instance.account_id)
            owners = owners | User.objects.filter(pk=self.instance.owner_id)
        self.fields["account"].queryset = accounts
        self.fields["contacts"].queryset = Contact.objects.filter(account__in=accounts.values("pk"))
        self.fields["contacts"].required = False
        self.fields["owner"].queryset = owners
        self.fields["shared_with"].queryset = User.objects.filter(is_active=True)
        self.fields["shared_with"].label = _("collaborators")
        self.fields["owner"].required = True
        self.fields["pipeline"].queryset = Pipeline.objects.filter(is_archived=False)
        stages = Stage.objects.filter(kind=StageKind.OPEN, is_archived=False).select_related(
            "pipeline"
        )
        self.fields["stage"].queryset = stages
        self.fields["stage"].label_from_instance = lambda s: f"{s.pipeline} · {s}"
        if self.instance.pk:
            del self.fields["pipeline"], self.fields["stage"]
            self.fields["version"].initial = self.instance.version
            if self.instance.probability_manual:
                self.fields["probability"].initial = self.instance.probability

    def clean(self):
        data = super().clean()
        stage, pipeline = data.get("stage"), data.get("pipeline")
        if stage and pipeline and stage.pipeline_id != pipeline.pk:
            self.add_error("stage", _("Choose a stage of the selected pipeline."))
        contacts, account = data.get("contacts"), data.get("account")
        if contacts and account and any(c.account_id != account.pk for c in contacts):
            self.add_error("contacts", _("Choose contacts of the selected account."))
        return data


class LoseForm(BootstrapMixin, forms.Form):
    reason = forms.ModelChoiceField(
        queryset=LostReason.objects.filter(is_active=True), label=_("Why was it lost?")
    )
    note = forms.CharField(label=_("Note"), max_length=300, required=False)
    version = forms.IntegerField(widget=forms.HiddenInput)


class ChecklistField(forms.CharField):
    """A checklist edited as one item per line, stored as a JSON list."""

    widget = forms.Textarea(attrs={"rows": 2})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


class StageForm(BootstrapMixin, forms.ModelForm):
    checklist = ChecklistField(
        label=_("checklist"), required=False, help_text=_("One item per line.")
    )

    class Meta:
        model = Stage
        fields = [
            "name", "name_en", "code", "default_probability", "stale_after_days", "guidance",
            "checklist",
        ]  # fmt: skip
        widgets = {"guidance": forms.Textarea(attrs={"rows": 2})}


StageFormSet = forms.modelformset_factory(
    Stage, form=StageForm, extra=1, can_order=True, can_delete=False
)


class PipelineForm(BootstrapMixin, forms.ModelForm):
    template = forms.ChoiceField(label=_("template"), choices=())

    class Meta:
        model = Pipeline
        fields = ["name", "name_en", "product_line", "checklist_mode", "learn_win_rates"]

    def __init__(self, *args, creating=False, **kwargs):
        super().__init__(*args, **kwargs)
        from .templates import TEMPLATE_CHOICES

        if creating:
            self.fields["template"].choices = TEMPLATE_CHOICES
            self.fields["name"].required = False
            self.fields["name"].help_text = _("Leave empty to use the template's name.")
            self.order_fields(["template"])
        else:
            del self.fields["template"]
