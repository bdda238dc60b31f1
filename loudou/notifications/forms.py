"""Forms of the channels page: the e-mail preference and a webhook. They validate
input; the services (which check URLs, kinds and permissions) decide."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from loudou.web.forms import BootstrapMixin

from . import kinds
from .choices import WEBHOOK_FLAVOURS, Flavour


class _MarkServiceErrors:
    """Mark a field invalid also when a service's refusal lands on it after cleaning."""

    def add_error(self, field, error):
        super().add_error(field, error)
        if field in self.fields:
            widget = self.fields[field].widget
            if "is-invalid" not in widget.attrs.get("class", ""):
                widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()


def _kind_field():
    return forms.MultipleChoiceField(
        label=_("Which notifications"),
        choices=kinds.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Tick none to receive every kind."),
    )


class EmailPreferenceForm(_MarkServiceErrors, BootstrapMixin, forms.Form):
    active = forms.BooleanField(label=_("Send my notifications by e-mail"), required=False)
    kinds = _kind_field()
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0, max_value=2**31)


class WebhookForm(_MarkServiceErrors, BootstrapMixin, forms.Form):
    """Add or edit a chat robot webhook. ``teams``: the teams the user may give a
    webhook to (empty: personal webhooks only); ``channel``: the one being edited."""

    name = forms.CharField(
        label=pgettext_lazy("notification channel", "Name"),
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. East sales group")}),
    )
    flavour = forms.ChoiceField(
        label=pgettext_lazy("notification channel", "Type"),
        choices=[(f.value, f.label) for f in WEBHOOK_FLAVOURS],
    )
    team = forms.ModelChoiceField(
        label=_("For"),
        queryset=None,
        required=False,
        empty_label=_("Only me (my own notifications)"),
        help_text=_("A team webhook posts the notifications of the team's members."),
    )
    include_subteams = forms.BooleanField(
        label=_("Also the members of its sub-teams"),
        required=False,
        help_text=_("Team webhooks only."),
    )
    url = forms.CharField(
        label=_("Webhook URL"),
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://…", "inputmode": "url"}),
    )
    secret = forms.CharField(
        label=_("Signing secret"),
        max_length=200,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("DingTalk “加签” (SEC…) or Feishu “签名校验”; the generic webhook "
                    "signs its body with it. WeCom robots have none."),
    )  # fmt: skip
    clear_secret = forms.BooleanField(label=_("Remove the saved secret"), required=False)
    kinds = _kind_field()
    active = forms.BooleanField(
        label=pgettext_lazy("notification channel", "Active"), required=False, initial=True
    )
    version = forms.IntegerField(
        widget=forms.HiddenInput, required=False, min_value=1, max_value=2**31
    )

    def __init__(self, *args, teams=None, channel=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel = channel
        if channel is not None or teams is None or not teams.exists():
            del self.fields["team"]
        else:
            self.fields["team"].queryset = teams
        if channel is not None and channel.team_id is None:
            del self.fields["include_subteams"]
        if channel is None or not channel.secret:
            del self.fields["clear_secret"]
        if channel is not None and channel.secret:
            self.fields["secret"].widget.attrs["placeholder"] = _("(saved; type to replace)")

    def service_fields(self) -> dict:
        """The cleaned data as keyword arguments of the webhook services."""
        data = self.cleaned_data
        secret = data.get("secret") or None  # empty: keep the saved one
        if data.get("clear_secret"):
            secret = ""
        fields = {
            "name": data["name"], "flavour": data["flavour"], "url": data["url"],
            "kinds": data.get("kinds") or [], "active": bool(data.get("active")),
            "include_subteams": bool(data.get("include_subteams")),
        }  # fmt: skip
        if self.channel is None:
            fields["secret"] = secret or ""
        else:
            fields["secret"] = secret
        return fields


FLAVOUR_HELP = {
    Flavour.WECOM: _("In the WeCom group chat: ··· → Group robots (群机器人) → Add robot. "
                     "Copy the webhook address (https://qyapi.weixin.qq.com/cgi-bin/webhook/"
                     "send?key=…)."),
    Flavour.DINGTALK: _("In the DingTalk group: Settings → Bots (机器人) → Add robot → Custom "
                        "(自定义, via webhook). Under security choose “Sign” (加签) and copy "
                        "the SEC… secret here, or a custom keyword “Loudou”. Copy the webhook "
                        "(https://oapi.dingtalk.com/robot/send?access_token=…)."),
    Flavour.FEISHU: _("In the Feishu / Lark group: Settings → Bots (群机器人) → Add bot → "
                      "Custom bot (自定义机器人). Copy the webhook (https://open.feishu.cn/"
                      "open-apis/bot/v2/hook/…); if you turn on “Set signature verification” "
                      "(签名校验), copy that secret here."),
    Flavour.JSON: _("Any service that accepts a JSON POST: {\"text\", \"kind\", \"url\", "
                    "\"user\", \"notification_id\", \"created_at\"}. With a secret the "
                    "request carries X-Loudou-Timestamp and X-Loudou-Signature (sha256 HMAC "
                    "of “timestamp.body”)."),
}  # fmt: skip
