from django.urls import path

from . import views

app_name = "tasks"
urlpatterns = [
    path("", views.task_list, name="tasks"),
    path("new/", views.task_create, name="create"),
    path("calendar/", views.calendar, name="calendar"),
    path("feed/regenerate/", views.feed_regenerate, name="feed-regenerate"),
    path("feed/<str:token>.ics", views.feed, name="feed"),
    path("<int:pk>/", views.task_detail, name="task"),
    path("<int:pk>/done/", views.task_complete, name="complete"),
    path("<int:pk>/reopen/", views.task_reopen, name="reopen"),
    path("<int:pk>/delete/", views.task_delete, name="delete"),
    path("panel/<str:subject_type>/<int:pk>/", views.panel, name="panel"),
]
