"""Export all → import into an empty database → export again gives identical files."""

import filecmp

import pytest

from loudou.customers.models import Account, Contact
from loudou.imports.export import export_all
from loudou.imports.models import JobStatus
from loudou.imports.services import create_job, run_job
from loudou.leads.models import Lead, PoolEvent, PublicPool
from loudou.pipeline.models import Opportunity, Pipeline, StageChange
from tests.unit.test_imports_history import work_through_services


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def wipe():
    """Empty the CRM data (users, teams and lost reasons stay: they are the instance)."""
    StageChange.objects.all().delete()
    Opportunity.objects.all().delete()
    Pipeline.objects.all().delete()  # stages cascade
    Contact.objects.all().delete()
    PoolEvent.objects.all().delete()
    Lead.objects.all().delete()
    Account.objects.all().delete()


def import_all(actor, paths):
    for kind in ("accounts", "contacts", "leads"):
        job = run_job(create_job(actor=actor, kind=kind, file=paths[kind], format="native"))
        assert job.status == JobStatus.DONE, (kind, job.errors, job.message)
    job = run_job(create_job(actor=actor, kind="opportunities", file=paths["opportunities"],
                             history=paths["history"]))  # fmt: skip
    assert job.status == JobStatus.DONE, (job.errors, job.message)


def test_round_trip_gives_identical_files(org, tmp_path):
    """Every exported file is byte for byte the same after a round trip through an empty
    database: accounts, contacts, leads (one in a pool), deals and their stage history."""
    from loudou.customers.services import create_account, create_contact
    from loudou.leads.services import create_lead
    from loudou.pipeline import services

    services.ensure_lost_reasons()
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    work_through_services(org, pipeline)
    Account.objects.update(owner=org.east_rep)  # an empty owner imports as the importer
    acme = create_account(actor=org.admin, name="Acme Co., Ltd.", industry="制造",
                          owner=org.east_rep, website="http://acme.example")  # fmt: skip
    create_contact(acme, actor=org.admin, name="王五", mobile="13800000000", email="w@acme.cn")
    pool = PublicPool.objects.create(name="公海")
    create_lead(actor=org.admin, name="张三", company="星河", mobile="13900000000",
                source="exhibition", owner=org.east_rep2)  # fmt: skip
    create_lead(actor=org.admin, name="李四", mobile="13700000000", pool=pool)
    first = export_all(tmp_path / "first", actor=org.admin)
    wipe()
    import_all(org.admin, first)
    second = export_all(tmp_path / "second", actor=org.admin)
    for name in first:
        assert filecmp.cmp(first[name], second[name], shallow=False), name
    assert Opportunity.objects.count() == 13 and Lead.objects.count() == 2
