from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import ApiToken, Region, Team, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "name", "role", "team", "region", "level", "is_active", "left_on"]
    list_filter = ["role", "team", "region", "level", "is_active"]
    search_fields = ["username", "name", "email", "phone"]
    fieldsets = [
        *DjangoUserAdmin.fieldsets,
        (
            _("Sales profile"),
            {
                "fields": [
                    "name",
                    "role",
                    "team",
                    "region",
                    "level",
                    "phone",
                    "hire_date",
                    "left_on",
                    "language",
                ]
            },
        ),
    ]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "parent", "path"]
    search_fields = ["name"]


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "parent", "path"]
    search_fields = ["name", "code"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "name", "hint", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["key_hash", "hint", "created_at", "last_used_at"]
