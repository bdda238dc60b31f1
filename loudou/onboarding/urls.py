from django.urls import path

from . import views

app_name = "onboarding"
urlpatterns = [
    path("", views.roadmap, name="roadmap"),
    path("reps/<int:pk>/", views.rep_roadmap, name="rep"),
    path("card/", views.dashboard_card, name="dashboard-card"),
    path("bands/", views.bands_page, name="bands"),
    path("bands/new/", views.band_create, name="band-create"),
    path("bands/<int:pk>/", views.band_edit, name="band-edit"),
    path("bands/<int:pk>/delete/", views.band_delete, name="band-delete"),
    path("bands/<int:pk>/standards/", views.standard_create, name="standard-create"),
    path("standards/<int:pk>/", views.standard_edit, name="standard-edit"),
    path("standards/<int:pk>/delete/", views.standard_delete, name="standard-delete"),
]
