from django.urls import path

from . import views

app_name = "customers"
urlpatterns = [
    path("", views.account_list, name="accounts"),
    path("new/", views.account_create, name="account-create"),
    path("<int:pk>/", views.account_detail, name="account"),
    path("<int:pk>/edit/", views.account_edit, name="account-edit"),
    path("<int:pk>/contacts/new/", views.contact_create, name="contact-create"),
    path("contacts/", views.contact_list, name="contacts"),
    path("contacts/<int:pk>/", views.contact_detail, name="contact"),
    path("contacts/<int:pk>/edit/", views.contact_edit, name="contact-edit"),
]
