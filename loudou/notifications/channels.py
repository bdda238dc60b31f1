"""Delivery channels beyond the inbox (e-mail, chat webhooks: issue 6).

``notify`` always stores the in-app row; after the transaction commits it hands every
new notification to each registered channel. A channel is a callable
``channel(notification)``; it must not block the request for long (enqueue a task) and
its failure never undoes the notification. A channel with a true ``deliver_many``
attribute is called once with the whole list instead (a sweep's hundreds of summaries
cost it a few queries, not a few per notification).

The e-mail and webhook channels (delivery.hand_off) register themselves in
``NotificationsConfig.ready``.
"""

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

_channels: list[Callable] = []


def register_channel(channel: Callable) -> None:
    """Deliver every new notification through ``channel`` too; registering twice is
    harmless."""
    if channel not in _channels:
        _channels.append(channel)


def unregister_channel(channel: Callable) -> None:
    if channel in _channels:
        _channels.remove(channel)


def active() -> bool:
    """Whether any channel beyond the inbox is registered (else no delivery work at all)."""
    return bool(_channels)


def deliver(notifications) -> None:
    """Hand ``notifications`` to every channel; a failing channel is logged, not raised."""
    notifications = list(notifications)
    if not notifications:
        return
    for channel in list(_channels):
        if getattr(channel, "deliver_many", False):
            try:
                channel(notifications)
            except Exception:
                logger.exception("notification channel %r failed", channel)
            continue
        for notification in notifications:
            try:
                channel(notification)
            except Exception:
                logger.exception("notification channel %r failed", channel)
