"""Factories for the sales tests and benchmarks (not used by the application)."""

from datetime import date, datetime, time
from decimal import Decimal

from django.utils import timezone

from loudou.customers.services import create_account
from loudou.pipeline import services as pipeline_services
from loudou.pipeline.models import Pipeline

from . import services


def pipeline() -> Pipeline:
    """The D/C/B/A pipeline, advisory so that a test can win a deal in one step."""
    found = Pipeline.objects.filter(template="dcba").first()
    return found or pipeline_services.create_pipeline_from_template(
        "dcba", checklist_mode="advisory"
    )


def account(owner, name="星辰科技"):
    return create_account(actor=owner, name=name)


def opportunity(owner, *, amount="100000", won_on: date | None = None, acct=None, name="Deal",
                product_line=None, lost=False):  # fmt: skip
    """An opportunity of ``owner``; won at local noon of ``won_on`` when given."""
    opp = pipeline_services.create_opportunity(
        actor=owner, pipeline=pipeline(), name=name, account=acct or account(owner),
        amount=Decimal(amount), product_line=product_line,
    )  # fmt: skip
    if won_on is not None:
        when = datetime.combine(won_on, time(12), tzinfo=timezone.get_current_timezone())
        opp = pipeline_services.win_opportunity(opp, actor=owner, when=when)
    elif lost:
        pipeline_services.ensure_lost_reasons()
        from loudou.pipeline.models import LostReason

        opp = pipeline_services.lose_opportunity(opp, LostReason.objects.first(), actor=owner)
    return opp


def contract(owner, *, amount="100000", sign_date=date(2026, 1, 15), plans=(), acct=None):
    """A contract of a won opportunity of ``owner``."""
    opp = opportunity(owner, amount=amount, won_on=sign_date, acct=acct)
    return services.create_contract_from_opportunity(opp, actor=owner, plans=plans)


def order(owner, *, amount="5000", sign_date=date(2026, 1, 15), acct=None, product_line=None):
    return services.create_order(
        actor=owner, account=acct or account(owner, "小单客户"), title="Order",
        amount=Decimal(amount), sign_date=sign_date, product_line=product_line,
    )  # fmt: skip
