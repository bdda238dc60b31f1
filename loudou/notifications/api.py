"""Notifications API: the caller's own notifications only; someone else's id is a 404.
Channels (e-mail preference, webhooks) and their deliveries, scoped by
``Channel.objects.visible_to``."""

from datetime import datetime
from typing import Annotated, Literal

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from loudou.api.pagination import LimitOffsetPagination, paginate
from loudou.core.exceptions import ValidationFailed
from loudou.pipeline.filters import RowId

from . import delivery, services
from .models import Channel, Delivery, Notification

router = Router(tags=["notifications"])


class NotificationOut(Schema):
    id: int
    kind: str
    text: str
    url: str
    created_at: datetime
    read_at: datetime | None
    is_read: bool


class NotificationFilter(Schema):
    unread: bool | None = Field(None, description="true: only unread; false: only read.")


class UnreadCountOut(Schema):
    unread: int


class NotificationIdsIn(Schema):
    ids: list[RowId] = Field(..., max_length=1000, description="Notifications to mark read.")


class MarkedOut(Schema):
    marked: int


@router.get("/notifications", response=list[NotificationOut])
@paginate(LimitOffsetPagination)
def list_notifications(request, filters: Query[NotificationFilter]):
    """The caller's notifications, newest first."""
    qs = Notification.objects.for_user(request.auth)
    if filters.unread is not None:
        qs = qs.filter(read_at__isnull=filters.unread)
    return qs.order_by("-created_at", "-pk")


@router.get("/notifications/unread-count", response=UnreadCountOut)
def unread_count(request):
    """How many of the caller's notifications are unread (the bell's number)."""
    return {"unread": services.unread_count(request.auth)}


@router.post("/notifications/read", response=MarkedOut)
def mark_read(request, payload: NotificationIdsIn):
    """Mark these of the caller's notifications read (other ids are ignored)."""
    return {"marked": services.mark_read(request.auth, payload.ids)}


@router.post("/notifications/read-all", response=MarkedOut)
def mark_all_read(request):
    """Mark every unread notification of the caller read."""
    return {"marked": services.mark_all_read(request.auth)}


@router.post("/notifications/{notification_id}/read", response=NotificationOut)
def mark_one_read(request, notification_id: RowId):
    """Mark one notification read and return it."""
    notification = get_object_or_404(
        Notification.objects.for_user(request.auth), pk=notification_id
    )
    services.mark_read(request.auth, [notification.pk])
    notification.refresh_from_db()
    return notification


# --- channels ---------------------------------------------------------------------------
#
# Scope: Channel.objects.visible_to (my own e-mail and webhooks; team webhooks for the
# teams I manage, every team for an admin). Anything else is a 404 like a missing id.

WebhookFlavour = Literal["wecom", "dingtalk", "feishu", "json"]
KindName = Annotated[str, Field(min_length=1, max_length=40)]


class ChannelOut(Schema):
    id: int
    name: str
    flavour: str
    user_id: int | None = Field(..., description="Owner of a personal webhook.")
    team_id: int | None = Field(..., description="Team of a team webhook.")
    include_subteams: bool
    url: str
    has_secret: bool = Field(..., description="Whether a signing secret is saved (never shown).")
    kinds: list[str] = Field(..., description="Notification kinds it carries; empty: all.")
    active: bool
    last_status: str
    last_error: str
    last_attempt_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class ChannelIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    flavour: WebhookFlavour
    url: str = Field(..., min_length=1, max_length=500, description="https only.")
    secret: str = Field("", max_length=200, description="DingTalk/Feishu/JSON signing secret.")
    kinds: list[KindName] = Field(default_factory=list, max_length=50)
    active: bool = True
    team_id: RowId | None = Field(None, description="A team you manage; empty: your own.")
    include_subteams: bool = False


class ChannelPatch(Schema):
    version: int = Field(..., ge=1, le=2**31, description="The version you last read.")
    name: str = Field(None, min_length=1, max_length=100)
    flavour: WebhookFlavour = None
    url: str = Field(None, min_length=1, max_length=500)
    secret: str | None = Field(None, max_length=200, description='Absent/null: keep; "": remove.')
    kinds: list[KindName] = Field(None, max_length=50)
    active: bool = None
    include_subteams: bool = None


class ChannelVersionQuery(Schema):
    version: int | None = Field(None, ge=1, le=2**31)


class EmailOut(Schema):
    active: bool
    kinds: list[str]
    address: str = Field(..., description="Your profile's e-mail address.")
    configured: bool = Field(..., description="Whether the server can send e-mail (SMTP).")
    version: int = Field(..., description="0 while nothing is saved.")


class EmailPatch(Schema):
    version: int = Field(..., ge=0, le=2**31, description="The version you last read.")
    active: bool | None = None
    kinds: list[KindName] | None = Field(None, max_length=50)


class DeliveryOut(Schema):
    id: int
    channel_id: int
    channel_name: str
    notification_id: int | None
    is_test: bool
    status: str = Field(..., description="pending, sending, sent, failed (retrying), gave_up")
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    sent_at: datetime | None
    created_at: datetime

    @staticmethod
    def resolve_channel_name(obj) -> str:
        return str(obj.channel)


class DeliveryFilter(Schema):
    channel_id: RowId | None = None
    status: Literal["pending", "sending", "sent", "failed", "gave_up"] | None = None


def _email_out(user, channel: Channel) -> dict:
    return {
        "active": channel.active, "kinds": channel.kinds, "address": user.email,
        "configured": delivery.email_configured(), "version": channel.version,
    }  # fmt: skip


def _webhook(request, channel_id) -> Channel:
    qs = Channel.objects.visible_to(request.auth).webhooks().select_related("team")
    return get_object_or_404(qs, pk=channel_id)


@router.get("/notification-channels/email", response=EmailOut)
def get_email(request):
    """My e-mail preference (off until saved)."""
    return _email_out(request.auth, services.email_channel(request.auth))


@router.patch("/notification-channels/email", response=EmailOut)
def patch_email(request, payload: EmailPatch):
    """Turn my e-mail notifications on or off and choose their kinds."""
    channel = services.set_email_preference(
        request.auth, active=payload.active, kinds=payload.kinds, version=payload.version
    )
    return _email_out(request.auth, channel)


@router.post("/notification-channels/email/test", response={202: DeliveryOut})
def test_email(request):
    """Queue a test e-mail to me; poll the delivery for its outcome."""
    return Status(202, services.send_test(services.email_channel(request.auth), actor=request.auth))


@router.get("/notification-channels", response=list[ChannelOut])
@paginate(LimitOffsetPagination)
def list_channels(request):
    """My webhooks and those of the teams I manage."""
    return Channel.objects.visible_to(request.auth).webhooks().order_by("name", "pk")


@router.post("/notification-channels", response={201: ChannelOut})
def create_channel(request, payload: ChannelIn):
    """Add a webhook: mine, or with ``team_id`` one of a team I manage."""
    team = None
    if payload.team_id is not None:
        team = services.manageable_teams(request.auth).filter(pk=payload.team_id).first()
        if team is None:
            raise ValidationFailed(_("Choose a team you manage."), field="team_id")
    data = payload.dict(exclude={"team_id"})
    return Status(201, services.create_webhook(request.auth, team=team, **data))


@router.get("/notification-channels/{channel_id}", response=ChannelOut)
def get_channel(request, channel_id: RowId):
    return _webhook(request, channel_id)


@router.patch("/notification-channels/{channel_id}", response=ChannelOut)
def update_channel(request, channel_id: RowId, payload: ChannelPatch):
    """Change a webhook; 409 on a stale version."""
    channel = _webhook(request, channel_id)
    fields = payload.dict(exclude_unset=True, exclude={"version"})
    fields = {k: v for k, v in fields.items() if v is not None or k == "secret"}
    return services.update_webhook(channel, actor=request.auth, version=payload.version, **fields)


@router.delete("/notification-channels/{channel_id}", response={204: None})
def delete_channel(request, channel_id: RowId, query: Query[ChannelVersionQuery]):
    """Remove a webhook and its delivery history."""
    services.delete_channel(
        _webhook(request, channel_id), actor=request.auth, version=query.version
    )
    return Status(204, None)


@router.post("/notification-channels/{channel_id}/test", response={202: DeliveryOut})
def test_channel(request, channel_id: RowId):
    """Queue a test message through the webhook (also when it is switched off); poll
    ``/notification-deliveries/{id}`` for the outcome."""
    return Status(202, services.send_test(_webhook(request, channel_id), actor=request.auth))


@router.get("/notification-deliveries", response=list[DeliveryOut])
@paginate(LimitOffsetPagination)
def list_deliveries(request, filters: Query[DeliveryFilter]):
    """Recent deliveries through my channels (and my teams' for managers), newest first."""
    qs = Delivery.objects.visible_to(request.auth).select_related("channel")
    if filters.channel_id is not None:
        qs = qs.filter(channel_id=filters.channel_id)
    if filters.status is not None:
        qs = qs.filter(status=filters.status)
    return qs.order_by("-created_at", "-pk")


@router.get("/notification-deliveries/{delivery_id}", response=DeliveryOut)
def get_delivery(request, delivery_id: RowId):
    qs = Delivery.objects.visible_to(request.auth).select_related("channel")
    return get_object_or_404(qs, pk=delivery_id)
