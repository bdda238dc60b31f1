from django.urls import path

from . import views

app_name = "activities"
urlpatterns = [
    path("", views.placeholder, name="activities"),
    path("<int:pk>/", views.placeholder, name="activity"),
]
