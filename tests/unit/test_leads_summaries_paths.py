"""The lead counts (loudou/leads/summaries.py) through the bulk paths: the recycle sweep,
a lead import (new rows and updated sources) and its undo, and the test-data generator
(whose leads are counted, converted into their owner's deals, and the same for a seed)."""

import csv
import io

from django.core.management import call_command
from django.db import transaction

from loudou.imports.services import create_job, run_job, undo
from loudou.leads import services
from loudou.leads.choices import RecycleKind
from loudou.leads.models import Lead, LeadCount, PublicPool, RecycleRule
from loudou.testing.generate import generate_leads

from .test_leads_recycle import NOW, owned
from .test_leads_summaries import maintained, recounted


def test_the_sweep_moves_recycled_leads_between_the_counts(org):
    """Leads the recycle sweep returns to a pool leave their owner's rows and join the
    pool's, with their source and status: the counts equal a recount."""
    pool = PublicPool.objects.create(name="华东公海", reclaim_block_days=7)
    pool.regions.set([org.east_region])
    RecycleRule.objects.create(name="r", pool=pool, kind=RecycleKind.NO_FOLLOW_UP, days=30,
                               warn_days_before=0)  # fmt: skip
    for i, source in enumerate(["referral", "website", "", "referral"]):
        owned(org, days_ago=31 + i, source=source, name=f"L{i}")
    owned(org, days_ago=5, source="website", name="fresh")
    result = services.sweep(now=NOW)
    assert result.recycled == 4
    assert maintained() == recounted()
    assert LeadCount.objects.get(owner_key=0, pool_key=pool.pk, source="referral").count == 2


def _leads_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["线索名称", "手机", "线索来源"])
        out.writerows(rows)
    return path


def test_an_import_and_its_undo_keep_the_counts(org, tmp_path, settings):
    """A lead import's new leads are counted batch by batch, an update-mode import that
    changes existing leads' source moves them between rows, and the undo of each puts the
    counts back: after every step they equal a recount."""
    settings.MEDIA_ROOT = tmp_path / "media"
    services.create_lead(actor=org.admin, owner=org.east_rep, name="老客户", mobile="13900000001",
                         source="website")  # fmt: skip
    first = run_job(
        create_job(
            actor=org.admin,
            kind="leads",
            file=_leads_csv(
                tmp_path / "a.csv",
                [[f"线索{i}", f"1380000{i:04d}", "客户转介绍"] for i in range(7)],
            ),
        )
    )
    assert Lead.objects.count() == 8
    assert maintained() == recounted()
    rows = [["老客户", "13900000001", "展会"], ["新的", "13700000000", ""]]
    second = run_job(create_job(actor=org.admin, kind="leads", on_duplicate="update",
                                file=_leads_csv(tmp_path / "b.csv", rows)))  # fmt: skip
    assert Lead.objects.get(mobile_key="13900000001").source != "website"
    assert maintained() == recounted()
    undo(second, actor=org.admin)
    assert Lead.objects.get(mobile_key="13900000001").source == "website"
    assert maintained() == recounted()
    undo(first, actor=org.admin)
    assert Lead.objects.count() == 1
    assert maintained() == recounted()


def test_generated_leads_are_counted_converted_and_the_same_for_a_seed(db):
    """``loudou generate`` writes one lead per opportunity by default: 30% converted into
    a deal of their owner with its source, account and a contact, the pooled ones in the
    two pools it creates; the counts equal a recount; the same seed gives the same leads."""
    from datetime import datetime

    from loudou.pipeline.models import Opportunity

    now = datetime.fromisoformat("2026-06-30T12:00+08:00")
    call_command("generate", opportunities=300, seed=3, now=now, stdout=io.StringIO())
    assert Lead.objects.count() == 300
    converted = Lead.objects.filter(status="converted").select_related("converted_opportunity")
    assert converted.count() == 90
    for lead in converted:
        deal = lead.converted_opportunity
        assert (lead.owner_id, lead.source, lead.converted_account_id) == (
            deal.owner_id,
            deal.source,
            deal.account_id,
        )
        assert lead.converted_contact.account_id == deal.account_id
        assert lead.created_at <= deal.created_at
    assert PublicPool.objects.count() == 2
    assert Lead.objects.filter(pool__isnull=False, owner__isnull=True).exists()
    assert maintained() == recounted()

    def leads():
        fields = ["owner_id", "pool_id", "source", "status", "converted_opportunity_id",
                  "created_at"]  # fmt: skip
        return sorted(Lead.objects.values_list(*fields), key=repr)

    before = leads()
    sid = transaction.savepoint()
    Lead.objects.all().delete()
    assert not LeadCount.objects.exclude(count=0).exists()
    generate_leads(leads=300, seed=3, now=now)
    again = leads()
    transaction.savepoint_rollback(sid)
    assert again == before
    assert Opportunity.objects.count() == 300
