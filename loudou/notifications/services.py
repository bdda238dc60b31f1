"""Writes to notifications: send, mark read. Every other app notifies through
:func:`notify` (or :func:`notify_many` for a sweep's summaries)."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import channels
from .models import Notification

TEXT_MAX = 500


def _row(user, text, url, kind, key) -> Notification:
    return Notification(
        user_id=getattr(user, "pk", user), text=str(text)[:TEXT_MAX], url=url[:500],
        kind=kind[:40], key=(key or "")[:200],
    )  # fmt: skip


def notify(user, text, *, url: str = "", kind: str = "", key: str | None = None):
    """Tell ``user`` something in the app. With a ``key``, the user is told at most once
    for that key: a second call (a re-run, a parallel worker) returns None and writes
    nothing. Returns the new notification otherwise. The registered channels
    (channels.py) receive it after the transaction commits."""
    if user is None:
        return None
    row = _row(user, text, url, kind, key)
    if key:
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:
            return None
    else:
        row.save()
    transaction.on_commit(lambda: channels.deliver([row]))
    return row


def notify_many(items) -> int:
    """Send many notifications at once: ``items`` are dicts with ``user``, ``text`` and
    optionally ``url``, ``kind``, ``key``. Rows whose (user, key) exists already are
    skipped. One INSERT per 500 rows; returns how many rows were attempted. Channels
    receive the keyed rows that are new."""
    rows = [
        _row(i["user"], i["text"], i.get("url", ""), i.get("kind", ""), i.get("key")) for i in items
    ]
    if not rows:
        return 0
    keyed = [(r.user_id, r.key) for r in rows if r.key]
    before = set()
    if keyed and channels.active():
        before = set(
            Notification.objects.filter(
                user_id__in={u for u, _k in keyed}, key__in={k for _u, k in keyed}
            ).values_list("user_id", "key")
        )
    Notification.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    if channels.active():
        fresh = [r for r in rows if (r.user_id, r.key) not in before]
        transaction.on_commit(lambda: channels.deliver(fresh))
    return len(rows)


def unread_count(user) -> int:
    """The bell's number: one COUNT on the partial index of unread rows."""
    if user is None or not user.is_authenticated:
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def mark_read(user, ids) -> int:
    """Mark the user's notifications ``ids`` read (someone else's ids are ignored).
    Returns how many changed."""
    return (
        Notification.objects.for_user(user)
        .filter(pk__in=list(ids), read_at__isnull=True)
        .update(read_at=timezone.now())
    )


def mark_all_read(user) -> int:
    """Mark every unread notification of the user read; returns how many changed."""
    return Notification.objects.for_user(user).unread().update(read_at=timezone.now())
