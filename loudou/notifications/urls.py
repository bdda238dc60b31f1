from django.urls import path

from . import views

app_name = "notifications"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("menu/", views.menu, name="menu"),
    path("channels/", views.channels, name="channels"),
    path("channels/email/", views.email_preference, name="email"),
    path("channels/email/test/", views.channel_test, name="email-test"),
    path("channels/new/", views.webhook_new, name="webhook-new"),
    path("channels/<int:pk>/edit/", views.webhook_edit, name="webhook-edit"),
    path("channels/<int:pk>/delete/", views.webhook_delete, name="webhook-delete"),
    path("channels/<int:pk>/test/", views.channel_test, name="webhook-test"),
    path("deliveries/<int:pk>/", views.delivery_status, name="delivery"),
    path("read-all/", views.mark_all_read, name="read-all"),
    path("<int:pk>/", views.open_notification, name="open"),
    path("<int:pk>/read/", views.mark_read, name="read"),
]
