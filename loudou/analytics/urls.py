from django.urls import path

from . import views

app_name = "analytics"
urlpatterns = [
    path("", views.funnel, name="funnel"),
    path("reps/", views.reps, name="reps"),
    path("forecast/", views.forecast, name="forecast"),
    path("reverse/", views.reverse, name="reverse"),
    path("leads/", views.leads, name="leads"),
    path("breakdown/", views.breakdown, name="breakdown"),
]
