"""Delivering notifications through the channels (e-mail, chat webhooks).

The lock contract:

1. :func:`hand_off` is the registered channel (``channels.register_channel``): after
   the notifying transaction commits it writes one :class:`Delivery` row per
   (notification, channel) that should carry it — a unique constraint makes a second
   hand-off of the same notification a no-op — and, after that commits, enqueues the
   task that sends them. Nothing is sent in the request.
2. A worker sends a row only after claiming it with one conditional ``UPDATE ... SET
   status='sending' WHERE pk=… AND <due>``; on PostgreSQL a second worker's UPDATE
   waits for the first one's row lock, then finds the row no longer due and changes
   nothing, so every row is sent by one worker. A worker that dies mid-send leaves the
   row "sending"; after :data:`LEASE` it is due again (at-least-once after a crash).
3. A failed attempt is retried with exponential back-off (``LOUDOU_NOTIFY_RETRY_SECONDS``
   × 2^(attempt-1)) until ``LOUDOU_NOTIFY_MAX_ATTEMPTS``, then the row gives up. The
   periodic job ``notifications.retry_deliveries`` sends whatever is due.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from . import webhooks
from .choices import DeliveryStatus, Flavour
from .models import Channel, Delivery, Notification

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
SWEEP_LIMIT = 200
ERROR_MAX = 500


# --- settings -------------------------------------------------------------------------


def email_configured() -> bool:
    """Whether e-mail notifications can go out (``LOUDOU_SMTP_HOST`` is set)."""
    return bool(getattr(settings, "LOUDOU_EMAIL_NOTIFICATIONS", False))


def max_attempts() -> int:
    return max(1, int(getattr(settings, "LOUDOU_NOTIFY_MAX_ATTEMPTS", 5)))


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt."""
    base = int(getattr(settings, "LOUDOU_NOTIFY_RETRY_SECONDS", 60))
    return timedelta(seconds=base * 2 ** max(attempts - 1, 0))


def absolute_url(path: str) -> str:
    """``path`` as a link that works outside Loudou (``LOUDOU_BASE_URL``)."""
    if not path or path.startswith(("http://", "https://")):
        return path
    base = getattr(settings, "LOUDOU_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    return base + (path if path.startswith("/") else "/" + path)


def _language(user) -> str:
    return (getattr(user, "language", "") or settings.LANGUAGE_CODE)[:10]


# --- hand-off: which channels carry which notification ---------------------------------


def targets_for(notifications) -> list[tuple[Notification, Channel, str]]:
    """(notification, channel, language) for every channel that should carry each of
    ``notifications``: the addressee's active e-mail channel (when SMTP is configured
    and they have an address) and personal webhooks, and the active team webhooks that
    reach the addressee's team — each only if it takes the notification's kind."""
    from loudou.org.models import User

    notifications = [n for n in notifications if n.pk]
    if not notifications:
        return []
    user_ids = {n.user_id for n in notifications}
    mail = email_configured()
    channels = Channel.objects.filter(active=True).filter(
        Q(user_id__in=user_ids) | Q(team__isnull=False)
    ).select_related("team")  # fmt: skip
    personal: dict[int, list[Channel]] = {}
    teams: list[Channel] = []
    for channel in channels:
        if channel.team_id:
            teams.append(channel)
        elif not channel.is_email or mail:
            personal.setdefault(channel.user_id, []).append(channel)
    if not personal and not teams:  # the common case: one query, nothing to deliver
        return []
    users = {
        u.pk: u
        for u in User.objects.filter(pk__in=user_ids)
        .select_related("team")
        .only("pk", "email", "language", "is_active", "team__path")
    }
    found = []
    for n in notifications:
        user = users.get(n.user_id)
        if user is None or not user.is_active:
            continue
        language = _language(user)
        for channel in personal.get(n.user_id, ()):
            if channel.is_email and not user.email:
                continue
            if channel.takes(n.kind):
                found.append((n, channel, language))
        team_path = user.team.path if user.team_id else ""
        for channel in teams:
            if channel.reaches(team_path) and channel.takes(n.kind):
                found.append((n, channel, language))
    return found


def hand_off(notifications) -> int:
    """Write the delivery rows of new ``notifications`` and enqueue their sending after
    commit. Handing the same notification over again writes nothing new (the unique
    (notification, channel) constraint) and sends nothing twice. Returns how many rows
    were attempted."""
    found = targets_for(notifications)
    if not found:
        return 0
    now = timezone.now()
    rows = [
        Delivery(
            notification_id=n.pk, channel_id=channel.pk, language=language, next_attempt_at=now
        )
        for n, channel, language in found
    ]
    with transaction.atomic():
        Delivery.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
        ids = list(
            Delivery.objects.filter(
                notification_id__in={n.pk for n, _c, _l in found},
                status=DeliveryStatus.PENDING,
                attempts=0,
            ).values_list("pk", flat=True)
        )
        if ids:
            transaction.on_commit(lambda: enqueue(ids))
    return len(rows)


hand_off.deliver_many = True  # channels.deliver passes the whole batch at once


def enqueue(delivery_ids) -> None:
    """Queue the sending of these deliveries for a worker (never in the request). If the
    queue is unavailable the periodic retry job sends them later."""
    from .tasks import send_deliveries

    ids = list(delivery_ids)
    for start in range(0, len(ids), 100):
        try:
            send_deliveries.enqueue(ids[start : start + 100])
        except Exception:
            logger.exception("could not enqueue notification deliveries")


def create_test(channel: Channel, *, actor) -> Delivery:
    """A test message through ``channel`` (active or not), enqueued after commit."""
    delivery = Delivery.objects.create(
        channel=channel,
        is_test=True,
        language=_language(actor),
        next_attempt_at=timezone.now(),
        requested_by=actor,
    )
    transaction.on_commit(lambda: enqueue([delivery.pk]))
    return delivery


# --- sending --------------------------------------------------------------------------


def claim(delivery_id: int, now=None) -> Delivery | None:
    """Take one due delivery for this worker (one conditional UPDATE), or None when it
    is not due or another worker has it."""
    now = now or timezone.now()
    changed = (
        Delivery.objects.filter(pk=delivery_id)
        .due(now, lease=LEASE)
        .update(status=DeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )
    if changed != 1:
        return None
    return Delivery.objects.select_related(
        "channel", "channel__user", "notification", "notification__user", "requested_by"
    ).get(pk=delivery_id)


def _message(delivery: Delivery) -> tuple[str, str, str]:
    """(subject, text, link) of a delivery, in its language."""
    channel, n = delivery.channel, delivery.notification
    if delivery.is_test or n is None:
        text = _("Test message: this channel “%(name)s” works.") % {"name": channel}
        return text, text, absolute_url(reverse("notifications:channels"))
    text = n.text
    if channel.team_id:
        text = _("@%(name)s: %(text)s") % {"name": n.user, "text": text}
    return n.text, text, absolute_url(n.url)


def _send_email(delivery: Delivery) -> None:
    user = delivery.channel.user
    if not email_configured():
        raise webhooks.WebhookError(_("E-mail is not configured on this server."))
    if not user.email:
        raise webhooks.WebhookError(_("There is no e-mail address in your profile."))
    subject, text, link = _message(delivery)
    subject = " ".join((_("[Loudou] %(text)s") % {"text": subject}).split())
    if len(subject) > 120:
        subject = subject[:119] + "…"
    body = [text]
    if link:
        body += ["", link]
    body += [
        "",
        "-- ",
        _("You receive these e-mails because e-mail notifications are on in Loudou. "
          "Change it here: %(url)s") % {"url": absolute_url(reverse("notifications:channels"))},
    ]  # fmt: skip
    try:
        send_mail(subject, "\n".join(body), None, [user.email], fail_silently=False)
    except Exception as exc:  # SMTP errors, refused recipients, timeouts
        error = _("The mail server refused: %(error)s") % {"error": exc}
        raise webhooks.WebhookError(error) from exc


def _send_webhook(delivery: Delivery) -> None:
    channel, n = delivery.channel, delivery.notification
    _subject, text, link = _message(delivery)
    lines = [_("[Loudou] %(text)s") % {"text": text}]
    if link:
        lines.append(link)
    extra = {"kind": "test", "url": link, "user": "", "notification_id": None, "created_at": None}
    if n is not None and not delivery.is_test:
        extra = {
            "kind": n.kind, "url": link, "user": n.user.get_username(),
            "notification_id": n.pk, "created_at": n.created_at.isoformat(),
        }  # fmt: skip
    webhooks.post(channel.flavour, channel.url, channel.secret, "\n".join(lines), extra=extra)


def _refusal(delivery: Delivery) -> str:
    """Why a delivery must not go out at all any more ('' when it may)."""
    if delivery.is_test:
        return ""
    if not delivery.channel.active:
        return _("The channel was switched off.")
    if delivery.notification_id is None:
        return _("The notification was deleted.")
    return ""


def send(delivery: Delivery) -> Delivery:
    """Send a claimed delivery once and record the outcome: sent; failed with the next
    attempt scheduled; or given up after the last attempt (a test message: after its
    only attempt)."""
    refusal = _refusal(delivery)
    error = refusal
    if not refusal:
        try:
            with translation.override(delivery.language or settings.LANGUAGE_CODE):
                if delivery.channel.flavour == Flavour.EMAIL:
                    _send_email(delivery)
                else:
                    _send_webhook(delivery)
        except webhooks.WebhookError as exc:
            error = str(exc) or exc.__class__.__name__
        except Exception as exc:  # a bug must not leave the row "sending" forever
            logger.exception("notification delivery %s failed", delivery.pk)
            error = f"{exc.__class__.__name__}: {exc}"
    error = error[:ERROR_MAX]
    done = timezone.now()
    if not error:
        status, next_at = DeliveryStatus.SENT, None
    elif refusal or delivery.is_test or delivery.attempts >= max_attempts():
        status, next_at = DeliveryStatus.GAVE_UP, None
    else:
        status, next_at = DeliveryStatus.FAILED, done + backoff(delivery.attempts)
    Delivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.SENDING, claimed_at=delivery.claimed_at
    ).update(
        status=status, next_attempt_at=next_at, last_error=error,
        sent_at=done if status == DeliveryStatus.SENT else None,
    )  # fmt: skip
    if not refusal:
        Channel.objects.filter(pk=delivery.channel_id).update(
            last_status=DeliveryStatus.SENT if not error else DeliveryStatus.FAILED,
            last_error=error, last_attempt_at=done,
        )  # fmt: skip
    delivery.status, delivery.next_attempt_at, delivery.last_error = status, next_at, error
    logger.info(
        "delivery %s via channel %s: %s %s", delivery.pk, delivery.channel_id, status, error
    )
    return delivery


def send_ids(delivery_ids, now=None) -> dict:
    """Claim and send each of these deliveries that is due; count the outcomes. After a
    channel fails, its other rows wait for the next run (one dead robot must not hold
    the worker for a timeout per row)."""
    counts: dict[str, int] = {}
    failed_channels: set[int] = set()
    ids = list(delivery_ids)
    channel_of = dict(Delivery.objects.filter(pk__in=ids).values_list("pk", "channel_id"))
    for pk in ids:
        channel_id = channel_of.get(pk)
        if channel_id is None or channel_id in failed_channels:
            continue
        delivery = claim(pk, now)
        if delivery is None:
            continue
        delivery = send(delivery)
        counts[delivery.status] = counts.get(delivery.status, 0) + 1
        if delivery.status != DeliveryStatus.SENT:
            failed_channels.add(delivery.channel_id)
    return counts


def retry_due(now=None, *, limit: int = SWEEP_LIMIT) -> dict:
    """The periodic job: send every delivery that is due (first-time ones a lost
    enqueue left behind, retries whose back-off is over, rows of a dead worker)."""
    now = now or timezone.now()
    ids = list(
        Delivery.objects.due(now, lease=LEASE)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    return send_ids(ids, now)
