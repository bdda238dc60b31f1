from django.urls import path

from . import page_exports, views

app_name = "imports"
urlpatterns = [
    path("", views.imports, name="imports"),
    path("<int:job_id>/", views.job, name="job"),
    path("<int:job_id>/mapping/", views.mapping, name="mapping"),
    path("<int:job_id>/run/", views.run, name="run"),
    path("<int:job_id>/undo/", views.undo_view, name="undo"),
    path("export/<slug:page>/", page_exports.export_page, name="export-page"),
]
