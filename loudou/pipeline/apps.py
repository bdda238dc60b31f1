from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PipelineConfig(AppConfig):
    name = "loudou.pipeline"
    label = "pipeline"
    verbose_name = _("Pipelines and opportunities")

    def ready(self):
        from django.db.models.signals import pre_delete

        from loudou.core import hooks

        from . import summaries

        # deals that change hands in bulk move between the owners' funnel counts
        hooks.on("handed_over", summaries.on_handed_over)
        # deleted deals (one, or an import's undo) leave the summaries with their rows
        pre_delete.connect(
            summaries.on_opportunity_deleted,
            sender="pipeline.Opportunity",
            dispatch_uid="pipeline-summaries-delete",
        )
