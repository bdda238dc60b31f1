from django import forms
from django.utils.translation import gettext_lazy as _

from loudou.org.models import User, assignable_owners
from loudou.web.forms import BootstrapMixin

from .models import Account, Contact


class AccountForm(BootstrapMixin, forms.ModelForm):
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    website = forms.URLField(label=_("website"), required=False, assume_scheme="https")

    class Meta:
        model = Account
        fields = [
            "name", "industry", "region", "size", "source", "owner", "shared_with", "phone",
            "phone_alt",
            "website", "address", "founded_on", "revisit_class", "revisit_status", "segment",
            "notes",
        ]  # fmt: skip
        widgets = {"notes": forms.Textarea(attrs={"rows": 3}), "founded_on": forms.DateInput}

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        owners = assignable_owners(actor)
        if self.instance.owner_id:
            # Keeping the current owner is not an assignment: a collaborator or manager
            # who edits the account must not be forced to take it over or hand it on.
            owners = owners | User.objects.filter(pk=self.instance.owner_id)
        self.fields["owner"].queryset = owners
        self.fields["shared_with"].queryset = User.objects.filter(is_active=True)
        self.fields["owner"].required = True
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version


class ContactForm(BootstrapMixin, forms.ModelForm):
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Contact
        fields = [
            "name", "title", "mobile", "phone", "email", "wechat", "buying_role", "style",
            "birthday", "notes",
        ]  # fmt: skip
        widgets = {"notes": forms.Textarea(attrs={"rows": 3}), "birthday": forms.DateInput}
        help_texts = {"style": _("Shown to the rep with short advice on how to approach them.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version
