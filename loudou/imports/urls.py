from django.urls import path

from . import views

app_name = "imports"
urlpatterns = [
    path("", views.imports, name="imports"),
    path("<int:job_id>/", views.job, name="job"),
    path("<int:job_id>/mapping/", views.mapping, name="mapping"),
    path("<int:job_id>/run/", views.run, name="run"),
    path("<int:job_id>/undo/", views.undo_view, name="undo"),
]
