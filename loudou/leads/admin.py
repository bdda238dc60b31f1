from django.contrib import admin

from .models import AssignmentRule, Lead, MergeRecord, PoolEvent, PublicPool, RecycleRule


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = ["name", "company", "owner", "pool", "status", "source", "created_at"]
    list_filter = ["status", "pool", "source"]
    search_fields = ["name", "company", "mobile", "email"]
    raw_id_fields = ["owner", "last_owner", "released_by", "created_by", "converted_account",
                     "converted_contact", "converted_opportunity"]  # fmt: skip


@admin.register(PublicPool)
class PublicPoolAdmin(admin.ModelAdmin):
    list_display = ["name", "daily_claim_limit", "max_owned", "reclaim_block_days", "is_active"]
    filter_horizontal = ["regions", "teams"]


@admin.register(AssignmentRule)
class AssignmentRuleAdmin(admin.ModelAdmin):
    list_display = ["position", "name", "active", "method", "region", "industry", "source"]
    list_display_links = ["name"]
    filter_horizontal = ["reps"]


@admin.register(PoolEvent)
class PoolEventAdmin(admin.ModelAdmin):
    list_display = ["lead", "account", "kind", "pool", "by", "owner", "at"]
    raw_id_fields = ["lead", "account", "by", "owner"]
    list_filter = ["kind"]

    def has_change_permission(self, request, obj=None):
        return False  # history is append-only


@admin.register(RecycleRule)
class RecycleRuleAdmin(admin.ModelAdmin):
    list_display = ["position", "name", "active", "applies_to", "kind", "days", "grade",
                    "product_interest", "warn_days_before", "pool"]  # fmt: skip
    list_display_links = ["name"]
    list_filter = ["applies_to", "kind", "grade", "pool", "active"]


@admin.register(MergeRecord)
class MergeRecordAdmin(admin.ModelAdmin):
    list_display = ["model", "kept_id", "merged_id", "by", "at"]
    list_filter = ["model"]

    def has_change_permission(self, request, obj=None):
        return False  # history is append-only
