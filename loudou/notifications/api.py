"""Notifications API: the caller's own notifications only; someone else's id is a 404."""

from datetime import datetime

from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema

from loudou.api.pagination import LimitOffsetPagination, paginate
from loudou.pipeline.filters import RowId

from . import services
from .models import Notification

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
