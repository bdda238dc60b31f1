from django.contrib import admin
from django.urls import include, path, re_path

from loudou.api.router import api, unknown_endpoint

admin.site.site_header = "Loudou 漏斗"
admin.site.site_title = "Loudou"

urlpatterns = [
    path("", include("loudou.web.urls")),
    path("org/", include("loudou.org.urls")),
    path("customers/", include("loudou.customers.urls")),
    path("pipeline/", include("loudou.pipeline.urls")),
    path("leads/", include("loudou.leads.urls")),
    path("analytics/", include("loudou.analytics.urls")),
    path("activities/", include("loudou.activities.urls")),
    path("sales/", include("loudou.sales.urls")),
    path("targets/", include("loudou.targets.urls")),
    path("onboarding/", include("loudou.onboarding.urls")),
    path("notifications/", include("loudou.notifications.urls")),
    path("imports/", include("loudou.imports.urls")),
    path("tasks/", include("loudou.tasks.urls")),
    path("rules/", include("loudou.rules.urls")),
    path("today/", include("loudou.worklist.urls")),
    path("api/", api.urls),
    re_path(r"^api/(?P<path>.*)$", unknown_endpoint),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
