from django.urls import path

from . import views

app_name = "targets"
urlpatterns = [
    path("", views.placeholder, name="targets"),
    path("performance/", views.placeholder, name="performance"),
]
