from django.contrib import admin

from .models import (
    Contract,
    ContractLine,
    Invoice,
    Payment,
    PaymentPlan,
    Quote,
    QuoteLine,
    Shipment,
)


class ContractLineInline(admin.TabularInline):
    model = ContractLine
    extra = 0


class PaymentPlanInline(admin.TabularInline):
    model = PaymentPlan
    extra = 0
    readonly_fields = ["covered"]


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    readonly_fields = ["amount", "paid_on", "method", "plan", "reference", "recorded_by"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # payments go through the service (locks, kept figures, idempotency)


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "kind",
        "title",
        "account",
        "owner",
        "sign_date",
        "status",
        "amount",
        "received",
        "next_due_date",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["number", "title", "account__name"]
    date_hierarchy = "sign_date"
    raw_id_fields = ["account", "opportunity", "owner", "created_by"]
    readonly_fields = ["number", "received", "next_due_date", "version"]
    inlines = [ContractLineInline, PaymentPlanInline, PaymentInline]


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["contract", "amount", "paid_on", "method", "reference", "recorded_by"]
    list_filter = ["method"]
    search_fields = ["contract__number", "reference"]
    raw_id_fields = ["contract", "plan", "recorded_by"]

    def has_change_permission(self, request, obj=None):
        return False  # corrections are refunds or a deletion through the service

    def has_add_permission(self, request):
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ["number", "contract", "issued_on", "amount", "status"]
    list_filter = ["status"]
    raw_id_fields = ["contract"]


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin):
    list_display = ["number", "contract", "shipped_on", "status"]
    list_filter = ["status"]
    raw_id_fields = ["contract"]


class QuoteLineInline(admin.TabularInline):
    model = QuoteLine
    extra = 0


@admin.register(Quote)
class QuoteAdmin(admin.ModelAdmin):
    list_display = ["number", "title", "account", "owner", "quote_date", "status", "amount"]
    list_filter = ["status"]
    search_fields = ["number", "title", "account__name"]
    raw_id_fields = ["account", "opportunity", "owner", "created_by"]
    readonly_fields = ["number", "contract", "version"]
    inlines = [QuoteLineInline]
