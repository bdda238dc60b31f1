"""The sales panels shown on other apps' pages (customer 360, opportunity)."""

from django import template
from django.utils import timezone

from loudou.pipeline.choices import Status as OpportunityStatus

from .. import queries
from ..models import Contract, Invoice, Payment, Quote

register = template.Library()
PANEL_ROWS = 10


@register.inclusion_tag("sales/_account_panel_body.html", takes_context=True)
def account_sales(context, account):
    """Contracts, payments, receivable, overdue and invoices of one account, as far as the
    user may see them."""
    user = context["request"].user
    contracts = Contract.objects.visible_to(user).filter(account=account)
    visible = contracts.values("pk")
    return {
        "account": account,
        "today": timezone.localdate(),
        "contracts": list(
            contracts.select_related("owner").order_by("-sign_date", "-pk")[:PANEL_ROWS]
        ),
        "summary": queries.account_summary(contracts),
        "payments": list(
            Payment.objects.filter(contract__in=visible)
            .select_related("contract")
            .order_by("-paid_on", "-pk")[:PANEL_ROWS]
        ),
        "invoices": list(
            Invoice.objects.filter(contract__in=visible)
            .select_related("contract")
            .order_by("-issued_on", "-pk")[:PANEL_ROWS]
        ),
        "quotes": list(
            Quote.objects.visible_to(user)
            .filter(account=account)
            .order_by("-quote_date", "-pk")[:5]
        ),
    }


@register.inclusion_tag("sales/_opportunity_panel_body.html", takes_context=True)
def opportunity_sales(context, opp):
    """The opportunity's contracts and quotes; a "create contract" button once it is won."""
    user = context["request"].user
    return {
        "opp": opp,
        "today": timezone.localdate(),
        "contracts": list(Contract.objects.visible_to(user).filter(opportunity=opp)),
        "quotes": list(Quote.objects.visible_to(user).filter(opportunity=opp)[:5]),
        "can_contract": opp.status == OpportunityStatus.WON and user.is_active,
    }
