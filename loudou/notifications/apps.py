from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "loudou.notifications"
    label = "notifications"
    verbose_name = _("Notifications")

    def ready(self):
        from loudou.core import schedule

        from . import channels, delivery

        channels.register_channel(delivery.hand_off)
        # Retries wait at least a minute (LOUDOU_NOTIFY_RETRY_SECONDS); a sweep per
        # minute also sends what a lost enqueue left behind.
        schedule.register(
            "notifications.retry_deliveries",
            interval=timedelta(minutes=1),
            task="loudou.notifications.tasks.retry_deliveries",
        )
