from django.urls import path

from . import views

app_name = "sales"
urlpatterns = [
    path("", views.contract_list, name="contracts"),
    path("new-order/", views.order_create, name="order-create"),
    path("from-opportunity/<int:opportunity_id>/", views.contract_create, name="contract-create"),
    path("<int:pk>/", views.contract_detail, name="contract"),
    path("<int:pk>/edit/", views.contract_edit, name="contract-edit"),
    path("<int:pk>/cancel/", views.contract_cancel, name="contract-cancel"),
    path("<int:pk>/payments/", views.payment_create, name="payment-create"),
    path("<int:pk>/payments/<int:payment_id>/delete/", views.payment_delete, name="payment-delete"),
    path("<int:pk>/plans/", views.plan_add, name="plan-add"),
    path("<int:pk>/plans/<int:plan_id>/delete/", views.plan_delete, name="plan-delete"),
    path("<int:pk>/invoices/", views.invoice_add, name="invoice-add"),
    path("<int:pk>/invoices/<int:invoice_id>/cancel/", views.invoice_cancel, name="invoice-cancel"),
    path("<int:pk>/shipments/", views.shipment_add, name="shipment-add"),
    path(
        "<int:pk>/shipments/<int:shipment_id>/status/",
        views.shipment_status,
        name="shipment-status",
    ),  # fmt: skip
    path("receivables/", views.receivables, name="receivables"),
    path("quotes/", views.quote_list, name="quotes"),
    path("quotes/new/", views.quote_create, name="quote-create"),
    path("quotes/<int:pk>/", views.quote_detail, name="quote"),
    path("quotes/<int:pk>/edit/", views.quote_edit, name="quote-edit"),
    path("quotes/<int:pk>/<str:action>/", views.quote_action, name="quote-action"),
]
