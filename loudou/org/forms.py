from django import forms
from django.utils.translation import gettext_lazy as _

from loudou.web.forms import BootstrapMixin

from .models import User, assignable_owners


class ProfileForm(BootstrapMixin, forms.ModelForm):
    class Meta:
        model = User
        fields = ["name", "email", "phone", "language"]


class TokenForm(BootstrapMixin, forms.Form):
    name = forms.CharField(
        label=_("What is it for?"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. nightly export script")}),
    )


def kind_field_name(label: str) -> str:
    """The form field of a per-kind receiver: "customers.account" → kind__customers__account."""
    return "kind__" + label.replace(".", "__")


class HandOverForm(BootstrapMixin, forms.Form):
    """Who leaves; who receives — one person, or split among several, with optional
    receivers per kind of record; pools for the open leads and for the accounts."""

    from_user = forms.ModelChoiceField(label=_("Hand over the records of"), queryset=None)
    to = forms.ModelChoiceField(
        label=_("To one person"),
        queryset=None,
        required=False,
        help_text=_("Or split among several people below."),
    )
    receivers = forms.ModelMultipleChoiceField(
        label=_("Split among"),
        queryset=None,
        required=False,
        help_text=_("Hold Ctrl (⌘ on a Mac) to choose several."),
    )
    split = forms.ChoiceField(
        label=_("How to split"),
        choices=[
            ("round_robin", _("In turn")),
            ("region", _("By region: each person gets the records of their region")),
        ],
        initial="round_robin",
        required=False,
        help_text=_("A customer's deals, activities and tasks follow the customer."),
    )
    pool = forms.ModelChoiceField(
        label=_("Open leads into pool"),
        queryset=None,
        required=False,
        help_text=_("Empty: the open leads go to the receivers too."),
    )
    account_pool = forms.ModelChoiceField(
        label=_("Accounts into pool"),
        queryset=None,
        required=False,
        help_text=_("Empty: the accounts go to the receivers."),
    )
    deactivate = forms.BooleanField(
        label=_("The person has left: deactivate their login"), required=False
    )
    left_on = forms.DateField(
        label=_("Left on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Empty: today."),
    )
    confirm = forms.BooleanField(label=_("I have checked the numbers above"), required=False)

    def __init__(self, *args, actor, pools, kinds=(), **kwargs):
        """``kinds``: (label, name) of the kinds of record that may get their own
        receiver."""
        super().__init__(*args, **kwargs)
        visible = User.objects.visible_to(actor).exclude(pk=actor.pk).order_by("username")
        self.fields["from_user"].queryset = visible
        receivers = assignable_owners(actor).order_by("username")
        self.fields["to"].queryset = receivers
        self.fields["receivers"].queryset = receivers
        self.fields["receivers"].widget.attrs["size"] = 5
        self.fields["pool"].queryset = pools
        self.fields["account_pool"].queryset = pools
        self.kinds = list(kinds)
        for label, name in self.kinds:
            self.fields[kind_field_name(label)] = forms.ModelChoiceField(
                label=name, queryset=receivers, required=False
            )

    def by_kind(self) -> dict:
        data = self.cleaned_data
        return {
            label: data[kind_field_name(label)]
            for label, _name in self.kinds
            if data.get(kind_field_name(label))
        }

    def options(self) -> dict:
        """The hand-over's keyword arguments (org.handover.hand_over / preview)."""
        data = self.cleaned_data
        return {
            "to": data.get("to"),
            "receivers": list(data.get("receivers") or ()),
            "split": data.get("split") or "round_robin",
            "by_kind": self.by_kind(),
            "pool": data.get("pool"),
            "account_pool": data.get("account_pool"),
        }
