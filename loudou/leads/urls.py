from django.urls import path

from . import views

app_name = "leads"
urlpatterns = [
    path("", views.lead_list, name="leads"),
    path("new/", views.lead_create, name="lead-create"),
    path("<int:pk>/", views.lead_detail, name="lead"),
    path("<int:pk>/edit/", views.lead_edit, name="lead-edit"),
    path("<int:pk>/claim/", views.lead_claim, name="lead-claim"),
    path("<int:pk>/release/", views.lead_release, name="lead-release"),
    path("<int:pk>/disqualify/", views.lead_disqualify, name="lead-disqualify"),
    path("<int:pk>/convert/", views.lead_convert, name="lead-convert"),
    path("pool/", views.pool_page, name="pool-default"),
    path("pool/<int:pk>/", views.pool_page, name="pool"),
    path("rules/", views.rules_page, name="rules"),
    path("due/", views.recycle_due, name="recycle-due"),
    path("merge/", views.merge_page, name="merge"),
    path("accounts/<int:pk>/claim/", views.account_claim, name="account-claim"),
    path("accounts/<int:pk>/release/", views.account_release, name="account-release"),
]
