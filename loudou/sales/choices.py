from django.db import models
from django.utils.translation import gettext_lazy as _


class ContractKind(models.TextChoices):
    CONTRACT = "contract", _("Contract")
    ORDER = "order", _("Out-of-funnel order")


class ContractStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ACTIVE = "active", _("Active")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


# Active and completed contracts are signed: they count as sales and carry receivables.
SIGNED_STATUSES = (ContractStatus.ACTIVE, ContractStatus.COMPLETED)


class PaymentMethod(models.TextChoices):
    BANK_TRANSFER = "bank", _("Bank transfer")
    CASH = "cash", _("Cash")
    CHEQUE = "cheque", _("Cheque")
    ALIPAY = "alipay", _("Alipay")
    WECHAT = "wechat", _("WeChat Pay")
    ACCEPTANCE_BILL = "bill", _("Acceptance bill")
    OTHER = "other", _("Other")


class InvoiceStatus(models.TextChoices):
    ISSUED = "issued", _("Issued")
    CANCELLED = "cancelled", _("Cancelled")


class ShipmentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SHIPPED = "shipped", _("Shipped")
    DELIVERED = "delivered", _("Delivered")


class QuoteStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENT = "sent", _("Sent")
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")
    EXPIRED = "expired", _("Expired")
