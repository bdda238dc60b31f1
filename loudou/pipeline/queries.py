"""Read-side queries of the pipeline pages and API: totals are computed by the database."""

from decimal import Decimal

from django.db.models import Case, Count, DecimalField, ExpressionWrapper, F, Sum, When

from .choices import Status
from .models import Opportunity

WEIGHTED = ExpressionWrapper(
    F("amount") * F("probability") / 100, output_field=DecimalField(max_digits=20, decimal_places=4)
)
CENT = Decimal("0.01")


def open_in_pipeline(user, pipeline):
    """The open opportunities of ``pipeline`` that ``user`` may see."""
    return Opportunity.objects.visible_to(user).filter(pipeline=pipeline, status=Status.OPEN)


def stage_totals(qs) -> dict[int, dict]:
    """Count, amount and weighted amount per stage, in one GROUP BY query."""
    rows = (
        qs.order_by()
        .values("stage_id")
        .annotate(n=Count("pk"), sum_amount=Sum("amount"), sum_weighted=Sum(WEIGHTED))
    )
    totals = {}
    for row in rows:
        totals[row["stage_id"]] = {
            "count": row["n"],
            "amount": Decimal(row["sum_amount"] or 0).quantize(CENT),
            "weighted": Decimal(row["sum_weighted"] or 0).quantize(CENT),
        }
    return totals


def opportunities_of_account(user, account):
    """The account's opportunities the user may see, open first, for the customer 360."""
    return (
        Opportunity.objects.visible_to(user)
        .filter(account=account)
        .select_related("stage", "owner", "pipeline")
        .order_by(Case(When(status=Status.OPEN, then=0), default=1), "-updated_at")
    )
