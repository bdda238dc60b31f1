from django.urls import path

from . import views

app_name = "sales"
urlpatterns = [
    path("", views.placeholder, name="contracts"),
    path("<int:pk>/", views.placeholder, name="contract"),
    path("quotes/", views.placeholder, name="quotes"),
    path("quotes/<int:pk>/", views.placeholder, name="quote"),
    path("receivables/", views.placeholder, name="receivables"),
]
