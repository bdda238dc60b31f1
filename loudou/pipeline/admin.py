from django.contrib import admin
from django.db import transaction

from . import summaries
from .models import LostReason, Opportunity, Pipeline, ProductLine, Stage, StageChange


class StageInline(admin.TabularInline):
    model = Stage
    extra = 0
    fields = ["position", "name", "name_en", "code", "kind", "default_probability",
              "stale_after_days", "is_archived"]  # fmt: skip


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    list_display = ["name", "name_en", "template", "product_line", "checklist_mode", "is_archived"]
    inlines = [StageInline]


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "owner", "pipeline", "stage", "status", "amount"]
    list_filter = ["status", "pipeline"]
    search_fields = ["name", "account__name"]
    raw_id_fields = ["account", "owner", "created_by", "contacts", "shared_with"]
    readonly_fields = ["stage", "furthest_stage", "status", "probability_manual", "closed_at"]

    @transaction.atomic
    def save_model(self, request, obj, form, change):
        """The admin writes past the services: its edit (amount, owner …) is carried
        into the maintained summaries too (a deletion is, by the pre_delete receiver)."""
        old = Opportunity.objects.select_for_update().filter(pk=obj.pk).first()
        super().save_model(request, obj, form, change)
        summaries.apply(old and summaries.snapshot(old), summaries.snapshot(obj))


@admin.register(StageChange)
class StageChangeAdmin(admin.ModelAdmin):
    """Read-only: the history is append-only."""

    list_display = ["opportunity", "kind", "from_stage", "to_stage", "changed_at", "changed_by"]
    list_filter = ["kind"]
    raw_id_fields = ["opportunity"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(ProductLine)
admin.site.register(LostReason)
