"""Forms of the roadmap's admin page; the services do the checking."""

from django import forms

from loudou.pipeline.choices import StageKind
from loudou.pipeline.models import Stage

from .models import Band, Standard


class BandForm(forms.ModelForm):
    class Meta:
        model = Band
        fields = ["name", "name_en", "duration_weeks", "from_month", "to_month"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        drop = ["from_month", "to_month"] if self.instance.is_training else ["duration_weeks"]
        for name in drop:
            del self.fields[name]
        for field in self.fields.values():
            field.widget.attrs.setdefault("class", "form-control form-control-sm")

    def _post_clean(self):
        # The service validates (and reports onto the form): skip the model's own pass.
        pass


class StandardForm(forms.ModelForm):
    class Meta:
        model = Standard
        fields = [
            "metric", "scope", "comparison", "value", "value_max", "stage", "min_probability",
            "label", "label_en",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stage"].queryset = (
            Stage.objects.filter(kind=StageKind.OPEN, is_archived=False)
            .select_related("pipeline")
            .order_by("pipeline__position", "pipeline_id", "position")
        )
        self.fields["stage"].label_from_instance = lambda s: f"{s.pipeline} · {s}"
        for field in self.fields.values():
            css = (
                "form-select form-select-sm"
                if isinstance(field.widget, forms.Select)
                else ("form-control form-control-sm")
            )
            field.widget.attrs.setdefault("class", css)

    def _post_clean(self):
        pass
