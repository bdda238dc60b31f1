from django.urls import path

from . import views

app_name = "notifications"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("menu/", views.menu, name="menu"),
    path("channels/", views.channels, name="channels"),
    path("read-all/", views.mark_all_read, name="read-all"),
    path("<int:pk>/", views.open_notification, name="open"),
    path("<int:pk>/read/", views.mark_read, name="read"),
]
