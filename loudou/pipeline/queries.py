"""Read-side queries of the pipeline pages and API: totals are computed by the database."""

from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Case, Count, Sum, When

from loudou.core.db import Cents

from .choices import Status
from .models import Opportunity

CENT = Decimal("0.01")


def open_in_pipeline(user, pipeline):
    """The open opportunities of ``pipeline`` that ``user`` may see."""
    return Opportunity.objects.visible_to(user).filter(pipeline=pipeline, status=Status.OPEN)


def stage_totals(qs) -> dict[int, dict]:
    """Count, amount and weighted amount per stage, exact to the cent.

    The database groups by stage and probability and sums whole cents; the few rows that
    come back (stages × distinct probabilities) are weighted here in Decimal. So SQLite,
    which stores decimals as floats, gives the same cents as PostgreSQL.
    """
    rows = (
        qs.order_by()
        .values("stage_id", "probability")
        .annotate(n=Count("pk"), cents=Sum(Cents("amount")))
    )
    totals: dict[int, dict] = {}
    for row in rows:
        total = totals.setdefault(
            row["stage_id"], {"count": 0, "amount": Decimal(0), "weighted": Decimal(0)}
        )
        amount = Decimal(row["cents"] or 0) / 100
        total["count"] += row["n"]
        total["amount"] += amount
        total["weighted"] += amount * Decimal(row["probability"]) / 100
    for total in totals.values():
        total["amount"] = total["amount"].quantize(CENT)
        total["weighted"] = total["weighted"].quantize(CENT, rounding=ROUND_HALF_UP)
    return totals


def opportunities_of_account(user, account):
    """The account's opportunities the user may see, open first, for the customer 360."""
    return (
        Opportunity.objects.visible_to(user)
        .filter(account=account)
        .select_related("stage", "owner", "pipeline")
        .order_by(Case(When(status=Status.OPEN, then=0), default=1), "-updated_at")
    )
