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


class HandOverForm(BootstrapMixin, forms.Form):
    """Who leaves, who receives (and optionally a pool for the open leads)."""

    from_user = forms.ModelChoiceField(label=_("Hand over the records of"), queryset=None)
    to = forms.ModelChoiceField(label=_("To"), queryset=None, required=False)
    pool = forms.ModelChoiceField(
        label=_("Open leads into pool"),
        queryset=None,
        required=False,
        help_text=_("Empty: the open leads go to the receiver too."),
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

    def __init__(self, *args, actor, pools, **kwargs):
        super().__init__(*args, **kwargs)
        visible = User.objects.visible_to(actor).exclude(pk=actor.pk).order_by("username")
        self.fields["from_user"].queryset = visible
        self.fields["to"].queryset = assignable_owners(actor).order_by("username")
        self.fields["pool"].queryset = pools
