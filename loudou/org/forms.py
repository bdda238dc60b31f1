from django import forms
from django.utils.translation import gettext_lazy as _

from loudou.web.forms import BootstrapMixin

from .models import User


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
