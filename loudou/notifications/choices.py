"""Choices of the notification channels and their deliveries."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Flavour(models.TextChoices):
    """How a channel delivers: by e-mail, or by posting to a chat robot's webhook in that
    robot's message format."""

    EMAIL = "email", _("E-mail")
    WECOM = "wecom", _("WeCom group robot (企业微信)")
    DINGTALK = "dingtalk", _("DingTalk custom robot (钉钉)")
    FEISHU = "feishu", _("Feishu / Lark custom bot (飞书)")
    JSON = "json", _("Generic JSON webhook")


WEBHOOK_FLAVOURS = (Flavour.WECOM, Flavour.DINGTALK, Flavour.FEISHU, Flavour.JSON)
# The robots that sign with a shared secret (and the generic webhook, which signs its
# body in a header when given one). WeCom group robots have no signing.
SIGNING_FLAVOURS = (Flavour.DINGTALK, Flavour.FEISHU, Flavour.JSON)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed, will retry")
    GAVE_UP = "gave_up", _("Gave up")


FINAL_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.GAVE_UP)
