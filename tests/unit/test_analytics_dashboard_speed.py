"""The dashboard's stale count (analytics.views._stale_count) is exactly the number of
stale deals the viewer may see (Opportunity.objects.visible_to(user).stale()), for an
admin, a manager, a sub-team rep and a rep with a colleague's stale deal shared with
them, across pipelines; and it costs as many queries with many deals as with few. The
dashboard's weak steps per rep equal those the per-rep report flags."""

from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loudou.analytics.views import _stale_count
from loudou.customers.services import create_account
from loudou.pipeline import services
from loudou.pipeline.models import Opportunity


def _deals(org, pipelines, count: int, offset: int = 0) -> None:
    """``count`` open deals over four owners, two pipelines and the first two stages; every
    other one entered its stage 40 days ago (stale where the stage allows 30)."""
    owners = [org.east_rep, org.east_rep2, org.sub_rep, org.south_rep]
    account = create_account(actor=org.east_rep, name=f"陈旧{offset}")
    for i in range(offset, offset + count):
        pipeline = pipelines[i % 2]
        stage = list(pipeline.open_stages())[(i // 2) % 2]
        opp = services.create_opportunity(
            actor=owners[i % 4], pipeline=pipeline, account=account, name=f"d{i}",
            stage=stage, amount=Decimal(1000),
        )  # fmt: skip
        if i % 3:
            Opportunity.objects.filter(pk=opp.pk).update(
                stage_entered_at=timezone.now() - timedelta(days=40)
            )


def test_stale_count_equals_the_visible_stale_deals(org):
    """For every kind of viewer the count equals visible_to(user).stale().count(), a deal
    shared with a rep included; the viewers' counts differ."""
    pipelines = [services.create_pipeline_from_template(t, checklist_mode="advisory")
                 for t in ("dcba", "classic")]  # fmt: skip
    for pipeline in pipelines:
        for stage in pipeline.open_stages():
            stage.stale_after_days = 30
            stage.save()
    _deals(org, pipelines, 24)
    theirs = Opportunity.objects.filter(owner=org.south_rep).stale().first()
    theirs.shared_with.add(org.east_rep)
    counts = {}
    for user in (org.admin, org.east_mgr, org.east_rep, org.east_rep2, org.sub_rep,
                 org.south_rep):  # fmt: skip
        expected = Opportunity.objects.visible_to(user).stale().count()
        assert _stale_count(user) == expected, user
        counts[user.username] = expected
    assert counts[org.east_rep.username] == counts[org.east_rep2.username] + 1  # the shared
    assert len(set(counts.values())) >= 3


def test_stale_count_query_count_does_not_grow(org, django_assert_max_num_queries):
    """The count costs as many queries with 40 deals as with 8, for a manager and a rep
    with a shared deal."""
    pipelines = [services.create_pipeline_from_template(t, checklist_mode="advisory")
                 for t in ("dcba", "classic")]  # fmt: skip
    for pipeline in pipelines:
        pipeline.open_stages().update(stale_after_days=30)
    _deals(org, pipelines, 8)
    Opportunity.objects.filter(owner=org.south_rep).first().shared_with.add(org.east_rep)
    few = {}
    for user in (org.east_mgr, org.east_rep):
        with CaptureQueriesContext(connection) as captured:
            _stale_count(user)
        few[user.pk] = len(captured)
    _deals(org, pipelines, 32, offset=8)
    for user in (org.east_mgr, org.east_rep):
        with django_assert_max_num_queries(few[user.pk]):
            _stale_count(user)


def test_rep_weak_steps_equal_the_per_rep_report(org):
    """The dashboard's weak steps per rep (reports.rep_weak_steps) are exactly the stages
    the per-rep report flags weak, rep by rep and in pipeline order, for an admin, a
    manager and a rep; some rep has one."""
    from loudou.analytics import reports
    from loudou.analytics.queries import Scope
    from loudou.pipeline.models import LostReason

    services.ensure_lost_reasons()
    reason = LostReason.objects.first()
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    account = create_account(actor=org.east_rep, name="弱")
    stages = list(pipeline.open_stages())
    for i in range(60):  # east_rep2 loses at the first stage, the others move on and win
        owner = [org.east_rep, org.east_rep2, org.sub_rep][i % 3]
        opp = services.create_opportunity(
            actor=owner, pipeline=pipeline, account=account, name=f"w{i}", stage=stages[0],
            amount=Decimal(500),
        )  # fmt: skip
        if owner == org.east_rep2:
            services.lose_opportunity(opp, reason, actor=owner)
        else:
            services.move_opportunity(opp, stages[1], actor=owner)
    flagged_somewhere = False
    for user in (org.admin, org.east_mgr, org.east_rep2):
        scope = Scope(user=user, pipeline=pipeline)
        expected = {r["owner_id"]: [s["name"] for s in r["stages"] if s["weak"]]
                    for r in reports.reps_report(scope)["reps"]}  # fmt: skip
        assert reports.rep_weak_steps(scope) == expected, user
        flagged_somewhere |= any(expected.values())
    assert flagged_somewhere
