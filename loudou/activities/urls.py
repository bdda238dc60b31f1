from django.urls import path

from . import views
from .visits import views as visit_views

app_name = "activities"
urlpatterns = [
    path("", views.activity_list, name="activities"),
    path("<int:pk>/", views.activity_edit, name="activity"),
    path("<int:pk>/delete/", views.activity_delete, name="delete"),
    path("visits/", visit_views.visit_list, name="visits"),
    path("visits/plan/", visit_views.visit_plan, name="visit-plan"),
    path("visits/<int:pk>/", visit_views.visit_detail, name="visit"),
    path("visits/<int:pk>/check-in/", visit_views.visit_check_in, name="visit-check-in"),
    path("visits/<int:pk>/record/", visit_views.visit_record, name="visit-record"),
    path("visits/<int:pk>/reschedule/", visit_views.visit_reschedule, name="visit-reschedule"),
    path("visits/<int:pk>/cancel/", visit_views.visit_cancel, name="visit-cancel"),
    path("log/<str:subject_type>/<int:pk>/", views.log, name="log"),
]
