from django.urls import path

from . import views

app_name = "worklist"
urlpatterns = [
    path("", views.today, name="today"),
    path("tasks/<int:pk>/done/", views.task_done, name="task-done"),
    path("log/<str:subject_type>/<int:pk>/", views.log, name="log"),
    path("prospecting/", views.prospecting, name="prospecting"),
    path("plan/<str:day>/review/", views.plan_review, name="plan-review"),
    path("plan/<str:day>/items/", views.plan_add, name="plan-add"),
    path("plan/<str:day>/carry/", views.plan_carry, name="plan-carry"),
    path("plan/items/<int:pk>/", views.plan_item, name="plan-item"),
    path("plan/items/<int:pk>/delete/", views.plan_item_delete, name="plan-item-delete"),
]
