"""Read-side queries of contracts, payments and receivables, for the sales pages and for
other apps (targets, analytics, worklists). Totals are computed by the database (GROUP BY
on whole cents, :class:`loudou.core.db.Cents`), never by a Python loop over rows, so
SQLite and PostgreSQL give the same exact Decimal.

Periods are local dates ``[start, end)`` (``end`` exclusive) in the company's time zone.
``owners`` is an iterable of user ids, a User queryset, or None for everyone.
"""

from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from loudou.analytics.periods import local_midnight
from loudou.core.db import Cents
from loudou.pipeline.choices import Status as OpportunityStatus
from loudou.pipeline.models import Opportunity

from .choices import SIGNED_STATUSES, ContractKind
from .models import NO_DUE_DATE, Contract, Payment, PaymentPlan

CENT = Decimal("0.01")
BASES = ("signed", "collected")
# Ageing buckets of overdue amounts: (key, first day overdue, last day overdue or None).
AGEING_BUCKETS = (("0-30", 1, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("90+", 91, None))


def cents_to_decimal(cents) -> Decimal:
    return (Decimal(cents or 0) / 100).quantize(CENT)


def _by_owners(qs, owners, field="owner"):
    if owners is None:
        return qs
    if isinstance(owners, QuerySet):
        return qs.filter(**{f"{field}_id__in": owners.values("pk")})
    return qs.filter(**{f"{field}_id__in": [getattr(o, "pk", o) for o in owners]})


def _sum_by(qs, key: str, column: str = "amount") -> dict[int, Decimal]:
    rows = qs.order_by().values(key).annotate(cents=Sum(Cents(column)))
    return {row[key]: cents_to_decimal(row["cents"]) for row in rows if row[key] is not None}


def _add(*parts: dict) -> dict[int, Decimal]:
    total: dict[int, Decimal] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, Decimal("0.00")) + value
    return total


# --- completed revenue ------------------------------------------------------------------
# Each source of completed revenue is defined once (what counts, the date it counts on,
# whose it is) and summed either per owner over one period or per period over owners.


def _won(product_line=None):
    """Won opportunities (counted on ``closed_at``, an instant)."""
    qs = Opportunity.objects.filter(status=OpportunityStatus.WON)
    return qs if product_line is None else qs.filter(product_line=product_line)


def _orders(product_line=None):
    """Out-of-funnel orders, active or completed (counted on ``sign_date``)."""
    qs = Contract.objects.filter(kind=ContractKind.ORDER, status__in=SIGNED_STATUSES)
    return qs if product_line is None else qs.filter(product_line=product_line)


def _payments(product_line=None):
    """Payments, refunds negative (counted on ``paid_on``, owned by the contract's owner)."""
    qs = Payment.objects.all()
    return qs if product_line is None else qs.filter(contract__product_line=product_line)


def out_of_funnel_by_owner(start, end, *, owners=None, product_line=None) -> dict[int, Decimal]:
    """Σ out-of-funnel orders (kind ``order``, active or completed) signed in
    ``[start, end)``, per owner."""
    qs = _orders(product_line).filter(sign_date__gte=start, sign_date__lt=end)
    return _sum_by(_by_owners(qs, owners), "owner_id")


def won_by_owner(start, end, *, owners=None, product_line=None) -> dict[int, Decimal]:
    """Σ amount of the opportunities won in ``[start, end)`` (local days), per owner."""
    qs = _won(product_line).filter(
        closed_at__gte=local_midnight(start), closed_at__lt=local_midnight(end)
    )
    return _sum_by(_by_owners(qs, owners), "owner_id")


def signed_by_owner(start, end, *, owners=None, product_line=None) -> dict[int, Decimal]:
    """Completed revenue on the signed basis (DOMAIN §8): won deals closed in the period
    plus out-of-funnel orders signed in it. Contracts of won opportunities are not added
    again: the won deal already counts."""
    return _add(
        won_by_owner(start, end, owners=owners, product_line=product_line),
        out_of_funnel_by_owner(start, end, owners=owners, product_line=product_line),
    )


def collected_by_owner(start, end, *, owners=None, product_line=None) -> dict[int, Decimal]:
    """Σ payments (refunds negative) received in ``[start, end)``, per contract owner."""
    qs = _payments(product_line).filter(paid_on__gte=start, paid_on__lt=end)
    return _sum_by(_by_owners(qs, owners, "contract__owner"), "contract__owner_id")


def completed_by_owner(
    start, end, *, basis=None, owners=None, product_line=None
) -> dict[int, Decimal]:
    """Completed revenue per owner on ``basis`` ("signed" or "collected"; default the
    ``LOUDOU_COMPLETED_BASIS`` setting)."""
    basis = basis or settings.LOUDOU_COMPLETED_BASIS
    if basis == "signed":
        return signed_by_owner(start, end, owners=owners, product_line=product_line)
    if basis == "collected":
        return collected_by_owner(start, end, owners=owners, product_line=product_line)
    raise ValueError(f"unknown basis {basis!r}; use one of {BASES}")


# --- completed revenue per period (one query per source, not one per period) -------------


def period_case(field: str, bounds) -> Case:
    """The index of the period ``field`` falls in, for ascending ``bounds`` [b0, b1, …,
    bn] (period i = [b_i, b_i+1)): a CASE over plain comparisons, so the database never
    converts a time zone per row and one GROUP BY answers every period. Rows outside
    [b0, bn) must be filtered out by the caller."""
    whens = [When(**{f"{field}__lt": upper}, then=Value(i)) for i, upper in enumerate(bounds[1:])]
    return Case(*whens, default=Value(None), output_field=BigIntegerField())


def _sum_by_period(qs, field: str, bounds, column: str = "amount") -> dict[int, Decimal]:
    rows = (
        qs.filter(**{f"{field}__gte": bounds[0], f"{field}__lt": bounds[-1]})
        .order_by()
        .annotate(period=period_case(field, bounds))
        .values("period")
        .annotate(cents=Sum(Cents(column)))
    )
    return {row["period"]: cents_to_decimal(row["cents"]) for row in rows}


def signed_by_period(days, *, owners=None, product_line=None) -> dict[int, Decimal]:
    """:func:`signed_by_owner` summed over ``owners`` for each period between the
    consecutive local dates of ``days`` ([d0, d1), [d1, d2), …): {period index: total},
    periods without revenue absent. Two queries whatever the number of periods. Like the
    per-owner figures, rows without an owner are left out."""
    days = list(days)
    won = _won(product_line).filter(owner__isnull=False)
    orders = _orders(product_line).filter(owner__isnull=False)
    return _add(
        _sum_by_period(_by_owners(won, owners), "closed_at", [local_midnight(d) for d in days]),
        _sum_by_period(_by_owners(orders, owners), "sign_date", days),
    )


def collected_by_period(days, *, owners=None, product_line=None) -> dict[int, Decimal]:
    """:func:`collected_by_owner` summed over ``owners`` for each period between the
    consecutive local dates of ``days``: {period index: total}. One query. Payments of
    contracts without an owner are left out, as in the per-owner figures."""
    qs = _payments(product_line).filter(contract__owner__isnull=False)
    return _sum_by_period(_by_owners(qs, owners, "contract__owner"), "paid_on", list(days))


# --- receivables ------------------------------------------------------------------------


def receivables(qs=None):
    """Signed contracts that still owe money or hold a credit, annotated with
    ``receivable_amount``; overdue first (oldest due date first), then by sign date.
    ``qs`` is a contract queryset already scoped with ``visible_to``."""
    qs = Contract.objects.all() if qs is None else qs
    return (
        qs.signed()
        .exclude(amount=F("received"))
        .with_receivable()
        .order_by(NO_DUE_DATE.asc(), "next_due_date", "-sign_date", "-pk")
    )  # = next_due_date NULLS LAST, in the order of the contract_owing_idx index


def with_overdue(qs, today=None):
    """Annotate ``overdue_cents`` (read it as ``contract.overdue_amount``): Σ of the
    uncovered part of the contract's plan lines due before ``today``, in whole cents.
    Meant for one page of rows (a correlated subquery each)."""
    today = today or timezone.localdate()
    per_contract = (
        PaymentPlan.objects.filter(contract=OuterRef("pk"), due_date__lt=today)
        .order_by()
        .values("contract")
        .annotate(total=Sum(Cents("amount")) - Sum(Cents("covered")))
        .values("total")
    )
    return qs.annotate(
        overdue_cents=Coalesce(Subquery(per_contract, output_field=BigIntegerField()), Value(0))
    )


def overdue_plans(qs=None, today=None):
    """Plan lines past their due date and not fully covered, of signed contracts in
    ``qs``; oldest first."""
    today = today or timezone.localdate()
    contracts = Contract.objects.all() if qs is None else qs
    return (
        PaymentPlan.objects.filter(
            contract__in=contracts.signed().values("pk"),
            due_date__lt=today,
            covered__lt=F("amount"),
        )
        .select_related("contract", "contract__account", "contract__owner")
        .order_by("due_date", "pk")
    )


def _bucket_case(today: date):
    whens = []
    for key, first, last in AGEING_BUCKETS:
        condition = Q(due_date__lte=today - timedelta(days=first))
        if last is not None:
            condition &= Q(due_date__gte=today - timedelta(days=last))
        whens.append(When(condition, then=Value(key)))
    return Case(*whens, default=Value(""), output_field=CharField())


def receivable_totals(qs=None, today=None) -> dict:
    """Totals of the receivables of ``qs`` (scoped contracts): owed (positive
    receivables), credit (over-payments, negative), net, overdue, and the overdue amount
    per ageing bucket (days past the plan line's due date)."""
    today = today or timezone.localdate()
    contracts = (Contract.objects.all() if qs is None else qs).signed()
    # Only the contracts still owing or in credit add to owed, credit and count: read
    # from the partial index of those (contract_owing_idx), each receivable rounded to
    # cents once (amount and received have two decimals, so this equals the difference
    # of their cents). The overdue count reads the (status, next_due_date) index.
    receivable = Cents(F("amount") - F("received"))
    row = (
        contracts.exclude(amount=F("received"))
        .order_by()
        .aggregate(
            owed=Sum(receivable, filter=Q(amount__gt=F("received"))),
            credit=Sum(receivable, filter=Q(amount__lt=F("received"))),
            count=Count("pk"),
        )
    )
    row["overdue_count"] = contracts.filter(next_due_date__lt=today).order_by().count()
    buckets = {key: Decimal("0.00") for key, _first, _last in AGEING_BUCKETS}
    rows = (
        overdue_plans(contracts, today)
        .select_related(None)
        .annotate(bucket=_bucket_case(today))
        .order_by()
        .values("bucket")
        .annotate(amount_cents=Sum(Cents("amount")), covered_cents=Sum(Cents("covered")))
    )
    for r in rows:
        cents = (r["amount_cents"] or 0) - (r["covered_cents"] or 0)
        buckets[r["bucket"]] = cents_to_decimal(cents)
    owed = cents_to_decimal(row["owed"])
    credit = cents_to_decimal(row["credit"])
    return {
        "owed": owed,
        "credit": credit,
        "net": owed + credit,
        "count": row["count"],
        "overdue": sum(buckets.values(), Decimal("0.00")),
        "overdue_count": row["overdue_count"],
        "buckets": buckets,
    }


def account_summary(qs) -> dict:
    """Figures of one account's visible contracts (``qs``) for the customer 360: signed
    amount, received, receivable and overdue."""
    signed = (
        qs.signed()
        .order_by()
        .aggregate(n=Count("pk"), amount=Sum(Cents("amount")), received=Sum(Cents("received")))
    )
    totals = receivable_totals(qs)
    amount, received = cents_to_decimal(signed["amount"]), cents_to_decimal(signed["received"])
    return {
        "count": signed["n"],
        "amount": amount,
        "received": received,
        "receivable": amount - received,
        "overdue": totals["overdue"],
    }
