from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TasksConfig(AppConfig):
    name = "loudou.tasks"
    label = "tasks"
    verbose_name = _("Tasks and calendar")

    def ready(self):
        from loudou.core import hooks, schedule

        from . import services

        # A reminder is for a minute; the job is one indexed query when nothing is due.
        schedule.register(
            "tasks.send_reminders",
            interval=timedelta(minutes=1),
            task="loudou.tasks.tasks.send_reminders",
        )
        hooks.on("handed_over", services.hand_over_assignments)
