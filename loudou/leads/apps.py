from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LeadsConfig(AppConfig):
    name = "loudou.leads"
    label = "leads"
    verbose_name = _("Leads and public pools")

    def ready(self):
        from django.db.models.signals import pre_delete

        from loudou.core import hooks, schedule

        from . import summaries

        # the lead counts (summaries.py): deleted leads and deals leave them with their
        # rows; a deal's change and a rebuild of the pipeline summaries reach them
        pre_delete.connect(summaries.on_lead_deleted, sender="leads.Lead",
                           dispatch_uid="leads-summaries-lead-delete")  # fmt: skip
        pre_delete.connect(summaries.on_deal_deleted, sender="pipeline.Opportunity",
                           dispatch_uid="leads-summaries-deal-delete")  # fmt: skip
        hooks.on("deal_summarised", summaries.on_deal_summarised)
        hooks.on("summaries_rebuilt", summaries.on_summaries_rebuilt)

        # Recycle rules count in days; hourly is timely enough and cheap.
        schedule.register(
            "leads.sweep_pools", interval=timedelta(hours=1), task="loudou.leads.tasks.sweep_pools"
        )
