"""A probability set by hand is the rep's judgement: closing and reopening keep it."""

from decimal import Decimal

from loudou.customers.services import create_account
from loudou.pipeline import services
from loudou.pipeline.models import LostReason


def test_hand_set_probability_survives_lose_and_reopen(org):
    """Set to 35% by hand, lost, reopened: the deal is back at 35%, still marked manual;
    a deal following the stage default comes back at the default."""
    pipeline = services.create_pipeline_from_template("classic", checklist_mode="advisory")
    account = create_account(actor=org.east_rep, name="恒信")
    manual = services.create_opportunity(
        actor=org.east_rep, pipeline=pipeline, account=account, name="Manual", probability=35
    )
    default = services.create_opportunity(
        actor=org.east_rep, pipeline=pipeline, account=account, name="Default"
    )
    reason = LostReason.objects.first()
    for deal in (manual, default):
        deal = services.lose_opportunity(deal, reason, actor=org.east_rep)
        services.reopen_opportunity(deal, actor=org.east_rep)
    manual.refresh_from_db()
    default.refresh_from_db()
    assert (manual.probability, manual.probability_manual) == (Decimal("35.00"), True)
    assert (default.probability, default.probability_manual) == (Decimal("10.00"), False)


def test_default_lost_reasons_exist_without_the_demo(db):
    """A fresh database has the default lost reasons, so deals can be closed as lost."""
    assert list(LostReason.objects.values_list("name_en", flat=True)) == [
        "Price too high", "Chose a competitor", "No budget", "Need went away",
        "Could not reach them", "Product does not fit", "Other",
    ]  # fmt: skip
