"""The lead counts under concurrent writers (PostgreSQL, where two transactions really
run at once): a bulk move of leads and a deal service changing a converted lead's deal."""

import threading

import pytest
from django.db import connection, transaction

from loudou.customers.services import create_account
from loudou.leads import summaries
from loudou.leads.choices import LeadStatus
from loudou.leads.models import Lead, LeadDealCount
from loudou.leads.services import create_lead, hand_over_leads
from loudou.pipeline import services as pipeline_services

from .test_leads_race import threaded_db  # noqa: F401


def _deal_counts() -> dict:
    return {
        (r.owner_key, r.pool_key, r.source, r.pipeline_id, r.deal_status): (r.count, r.amount_cents)
        for r in LeadDealCount.objects.all()
        if r.count or r.amount_cents
    }


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_hand_over_and_a_win_of_the_converted_deal_at_once_keep_the_counts(
    threaded_db,  # noqa: F811
    org,
    monkeypatch,
):
    """A hand-over of a rep's leads reads the converted lead's deal (still open) and,
    before it writes, another connection wins that deal. The hand-over locked the lead
    first, so the win waits for it and then moves the count under the lead's new owner:
    LeadDealCount ends with exactly one won deal under the receiver — what a recount
    gives — instead of a won row left under the old owner and an open one under the new."""
    giver, receiver = org.east_rep, org.east_rep2
    pipeline = pipeline_services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    account = create_account(actor=giver, name="并发客户")
    deal = pipeline_services.create_opportunity(
        actor=giver, pipeline=pipeline, account=account, name="并发商机", amount=1000
    )
    lead, _dups = create_lead(actor=giver, name="并发线索", source="referral")
    Lead.objects.filter(pk=lead.pk).update(
        status=LeadStatus.CONVERTED, converted_opportunity=deal, converted_account=account
    )
    summaries.rebuild()
    key = (giver.pk, 0, "referral", pipeline.pk)
    assert _deal_counts() == {(*key, "open"): (1, 100000)}

    read, go = threading.Event(), threading.Event()
    mover = None
    original = summaries._deal_rows

    def pausing(leads, sign=1):
        rows = original(leads, sign)
        if threading.current_thread() is mover:
            read.set()
            go.wait(timeout=20)  # the win runs here, unless it waits for our lock
        return rows

    monkeypatch.setattr(summaries, "_deal_rows", pausing)
    errors = []

    def hand_over():
        try:
            with transaction.atomic():
                hand_over_leads(giver, to=receiver, by=org.admin)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def win():
        try:
            pipeline_services.win_opportunity(deal, actor=org.admin)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    mover = threading.Thread(target=hand_over)
    mover.start()
    assert read.wait(timeout=20)
    winner = threading.Thread(target=win)
    winner.start()
    winner.join(timeout=3)  # without the lock it finishes here, before the hand-over writes
    go.set()
    mover.join(timeout=30)
    winner.join(timeout=30)
    assert not errors, errors

    moved = (receiver.pk, 0, "referral", pipeline.pk, "won")
    assert _deal_counts() == {moved: (1, 100000)}
    summaries.rebuild()
    assert _deal_counts() == {moved: (1, 100000)}
