from django.urls import path

from . import views

app_name = "rules"
urlpatterns = [
    path("", views.rule_list, name="rules"),
    path("new/", views.rule_create, name="rule-create"),
    path("<int:pk>/", views.rule_detail, name="rule"),
    path("<int:pk>/active/", views.rule_active, name="rule-active"),
    path("sweep/", views.sweep_now, name="sweep"),
    path("working-time/", views.working_time, name="working-time"),
    path("working-time/<int:pk>/delete/", views.holiday_delete, name="holiday-delete"),
    path("breaches/", views.breach_list, name="breaches"),
]
