from django.urls import path

from . import views

app_name = "pipeline"
urlpatterns = [
    path("", views.board_default, name="board-default"),
    path("board/<int:pk>/", views.board, name="board"),
    path("board/<int:pk>/column/<int:stage_id>/", views.board_column, name="board-column"),
    path("opportunities/", views.opportunity_list, name="opportunities"),
    path("opportunities/new/", views.opportunity_create, name="opportunity-create"),
    path("opportunities/<int:pk>/", views.opportunity_detail, name="opportunity"),
    path("opportunities/<int:pk>/edit/", views.opportunity_edit, name="opportunity-edit"),
    path("opportunities/<int:pk>/move/", views.opportunity_move, name="opportunity-move"),
    path("opportunities/<int:pk>/won/", views.opportunity_win, name="opportunity-win"),
    path("opportunities/<int:pk>/lost/", views.opportunity_lose, name="opportunity-lose"),
    path("opportunities/<int:pk>/reopen/", views.opportunity_reopen, name="opportunity-reopen"),
    path("opportunities/<int:pk>/checklist/", views.opportunity_tick, name="opportunity-tick"),
    path("settings/", views.pipeline_settings, name="settings"),
    path("settings/new/", views.pipeline_create, name="pipeline-create"),
    path("settings/<int:pk>/", views.pipeline_edit, name="pipeline-edit"),
]
