from django.urls import path

from . import views

app_name = "org"
urlpatterns = [
    path("", views.people, name="people"),
    path("teams/<int:pk>/", views.team, name="team"),
    path("me/", views.profile, name="profile"),
    path("me/tokens/<int:pk>/revoke/", views.revoke_token, name="token-revoke"),
    path("handover/", views.handover, name="handover"),
    path("handover/<int:pk>/", views.handover_detail, name="handover-detail"),
]
