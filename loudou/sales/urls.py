from django.urls import path

from . import views

app_name = "sales"
urlpatterns = [
    path("", views.placeholder, name="contracts"),
    path("quotes/", views.placeholder, name="quotes"),
    path("receivables/", views.placeholder, name="receivables"),
]
