"""Imported stage history gives the funnel the services would have given.

The same deals are worked once through the pipeline services (create, move, win, lose,
reopen, with their times) and once imported from a native opportunity file plus a
history file describing those events; the StageChange rows, the maintained fields and
``funnel_report`` must come out the same."""

import csv
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from loudou.analytics.queries import Scope
from loudou.analytics.reports import funnel_report
from loudou.customers.models import Account
from loudou.imports.history import StageInfo, rebuild
from loudou.imports.models import JobStatus
from loudou.imports.services import create_job, run_job
from loudou.pipeline import services
from loudou.pipeline.models import LostReason, Opportunity, Pipeline

START = datetime(2024, 1, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))

# DOMAIN §8's ten opportunities on D→C→B→A, plus a step back, a reopened loss and a
# reopened win: (day, action, stage code).
DEALS = [
    [(0, "create", "D"), (3, "lose", None)],
    [(0, "create", "D"), (5, "lose", None)],
    [(1, "create", "D")],
    [(0, "create", "D"), (4, "move", "C"), (9, "lose", None)],
    [(2, "create", "D"), (6, "move", "C")],
    [(0, "create", "D"), (2, "move", "C"), (7, "move", "B"), (20, "lose", None)],
    [(0, "create", "D"), (3, "move", "C"), (4, "move", "A"), (30, "win", None)],
    [(0, "create", "D"), (1, "move", "C"), (2, "move", "B"), (3, "move", "A"), (8, "win", None)],
    [(0, "create", "D"), (5, "move", "C"), (6, "move", "B"), (9, "move", "A"),
     (12, "lose", None)],
    [(0, "create", "C"), (2, "move", "B"), (3, "move", "A")],
    [(0, "create", "D"), (2, "move", "B"), (4, "move", "C"), (8, "move", "A")],
    [(0, "create", "D"), (2, "lose", None), (5, "reopen", None), (9, "move", "C")],
    [(0, "create", "C"), (2, "win", None), (4, "reopen", None), (6, "lose", None)],
]  # fmt: skip


def by_code(pipeline):
    return {s.code: s for s in pipeline.stages.all()}


def work_through_services(org, pipeline):
    """The deals, made by the services at their historical times."""
    stages = by_code(pipeline)
    reason = LostReason.objects.order_by("pk").first()
    for i, script in enumerate(DEALS):
        account = Account.objects.create(name=f"客户{i}", name_key=f"客户{i}")
        opp = None
        for day, action, code in script:
            when = START + timedelta(days=day, hours=i)
            if action == "create":
                opp = services.create_opportunity(
                    actor=org.east_rep, pipeline=pipeline, stage=stages[code], when=when,
                    name=f"deal {i}", account=account, amount=Decimal(1000 * (i + 1)),
                )  # fmt: skip
            elif action == "move":
                opp = services.move_opportunity(opp, stages[code], actor=org.east_rep, when=when)
            elif action == "win":
                opp = services.win_opportunity(opp, actor=org.east_rep, when=when)
            elif action == "lose":
                opp = services.lose_opportunity(opp, reason, actor=org.east_rep, when=when)
            else:
                opp = services.reopen_opportunity(opp, actor=org.east_rep, when=when)


def export_native(pipeline, tmp_path):
    """The services' deals written as native opportunity and history files (what an
    export of another Loudou, or a hand-made sheet, would hold)."""
    opp_path, hist_path = tmp_path / "opps.csv", tmp_path / "history.csv"
    with open(opp_path, "w", newline="") as o, open(hist_path, "w", newline="") as h:
        opps, hist = csv.writer(o), csv.writer(h)
        opps.writerow(["id", "name", "account", "amount", "pipeline", "stage", "status",
                       "owner", "created_at", "closed_at", "expected_close_date"])  # fmt: skip
        hist.writerow(["opportunity_id", "stage", "changed_at", "probability"])
        for opp in Opportunity.objects.filter(pipeline=pipeline).order_by("pk"):
            opps.writerow([f"X{opp.pk}", opp.name + " (imported)", opp.account.name,
                           opp.amount, "Imported D/C/B/A", opp.stage.name, opp.status,
                           opp.owner.username, opp.created_at.isoformat(),
                           opp.closed_at.isoformat() if opp.closed_at else "", ""])  # fmt: skip
            for change in opp.stage_changes.order_by("changed_at", "pk"):
                hist.writerow([f"X{opp.pk}", change.to_stage.name, change.changed_at.isoformat(),
                               change.to_stage.default_probability])  # fmt: skip
    return opp_path, hist_path


def facts(pipeline):
    """Everything the funnel reads, per deal, in stage codes/kinds (not ids)."""

    def code(stage):
        return stage.code or stage.kind

    out = []
    for opp in Opportunity.objects.filter(pipeline=pipeline).order_by("pk"):
        changes = [
            (c.kind, c.from_stage and code(c.from_stage), code(c.to_stage), c.changed_at,
             c.stay_seconds, c.amount, c.probability)
            for c in opp.stage_changes.order_by("changed_at", "pk")
        ]  # fmt: skip
        out.append((opp.status, code(opp.stage), code(opp.furthest_stage), opp.amount,
                    opp.probability, opp.stage_entered_at, opp.closed_at, opp.created_at,
                    changes))  # fmt: skip
    return out


def report(user, pipeline):
    data = funnel_report(Scope(user=user, pipeline=pipeline))
    data.pop("pipeline")
    for stage in data["stages"]:
        stage.pop("id")
    return data


@pytest.fixture
def worked(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    services.ensure_lost_reasons()
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    work_through_services(org, pipeline)
    return pipeline


def test_history_into_an_existing_pipeline_matches_the_services(org, worked, tmp_path):
    """Imported into a second D/C/B/A pipeline, the same deals have the same history
    rows, furthest stages, stays and funnel report as those made by the services."""
    target = services.create_pipeline_from_template(
        "dcba", name="目标漏斗", checklist_mode="advisory"
    )
    opp_path, hist_path = export_native(worked, tmp_path)
    job = create_job(actor=org.admin, kind="opportunities", file=opp_path, history=hist_path,
                     pipeline="目标漏斗")  # fmt: skip
    job = run_job(job)
    assert job.status == JobStatus.DONE, (job.errors, job.message)
    assert job.layout == "native" and job.counts["new"] == len(DEALS)
    assert facts(target) == facts(worked)
    assert report(org.admin, target) == report(org.admin, worked)


def test_history_creates_the_missing_pipeline_with_the_same_funnel(org, worked, tmp_path):
    """With no such pipeline, it is created from the files: open stages ordered by
    probability (D, C, B, A), 成交/输单 as terminals, and the funnel report is the same."""
    opp_path, hist_path = export_native(worked, tmp_path)
    job = run_job(create_job(actor=org.admin, kind="opportunities", file=opp_path,
                             history=hist_path))  # fmt: skip
    assert job.status == JobStatus.DONE, (job.errors, job.message)
    created = Pipeline.objects.get(name="Imported D/C/B/A")
    names = [s.name for s in created.stages.order_by("position")]
    assert names == [s.name for s in worked.stages.order_by("position")]
    assert report(org.admin, created) == report(org.admin, worked)


def test_rebuild_without_history_closes_from_the_first_stage():
    """A won deal with no history at all: created in the first stage, won from it at its
    close date; the furthest stage is the first one."""
    d = StageInfo(1, "open", 10, Decimal(10))
    won, lost = StageInfo(8, "won", 80, Decimal(100)), StageInfo(9, "lost", 90, Decimal(0))
    closed = START + timedelta(days=10)
    result = rebuild(created_at=START, events=[], final_status="won", final_stage=None,
                     closed_at=closed, first_open=d, won_stage=won, lost_stage=lost)  # fmt: skip
    assert [(c.kind, c.to_stage.pk, c.stay_seconds) for c in result.changes] == [
        ("created", 1, None), ("won", 8, 10 * 86400)]  # fmt: skip
    assert (result.status, result.stage, result.furthest) == ("won", won, d)
    assert result.closed_at == result.stage_entered_at == closed
