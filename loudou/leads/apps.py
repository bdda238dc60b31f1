from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LeadsConfig(AppConfig):
    name = "loudou.leads"
    label = "leads"
    verbose_name = _("Leads and public pools")

    def ready(self):
        from loudou.core import schedule

        # Recycle rules count in days; hourly is timely enough and cheap.
        schedule.register(
            "leads.sweep_pools", interval=timedelta(hours=1), task="loudou.leads.tasks.sweep_pools"
        )
