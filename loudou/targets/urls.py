from django.urls import path

from . import views

app_name = "targets"
urlpatterns = [
    path("", views.targets, name="targets"),
    path("cell/", views.cell, name="cell"),
    path("year/", views.year_entry, name="year"),
    path("performance/", views.performance_page, name="performance"),
    path("standards/", views.standards, name="standards"),
    path("standards/<int:pk>/", views.standards, name="standard"),
    path("standards/<int:pk>/delete/", views.standard_delete, name="standard-delete"),
    path("dashboard/", views.dashboard, name="dashboard"),
]
