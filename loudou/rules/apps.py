from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RulesConfig(AppConfig):
    name = "loudou.rules"
    label = "rules"
    verbose_name = _("Follow-up rules")

    def ready(self):
        from loudou.core import hooks, schedule

        from . import services

        hooks.register_check("before_lose", services.check_before_lose)
        hooks.on("activity_logged", services.on_activity_logged)
        hooks.on("activity_changed", services.on_activity_changed)
        hooks.on("activity_deleted", services.on_activity_deleted)
        hooks.on("handed_over", services.on_handed_over)
        # "Within 5 hours" needs a clock finer than the hour; an incremental sweep only
        # reads what changed, so every five minutes is cheap.
        schedule.register(
            "rules.sweep", interval=timedelta(minutes=5), task="loudou.rules.tasks.sweep_rules"
        )
