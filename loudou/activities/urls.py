from django.urls import path

from . import views

app_name = "activities"
urlpatterns = [
    path("", views.activity_list, name="activities"),
    path("<int:pk>/", views.activity_edit, name="activity"),
    path("<int:pk>/delete/", views.activity_delete, name="delete"),
    path("visits/", views.visit_list, name="visits"),
    path("log/<str:subject_type>/<int:pk>/", views.log, name="log"),
]
