from django.urls import path

from . import views

app_name = "tasks"
urlpatterns = [
    path("", views.task_list, name="tasks"),
    path("calendar/", views.calendar, name="calendar"),
    path("<int:pk>/", views.task_detail, name="task"),
]
