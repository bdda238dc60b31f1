"""The open pipeline's hourly deltas (OpenDelta, loudou/pipeline/summaries.py) always equal
a recount from the history, and the open pipeline of a past moment read from them
(analytics.queries.open_at) is exactly what state_at reads from the history: after any
sequence of creations, moves, wins, losses, reopens, amount and owner edits, deletions
and a hand-over through the services, and after a rebuild. Runs on SQLite and, in the
PostgreSQL run, on PostgreSQL."""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loudou.analytics import queries
from loudou.analytics.queries import Scope
from loudou.customers.services import create_account
from loudou.pipeline import services, summaries
from loudou.pipeline.models import OpenDelta, Opportunity, StageChange, SummaryState

from .test_pipeline_summaries import STEP, _hand_over_east_rep, _play, reason  # noqa: F401 (a fixture)


def delta_maintained() -> dict:
    return {
        (r.pipeline_id, r.owner_key, r.hour, r.stage_id): [r.count, r.amount_cents]
        for r in OpenDelta.objects.all()
        if r.count or r.amount_cents
    }


def delta_recounted(horizon: int = 0) -> dict:
    """The rows recounted from the history by the database (one window pass)."""
    return {(p, o, h, s): [n, c] for p, o, h, s, n, c in summaries._delta_rows(horizon)}


def _moments() -> list:
    """Every change's time, a microsecond and a second either side, and the hour
    boundaries around them: the moments where the open pipeline changes."""
    moments = set()
    for at in StageChange.objects.values_list("changed_at", flat=True):
        hour = summaries.hour_start(summaries.hour_of(at))
        moments |= {at, at - timedelta(microseconds=1), at + timedelta(seconds=1),
                    hour, hour - timedelta(microseconds=1)}  # fmt: skip
    return sorted(moments)


def _scopes(org, pipeline) -> list[Scope]:
    """The admin (the whole pipeline), a manager, a rep with a colleague's deal shared
    with them, a team filter and an owner filter."""
    return [
        Scope(user=org.admin, pipeline=pipeline),
        Scope(user=org.east_mgr, pipeline=pipeline),
        Scope(user=org.east_rep, pipeline=pipeline),
        Scope(user=org.admin, pipeline=pipeline, team=org.east_sub),
        Scope(user=org.east_mgr, pipeline=pipeline, owner_id=org.east_rep2.pk),
    ]


def _assert_same_as_history(org, pipeline, moments) -> None:
    stage_ids = list(pipeline.stages.values_list("pk", flat=True))
    for scope in _scopes(org, pipeline):
        qs = scope.opportunities()
        current = queries.open_by_stage(qs)
        for moment in moments:
            read = queries.open_at(scope, moment, stages=stage_ids, current=current)
            expected = queries.state_at(qs, moment, stages=stage_ids, current=current,
                                        whole=scope.is_whole_pipeline())  # fmt: skip
            assert read == expected, (scope, moment)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(STEP, min_size=1, max_size=20), picks=st.lists(st.integers(0, 10**6),
                                                                      max_size=6))  # fmt: skip
def test_deltas_equal_the_history_after_any_sequence(org, reason, steps, picks):  # noqa: F811
    """After any sequence of service actions (creations, moves, wins, losses, reopens,
    amount and owner edits, deletions one by one and as a queryset) and a hand-over,
    every OpenDelta row equals the recount from the history, and for every viewer the
    open pipeline at a change's moment, a microsecond or a second around it or at an
    hour boundary, read from the deltas, equals state_at's answer from the history
    (deals shared with the viewer included); a rebuild gives the recount's rows from its
    horizon on and the same answers after it."""
    sid = transaction.savepoint()
    try:
        pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
        _play(org, reason, steps, [pipeline], seconds=997,
              create_amount=lambda which: Decimal(1000 + 37 * which) / 10,
              new_amount=lambda arg, which: Decimal(arg * 12345 + which) / 100)  # fmt: skip
        shared = Opportunity.objects.filter(owner=org.south_rep).first()
        if shared is not None:
            shared.shared_with.add(org.east_rep)
        assert delta_maintained() == delta_recounted()
        moments = _moments()
        chosen = [moments[p % len(moments)] for p in picks] if moments else []
        _assert_same_as_history(org, pipeline, chosen + moments[-2:])
        _hand_over_east_rep(org)
        assert delta_maintained() == delta_recounted()
        _assert_same_as_history(org, pipeline, chosen)
        summaries.rebuild_summaries()
        horizon = SummaryState.objects.get().delta_from_hour
        assert horizon == summaries.hour_of(timezone.now()) - summaries.DELTA_DAYS * 24
        assert delta_maintained() == delta_recounted(horizon)
        after = [m for m in moments if summaries.hour_of(m) + 1 >= horizon]
        _assert_same_as_history(org, pipeline, after[:4] + after[-2:])
    finally:
        transaction.savepoint_rollback(sid)


def test_a_moment_before_the_horizon_is_read_from_the_history(org, reason):  # noqa: F811
    """After a rebuild the deltas start DELTA_DAYS back: a moment before that is not
    answered from them (open_at gives None and the forecast reads the history), one
    after it is, with state_at's numbers; the services keep the hours after it."""
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    account = create_account(actor=org.east_rep, name="恒信")
    d, c, b = list(pipeline.open_stages())[:3]
    old = timezone.now() - timedelta(days=summaries.DELTA_DAYS + 10)
    opp = services.create_opportunity(
        actor=org.east_rep, pipeline=pipeline, account=account, name="old", stage=d,
        amount=Decimal(100), when=old,
    )  # fmt: skip
    summaries.rebuild_summaries()
    opp = services.move_opportunity(opp, c, actor=org.east_rep,
                                    when=timezone.now() - timedelta(days=3))  # fmt: skip
    services.update_opportunity(opp, actor=org.east_rep, amount=Decimal("250.50"))
    opp = services.move_opportunity(Opportunity.objects.get(pk=opp.pk), b, actor=org.east_rep,
                                    when=timezone.now() - timedelta(days=1))  # fmt: skip
    scope = Scope(user=org.admin, pipeline=pipeline)
    stage_ids = list(pipeline.stages.values_list("pk", flat=True))
    current = queries.open_by_stage(scope.opportunities())
    before = queries.open_at(scope, old + timedelta(days=1), stages=stage_ids, current=current)
    assert before is None
    horizon = SummaryState.objects.get().delta_from_hour
    assert delta_maintained() == delta_recounted(horizon)
    for days, stage, amount in [(5, d, "100.00"), (2, c, "250.50"), (0, b, "250.50")]:
        moment = timezone.now() - timedelta(days=days, minutes=1)
        read = queries.open_at(scope, moment, stages=stage_ids, current=current)
        assert read == queries.state_at(scope.opportunities(), moment, stages=stage_ids,
                                        current=current, whole=True)  # fmt: skip
        assert read == {"open": {stage.pk: {"count": 1, "amount": Decimal(amount)}}}


def test_hours_agree_with_the_database(org):
    """The hour of a change computed in Python (the services) is the one the database
    computes (the rebuild's window pass), at and around hour boundaries."""
    pipeline = services.create_pipeline_from_template("dcba", checklist_mode="advisory")
    account = create_account(actor=org.east_rep, name="恒信")
    base = summaries.hour_start(summaries.hour_of(timezone.now()) - 30)
    last = timedelta(minutes=59, seconds=59, microseconds=999999)
    offsets = [timedelta(0), timedelta(microseconds=-1), timedelta(microseconds=1),
               timedelta(seconds=-1), last]  # fmt: skip
    for i, offset in enumerate(offsets):
        services.create_opportunity(actor=org.east_rep, pipeline=pipeline, account=account,
                                    name=f"h{i}", amount=Decimal(i + 1),
                                    when=base + timedelta(hours=3 * i) + offset)  # fmt: skip
    assert delta_maintained() == delta_recounted()
    hours = {h for _p, _o, h, _s in delta_maintained()}
    times = StageChange.objects.values_list("changed_at", flat=True)
    expected = {summaries.hour_of(at) for at in times}
    assert hours == expected
    assert len(expected) == 5
