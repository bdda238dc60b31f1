from django.contrib import admin

from .models import Account, Contact


class ContactInline(admin.TabularInline):
    model = Contact
    extra = 0
    fields = ["name", "title", "mobile", "email", "buying_role", "style"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "region", "industry", "grade", "updated_at"]
    list_filter = ["grade", "region", "segment"]
    search_fields = ["name", "phone"]
    raw_id_fields = ["owner", "created_by"]
    inlines = [ContactInline]

    def save_model(self, request, obj, form, change):
        """The admin writes past the account services: a region or industry edit moves
        the account's won deals in the breakdowns' won counts too."""
        from loudou.pipeline.summaries import accounts_moving

        with accounts_moving([obj.pk] if obj.pk else []):
            super().save_model(request, obj, form, change)


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "title", "mobile", "buying_role"]
    search_fields = ["name", "mobile", "email"]
    raw_id_fields = ["account"]
