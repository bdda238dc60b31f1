from django import forms
from django.utils.translation import gettext_lazy as _

from loudou.customers.models import Account
from loudou.org.models import assignable_owners
from loudou.pipeline.models import Pipeline, Stage
from loudou.web.forms import BootstrapMixin

from .choices import OPEN_STATUSES, LeadStatus
from .models import Lead, PublicPool


class LeadForm(BootstrapMixin, forms.ModelForm):
    """Create or edit a lead. On creation the owner and pool are optional: with neither,
    the assignment rules decide."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    owner = forms.ModelChoiceField(label=_("owner"), queryset=None, required=False)
    pool = forms.ModelChoiceField(label=_("public pool"), queryset=None, required=False)

    class Meta:
        model = Lead
        fields = [
            "name", "company", "title", "mobile", "phone", "email", "wechat", "source",
            "region", "industry", "product_interest", "status", "notes",
        ]  # fmt: skip
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [
            (value, label) for value, label in LeadStatus.choices if value in OPEN_STATUSES
        ]
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version
            del self.fields["owner"], self.fields["pool"]
        else:
            self.fields["owner"].queryset = assignable_owners(actor)
            self.fields["owner"].help_text = _("Empty: the assignment rules decide.")
            self.fields["pool"].queryset = PublicPool.objects.visible_to(actor)

    def clean(self):
        data = super().clean()
        if data.get("owner") and data.get("pool"):
            self.add_error("pool", _("A lead is either owned or in a pool, not both."))
        return data


class ReasonForm(BootstrapMixin, forms.Form):
    reason = forms.CharField(label=_("reason"), max_length=300)


class ConvertForm(BootstrapMixin, forms.Form):
    """The conversion screen: attach to an existing account or create one, then an
    opportunity in the chosen pipeline and stage."""

    account = forms.ModelChoiceField(
        label=_("attach to existing account"),
        queryset=None,
        required=False,
        help_text=_("Empty: create a new account from the lead."),
    )
    create_opportunity = forms.BooleanField(
        label=_("create an opportunity"), required=False, initial=True
    )
    pipeline = forms.ModelChoiceField(label=_("pipeline"), queryset=None, required=False)
    stage = forms.ModelChoiceField(label=_("stage"), queryset=None, required=False)
    amount = forms.DecimalField(
        label=_("amount"), min_value=0, max_digits=14, decimal_places=2, required=False
    )
    opportunity_name = forms.CharField(label=_("opportunity name"), max_length=200, required=False)
    expected_close_date = forms.DateField(
        label=_("expected close date"), required=False, widget=forms.DateInput
    )

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = Account.objects.visible_to(actor)
        pipelines = Pipeline.objects.filter(is_archived=False)
        self.fields["pipeline"].queryset = pipelines
        self.fields["stage"].queryset = Stage.objects.filter(
            pipeline__in=pipelines, kind="open", is_archived=False
        ).select_related("pipeline")
        self.fields["stage"].label_from_instance = lambda s: f"{s.pipeline} · {s}"

    def clean(self):
        data = super().clean()
        if data.get("create_opportunity"):
            if not data.get("pipeline"):
                self.add_error("pipeline", _("Choose a pipeline for the opportunity."))
            stage = data.get("stage")
            if stage and data.get("pipeline") and stage.pipeline_id != data["pipeline"].pk:
                self.add_error("stage", _("Choose an open stage of this pipeline."))
        return data
