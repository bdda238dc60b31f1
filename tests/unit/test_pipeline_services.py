"""Pipeline services: templates, stage history, furthest stage, win/lose/reopen, checklists,
optimistic versions, probabilities, stage edits and the derived account grade."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loudou.core.exceptions import Conflict, ServiceError, ValidationFailed
from loudou.customers.models import Account
from loudou.customers.services import create_account
from loudou.pipeline import services
from loudou.pipeline.models import LostReason, Opportunity, Stage, StageChange

pytestmark = pytest.mark.django_db


# --- helpers --------------------------------------------------------------------------


def make_pipeline(template="dcba", checklist_mode="strict"):
    return services.create_pipeline_from_template(template, checklist_mode=checklist_mode)


def stage(pipeline, code) -> Stage:
    return pipeline.stages.get(code=code)


def make_account(owner, name="华东机械"):
    return create_account(actor=owner, name=name)


def make_opp(org, pipeline, code="D", *, account=None, amount="10000", **kwargs):
    return services.create_opportunity(
        actor=org.east_rep,
        pipeline=pipeline,
        stage=stage(pipeline, code),
        name="年度采购",
        account=account or make_account(org.east_rep),
        amount=Decimal(amount),
        **kwargs,
    )


def reload(opp) -> Opportunity:
    return Opportunity.objects.get(pk=opp.pk)


def snapshot(opp) -> dict:
    """What a refused action must leave exactly as it was."""
    fresh = reload(opp)
    return {
        "stage": fresh.stage_id,
        "furthest": fresh.furthest_stage_id,
        "status": fresh.status,
        "version": fresh.version,
        "probability": fresh.probability,
        "lost_reason": fresh.lost_reason_id,
        "checklist_done": fresh.checklist_done,
        "history": fresh.stage_changes.count(),
    }


def move(opp, code, org, **kwargs):
    """Move with the current stage's checklist ticked, so strictness is not in the way."""
    fresh = reload(opp)
    kwargs.setdefault("checklist", fresh.missing_checklist())
    target = stage(fresh.pipeline, code)
    return services.move_opportunity(
        fresh, target, actor=org.east_rep, version=fresh.version, **kwargs
    )


def win(opp, org, **kwargs):
    fresh = reload(opp)
    kwargs.setdefault("checklist", fresh.missing_checklist())
    return services.win_opportunity(fresh, actor=org.east_rep, version=fresh.version, **kwargs)


@pytest.fixture
def reason(db):
    services.ensure_lost_reasons()
    return LostReason.objects.get(name="价格太高")


@pytest.fixture
def dcba(db):
    return make_pipeline("dcba")


def lose(opp, org, reason, **kwargs):
    fresh = reload(opp)
    return services.lose_opportunity(
        fresh, reason, actor=org.east_rep, version=fresh.version, **kwargs
    )


def history(opp) -> list[tuple]:
    """(kind, from code, to code) for each stage change, oldest first."""
    rows = StageChange.objects.filter(opportunity=opp).select_related("from_stage", "to_stage")
    return [
        (row.kind, row.from_stage.code if row.from_stage else None, row.to_stage.code)
        for row in rows.order_by("changed_at", "pk")
    ]


# --- templates ------------------------------------------------------------------------

TEMPLATE_STAGES = {
    "classic": [
        ("interest", "感兴趣", "Interest", "10.00", "open"),
        ("inquiry", "询价", "Inquiry", "30.00", "open"),
        ("proposal", "提方案", "Proposal", "60.00", "open"),
        ("won", "成交", "Won", "100.00", "won"),
        ("lost", "输单", "Lost", "0.00", "lost"),
    ],
    "dcba": [
        ("D", "D 识别", "D · Identify", "10.00", "open"),
        ("C", "C 目标", "C · Target", "25.00", "open"),
        ("B", "B 重点跟进", "B · Key follow-up", "50.00", "open"),
        ("A", "A 订单跟进", "A · Order follow-up", "80.00", "open"),
        ("won", "成交", "Won", "100.00", "won"),
        ("lost", "输单", "Lost", "0.00", "lost"),
    ],
    "key_account": [
        ("analysis", "客户分析", "Account analysis", "5.00", "open"),
        ("trust", "建立信任", "Build trust", "15.00", "open"),
        ("needs", "挖掘需求", "Uncover needs", "30.00", "open"),
        ("value", "呈现价值", "Present value", "50.00", "open"),
        ("commit", "赢取承诺", "Win commitment", "75.00", "open"),
        ("collect", "回收账款", "Collect payment", "90.00", "open"),
        ("won", "成交", "Won", "100.00", "won"),
        ("lost", "输单", "Lost", "0.00", "lost"),
    ],
    "foreign_trade": [
        ("cold", "潜在客户", "Cold prospect", "5.00", "open"),
        ("inquiry", "询盘", "Inquiry", "20.00", "open"),
        ("opportunity", "商机", "Opportunity", "40.00", "open"),
        ("pi", "签订PI", "PI signed", "80.00", "open"),
        ("won", "成交", "Won", "100.00", "won"),
        ("lost", "输单", "Lost", "0.00", "lost"),
    ],
}
TEMPLATE_NAMES = {
    "classic": ("经典销售漏斗", "Classic funnel"),
    "dcba": ("D/C/B/A 客户分级漏斗", "D/C/B/A grades"),
    "key_account": ("大客户六步法", "Key account, six steps"),
    "foreign_trade": ("外贸金字塔", "Foreign trade pyramid"),
}


@pytest.mark.parametrize("template", list(TEMPLATE_STAGES))
def test_template_creates_its_stages(template):
    """Each template creates its open stages in order, then won and lost, with the
    Chinese and English names and the default win rates of DOMAIN §3."""
    pipeline = make_pipeline(template)
    rows = [
        (s.code, s.name, s.name_en, str(s.default_probability), s.kind)
        for s in pipeline.stages.order_by("position")
    ]
    assert rows == TEMPLATE_STAGES[template]
    assert (pipeline.name, pipeline.name_en, pipeline.template) == (
        *TEMPLATE_NAMES[template],
        template,
    )


def test_unknown_template_is_refused():
    """An unknown template key is a validation failure and creates nothing."""
    with pytest.raises(ValidationFailed):
        services.create_pipeline_from_template("funnel-of-dreams")
    assert Stage.objects.count() == 0


# --- history and the furthest stage ---------------------------------------------------


def test_creation_is_the_first_stage_change(org, dcba):
    """Creating an opportunity records its entry into the first stage, by its creator,
    with the amount and the stage's default probability."""
    opp = make_opp(org, dcba, "D", amount="12000")
    row = StageChange.objects.get(opportunity=opp)
    assert (row.kind, row.from_stage, row.to_stage.code) == ("created", None, "D")
    assert (row.changed_by, row.amount, row.probability) == (
        org.east_rep,
        Decimal("12000.00"),
        Decimal("10.00"),
    )
    assert reload(opp).furthest_stage.code == "D"


def test_skipped_stages_are_one_change_and_count_as_passed(org, dcba):
    """Jumping from C to A records a single change C → A, and A becomes the furthest."""
    opp = make_opp(org, dcba, "C")
    move(opp, "A", org)
    assert history(opp) == [("created", None, "C"), ("moved", "C", "A")]
    assert reload(opp).furthest_stage.code == "A"


def test_moving_back_is_recorded_and_keeps_furthest(org, dcba):
    """Moving back from B to D is a recorded change; the furthest stage stays B."""
    opp = make_opp(org, dcba, "C")
    move(opp, "B", org)
    move(opp, "D", org)
    fresh = reload(opp)
    assert history(opp)[-1] == ("moved", "B", "D")
    assert (fresh.stage.code, fresh.furthest_stage.code) == ("D", "B")


def test_moving_to_the_current_stage_changes_nothing(org, dcba):
    """A move to the stage it is already in writes no history and keeps the version."""
    opp = make_opp(org, dcba, "C")
    before = snapshot(opp)
    move(opp, "C", org)
    assert snapshot(opp) == before


def test_move_to_another_pipelines_stage_is_refused(org, dcba):
    """A stage of another pipeline is a validation failure; nothing changes."""
    opp = make_opp(org, dcba, "D")
    other = make_pipeline("classic")
    before = snapshot(opp)
    with pytest.raises(ValidationFailed):
        services.move_opportunity(
            reload(opp), stage(other, "inquiry"), actor=org.east_rep, version=1
        )
    assert snapshot(opp) == before


def test_move_to_a_terminal_stage_is_refused(org, dcba):
    """Won and lost are reached by winning and losing, not by a move."""
    opp = make_opp(org, dcba, "D")
    before = snapshot(opp)
    with pytest.raises(ValidationFailed) as refused:
        services.move_opportunity(reload(opp), stage(dcba, "won"), actor=org.east_rep, version=1)
    assert refused.value.code == "terminal"
    assert snapshot(opp) == before


# --- won, lost, reopen ----------------------------------------------------------------


def test_win_closes_in_the_won_stage_at_100_percent(org, dcba):
    """Winning sets status won, the won terminal stage, probability 100 and closed_at,
    and records a change from the stage it was won from."""
    opp = make_opp(org, dcba, "B")
    win(opp, org)
    fresh = reload(opp)
    assert (fresh.status, fresh.stage.code, fresh.probability) == ("won", "won", Decimal("100"))
    assert fresh.closed_at is not None
    assert history(opp)[-1] == ("won", "B", "won")
    assert fresh.furthest_stage.code == "B"


def test_won_opportunity_refuses_further_moves(org, dcba):
    """A won opportunity cannot be moved, won again or lost; nothing changes."""
    opp = make_opp(org, dcba, "B")
    win(opp, org)
    before = snapshot(opp)
    fresh = reload(opp)
    with pytest.raises(Conflict):
        services.move_opportunity(fresh, stage(dcba, "A"), actor=org.east_rep, version=2)
    with pytest.raises(Conflict):
        services.win_opportunity(fresh, actor=org.east_rep, version=2)
    with pytest.raises(Conflict):
        services.lose_opportunity(
            fresh, LostReason.objects.create(name="x"), actor=org.east_rep, version=2
        )
    assert snapshot(opp) == before


def test_lost_keeps_its_stage_and_reason(org, dcba, reason):
    """Losing keeps the stage it was lost in, stores the reason and note, and records a
    change from that stage to the lost terminal."""
    opp = make_opp(org, dcba, "C")
    lose(opp, org, reason, note="对手报价低 20%")
    fresh = reload(opp)
    assert (fresh.status, fresh.stage.code, fresh.furthest_stage.code) == ("lost", "C", "C")
    assert (fresh.lost_reason, fresh.lost_note) == (reason, "对手报价低 20%")
    assert history(opp)[-1] == ("lost", "C", "lost")


def test_lose_without_reason_is_refused(org, dcba):
    """Losing without a reason is a 422 and changes nothing."""
    opp = make_opp(org, dcba, "C")
    before = snapshot(opp)
    with pytest.raises(ValidationFailed) as refused:
        lose(opp, org, None)
    assert refused.value.status == 422
    assert snapshot(opp) == before


def test_lose_with_inactive_reason_is_refused(org, dcba, reason):
    """A reason the admin switched off cannot be chosen; nothing changes."""
    reason.is_active = False
    reason.save()
    opp = make_opp(org, dcba, "C")
    before = snapshot(opp)
    with pytest.raises(ValidationFailed):
        lose(opp, org, reason)
    assert snapshot(opp) == before


def test_reopen_won_returns_to_the_stage_it_was_won_from(org, dcba):
    """Reopening a won deal puts it back, open, in the stage it was won from, with that
    stage's default probability; the change is recorded from the won stage."""
    opp = make_opp(org, dcba, "C")
    move(opp, "A", org)
    move(opp, "B", org)
    win(opp, org)
    fresh = reload(opp)
    services.reopen_opportunity(fresh, actor=org.east_rep, version=fresh.version)
    fresh = reload(opp)
    assert (fresh.status, fresh.stage.code, fresh.closed_at) == ("open", "B", None)
    assert (fresh.probability, fresh.furthest_stage.code) == (Decimal("50.00"), "A")
    assert history(opp)[-1] == ("reopened", "won", "B")


def test_reopen_lost_returns_to_the_stage_it_was_lost_in(org, dcba, reason):
    """Reopening a lost deal keeps its stage, clears the reason and restores the stage's
    default probability; the change is recorded from the lost stage."""
    opp = make_opp(org, dcba, "B")
    lose(opp, org, reason, note="预算冻结")
    fresh = reload(opp)
    services.reopen_opportunity(fresh, actor=org.east_rep, version=fresh.version)
    fresh = reload(opp)
    assert (fresh.status, fresh.stage.code, fresh.probability) == ("open", "B", Decimal("50.00"))
    assert (fresh.lost_reason, fresh.lost_note) == (None, "")
    assert history(opp)[-1] == ("reopened", "lost", "B")


def test_reopen_an_open_opportunity_is_refused(org, dcba):
    """Only a closed opportunity can be reopened."""
    opp = make_opp(org, dcba, "B")
    before = snapshot(opp)
    with pytest.raises(Conflict):
        services.reopen_opportunity(reload(opp), actor=org.east_rep, version=1)
    assert snapshot(opp) == before


# --- checklists -----------------------------------------------------------------------


def test_strict_checklist_refuses_a_forward_move(org, dcba):
    """In a strict pipeline a forward move with unticked items is refused, naming the
    items; stage, version, ticks and history are unchanged."""
    opp = make_opp(org, dcba, "C")
    before = snapshot(opp)
    with pytest.raises(ValidationFailed) as refused:
        services.move_opportunity(
            reload(opp), stage(dcba, "B"), actor=org.east_rep, version=1, checklist=["需求明确"]
        )
    assert refused.value.code == "checklist_incomplete"
    assert "有支付能力" in refused.value.message
    assert snapshot(opp) == before


def test_strict_checklist_allows_the_move_when_ticked_with_it(org, dcba):
    """Ticking every item with the move lets it through and keeps the ticks."""
    opp = make_opp(org, dcba, "C")
    c = stage(dcba, "C")
    services.move_opportunity(
        reload(opp), stage(dcba, "B"), actor=org.east_rep, version=1,
        checklist=["需求明确", "有支付能力"],
    )  # fmt: skip
    fresh = reload(opp)
    assert fresh.stage.code == "B"
    assert fresh.checklist_done == {str(c.pk): ["有支付能力", "需求明确"]}


def test_strict_checklist_counts_items_ticked_before(org, dcba):
    """Items ticked earlier count: ticking one now and one with the move is enough."""
    opp = make_opp(org, dcba, "C")
    services.tick_checklist(reload(opp), ["需求明确"], actor=org.east_rep, version=1)
    services.move_opportunity(
        reload(opp), stage(dcba, "B"), actor=org.east_rep, version=2, checklist=["有支付能力"]
    )
    assert reload(opp).stage.code == "B"


def test_ticking_saves_the_ticked_set(org, dcba):
    """Ticking stores exactly the given items for the current stage, as a checklist form
    does: an item left out is unticked."""
    opp = make_opp(org, dcba, "C")
    c = stage(dcba, "C")
    services.tick_checklist(reload(opp), ["需求明确", "有支付能力"], actor=org.east_rep, version=1)
    services.tick_checklist(reload(opp), ["有支付能力"], actor=org.east_rep, version=2)
    assert reload(opp).checklist_done == {str(c.pk): ["有支付能力"]}


def test_ticking_an_unknown_item_is_refused(org, dcba):
    """An item that is not on the current stage's checklist is refused; nothing changes."""
    opp = make_opp(org, dcba, "C")
    before = snapshot(opp)
    with pytest.raises(ValidationFailed):
        services.tick_checklist(reload(opp), ["合同已发送"], actor=org.east_rep, version=1)
    assert snapshot(opp) == before


def test_advisory_checklist_allows_a_forward_move(org):
    """In an advisory pipeline a forward move with unticked items goes through."""
    pipeline = make_pipeline("dcba", checklist_mode="advisory")
    opp = make_opp(org, pipeline, "C")
    services.move_opportunity(reload(opp), stage(pipeline, "B"), actor=org.east_rep, version=1)
    assert reload(opp).stage.code == "B"


def test_backward_move_needs_no_checklist(org, dcba):
    """Moving back in a strict pipeline does not ask for the current stage's items."""
    opp = make_opp(org, dcba, "C")
    move(opp, "B", org)
    fresh = reload(opp)
    assert fresh.missing_checklist() != []
    services.move_opportunity(fresh, stage(dcba, "C"), actor=org.east_rep, version=2)
    assert reload(opp).stage.code == "C"


def test_strict_checklist_refuses_a_win(org, dcba):
    """Winning from a stage with unticked items in a strict pipeline is refused."""
    opp = make_opp(org, dcba, "A")
    before = snapshot(opp)
    with pytest.raises(ValidationFailed):
        services.win_opportunity(reload(opp), actor=org.east_rep, version=1)
    assert snapshot(opp) == before


# --- versions -------------------------------------------------------------------------


def test_stale_version_is_a_conflict(org, dcba):
    """A move carrying an older version is refused with a conflict; nothing changes."""
    opp = make_opp(org, dcba, "C")
    move(opp, "B", org)
    before = snapshot(opp)
    with pytest.raises(Conflict) as refused:
        services.move_opportunity(
            reload(opp), stage(dcba, "A"), actor=org.east_rep, version=1,
            checklist=reload(opp).missing_checklist(),
        )  # fmt: skip
    assert refused.value.code == "version_conflict"
    assert snapshot(opp) == before


def test_every_change_bumps_the_version(org, dcba, reason):
    """Move, tick, update, lose and reopen each raise the version by one."""
    opp = make_opp(org, dcba, "C")
    versions = [reload(opp).version]
    move(opp, "B", org)
    versions.append(reload(opp).version)
    services.tick_checklist(reload(opp), ["已找到决策人"], actor=org.east_rep, version=2)
    versions.append(reload(opp).version)
    services.update_opportunity(reload(opp), actor=org.east_rep, version=3, next_step="拜访")
    versions.append(reload(opp).version)
    lose(opp, org, reason)
    versions.append(reload(opp).version)
    services.reopen_opportunity(reload(opp), actor=org.east_rep, version=5)
    versions.append(reload(opp).version)
    assert versions == [1, 2, 3, 4, 5, 6]


# --- probabilities --------------------------------------------------------------------


def test_stage_default_change_keeps_hand_set_probability(org, dcba):
    """A new default win rate reaches a default-following opportunity in the stage but
    never one whose probability a rep set by hand."""
    follows = make_opp(org, dcba, "C")
    by_hand = make_opp(org, dcba, "C", probability=Decimal("40"))
    services.update_stage(stage(dcba, "C"), default_probability=Decimal("35"))
    assert reload(follows).probability == Decimal("35.00")
    assert reload(by_hand).probability == Decimal("40.00")
    assert reload(by_hand).probability_manual is True


def test_stage_default_change_leaves_other_stages_and_closed_deals(org, dcba, reason):
    """Only open opportunities in the edited stage follow its new default."""
    elsewhere = make_opp(org, dcba, "D")
    lost = make_opp(org, dcba, "C")
    lose(lost, org, reason)
    services.update_stage(stage(dcba, "C"), default_probability=Decimal("35"))
    assert reload(elsewhere).probability == Decimal("10.00")
    assert reload(lost).probability == Decimal("0.00")


def test_probability_follows_the_new_stage_on_move(org, dcba):
    """Moving takes the new stage's default probability when it is not set by hand."""
    opp = make_opp(org, dcba, "D")
    move(opp, "B", org)
    assert reload(opp).probability == Decimal("50.00")


def test_hand_set_probability_is_kept_on_move(org, dcba):
    """A probability set by hand survives a move."""
    opp = make_opp(org, dcba, "D")
    services.update_opportunity(
        reload(opp), actor=org.east_rep, version=1, probability=Decimal("33")
    )
    move(opp, "B", org)
    fresh = reload(opp)
    assert (fresh.probability, fresh.probability_manual) == (Decimal("33.00"), True)


def test_probability_can_follow_the_stage_again(org, dcba):
    """``probability="default"`` drops the hand-set value and takes the stage default."""
    opp = make_opp(org, dcba, "C", probability=Decimal("60"))
    services.update_opportunity(reload(opp), actor=org.east_rep, version=1, probability="default")
    fresh = reload(opp)
    assert (fresh.probability, fresh.probability_manual) == (Decimal("25.00"), False)


def test_stage_change_captures_amount_and_probability_then(org, dcba):
    """Each StageChange keeps the amount and probability of its moment, unaffected by
    later edits."""
    opp = make_opp(org, dcba, "D", amount="10000")
    services.update_opportunity(reload(opp), actor=org.east_rep, version=1, amount=Decimal("25000"))
    move(opp, "C", org)
    services.update_opportunity(
        reload(opp), actor=org.east_rep, version=3, amount=Decimal("30000.50")
    )
    win(opp, org)
    rows = StageChange.objects.filter(opportunity=opp).order_by("changed_at", "pk")
    assert [(r.kind, r.amount, r.probability) for r in rows] == [
        ("created", Decimal("10000.00"), Decimal("10.00")),
        ("moved", Decimal("25000.00"), Decimal("25.00")),
        ("won", Decimal("30000.50"), Decimal("100.00")),
    ]


# --- stage edits ----------------------------------------------------------------------


def test_reorder_recomputes_furthest_from_history(org, dcba):
    """After C is put first, an opportunity that went D → C → D has furthest D: the
    furthest stage is read again from its history in the new order."""
    opp = make_opp(org, dcba, "D")
    move(opp, "C", org)
    move(opp, "D", org)
    assert reload(opp).furthest_stage.code == "C"
    d, c, b, a = (stage(dcba, code) for code in "DCBA")
    services.reorder_stages(dcba, [c.pk, d.pk, b.pk, a.pk])
    assert [s.code for s in dcba.stages.order_by("position")] == [
        "C", "D", "B", "A", "won", "lost",
    ]  # fmt: skip
    assert reload(opp).furthest_stage.code == "D"


def test_reorder_must_name_every_open_stage_once(org, dcba):
    """A reorder that leaves out or repeats an open stage is refused; the order stays."""
    d, c, b, a = (stage(dcba, code) for code in "DCBA")
    for ids in ([c.pk, d.pk, b.pk], [c.pk, d.pk, b.pk, a.pk, a.pk]):
        with pytest.raises(ValidationFailed):
            services.reorder_stages(dcba, ids)
    assert [s.code for s in dcba.stages.order_by("position")][:4] == ["D", "C", "B", "A"]


def test_add_stage_inserts_after_the_given_stage(dcba):
    """A new stage lands right after the chosen one; terminals stay last."""
    services.add_stage(dcba, name="E 演示", code="E", after=stage(dcba, "C"))
    assert [s.code for s in dcba.stages.order_by("position")] == [
        "D", "C", "E", "B", "A", "won", "lost",
    ]  # fmt: skip


def test_add_stage_after_a_terminal_is_refused(dcba):
    """A stage cannot be put after won or lost; nothing is created."""
    with pytest.raises(ValidationFailed):
        services.add_stage(dcba, name="Later", after=stage(dcba, "won"))
    assert dcba.stages.count() == 6


def test_archive_refused_with_open_opportunities(org, dcba):
    """A stage that still holds open opportunities cannot be archived."""
    make_opp(org, dcba, "C")
    with pytest.raises(Conflict):
        services.archive_stage(stage(dcba, "C"))
    assert stage(dcba, "C").is_archived is False


def test_archive_allowed_once_the_stage_is_empty(org, dcba, reason):
    """With only closed opportunities left in it, a stage can be archived."""
    opp = make_opp(org, dcba, "C")
    lose(opp, org, reason)
    services.archive_stage(stage(dcba, "C"))
    assert stage(dcba, "C").is_archived is True
    assert [s.code for s in dcba.open_stages()] == ["D", "B", "A"]


def test_move_to_an_archived_stage_is_refused(org, dcba):
    """An archived stage takes no new opportunities."""
    services.archive_stage(stage(dcba, "B"))
    opp = make_opp(org, dcba, "C")
    before = snapshot(opp)
    with pytest.raises(ValidationFailed):
        move(opp, "B", org)
    assert snapshot(opp) == before


# --- account grade --------------------------------------------------------------------


def grade(account) -> str:
    return Account.objects.get(pk=account.pk).grade


def test_grade_is_the_furthest_open_dcba_stage(org, dcba):
    """An account's grade is the furthest stage code among its open D/C/B/A deals."""
    account = make_account(org.east_rep)
    make_opp(org, dcba, "D", account=account)
    make_opp(org, dcba, "B", account=account)
    make_opp(org, dcba, "C", account=account)
    assert grade(account) == "B"


def test_grade_follows_moves(org, dcba):
    """Moving the deal changes the grade; moving back lowers it again."""
    account = make_account(org.east_rep)
    opp = make_opp(org, dcba, "D", account=account)
    move(opp, "A", org)
    assert grade(account) == "A"
    move(opp, "C", org)
    assert grade(account) == "C"


def test_grade_is_won_with_only_won_deals(org, dcba):
    """With a won deal and no open D/C/B/A one, the grade is 'won'."""
    account = make_account(org.east_rep)
    win(make_opp(org, dcba, "D", account=account), org)
    assert grade(account) == "won"


def test_open_deal_grades_above_won(org, dcba):
    """An open deal in the D/C/B/A pipeline sets the grade even after a won one."""
    account = make_account(org.east_rep)
    win(make_opp(org, dcba, "D", account=account), org)
    make_opp(org, dcba, "C", account=account)
    assert grade(account) == "C"


def test_grade_is_empty_without_deals_or_with_lost_ones(org, dcba, reason):
    """No deal, or only lost deals: no grade."""
    account = make_account(org.east_rep)
    assert grade(account) == ""
    lose(make_opp(org, dcba, "B", account=account), org, reason)
    assert grade(account) == ""


def test_other_pipelines_do_not_grade(org):
    """Open deals in another pipeline leave the grade empty, even in stages coded like
    the D/C/B/A ones."""
    classic = make_pipeline("classic")
    services.update_stage(stage(classic, "proposal"), code="A")
    account = make_account(org.east_rep)
    make_opp(org, classic, "A", account=account)
    assert grade(account) == ""


def test_grade_after_reopen(org, dcba, reason):
    """Reopening a lost deal brings its stage back into the grade."""
    account = make_account(org.east_rep)
    opp = make_opp(org, dcba, "B", account=account)
    lose(opp, org, reason)
    assert grade(account) == ""
    services.reopen_opportunity(reload(opp), actor=org.east_rep, version=2)
    assert grade(account) == "B"


# --- stale ----------------------------------------------------------------------------


def test_stale_lists_open_deals_past_their_stage_limit(org, dcba, reason):
    """stale() holds the open opportunities that sat in their stage longer than its
    limit (D: 30 days), not fresh ones and not closed ones."""
    now = timezone.now()
    old = make_opp(org, dcba, "D", when=now - timedelta(days=31))
    make_opp(org, dcba, "D", when=now - timedelta(days=29))
    closed = make_opp(org, dcba, "D", when=now - timedelta(days=40))
    lose(closed, org, reason, when=now - timedelta(days=35))
    assert list(Opportunity.objects.stale(now=now)) == [old]


def test_stale_clock_restarts_on_move(org, dcba):
    """Moving to another stage restarts the clock of that stage's limit."""
    now = timezone.now()
    opp = make_opp(org, dcba, "D", when=now - timedelta(days=31))
    move(opp, "C", org)
    assert list(Opportunity.objects.stale()) == []


def test_stale_flag_agrees_with_stale_list(org, dcba):
    """An opportunity a little more than its limit in the stage is stale both for the
    list filter and for its own flag."""
    opp = make_opp(org, dcba, "D", when=timezone.now() - timedelta(days=30, hours=12))
    assert list(Opportunity.objects.stale()) == [reload(opp)]
    assert reload(opp).is_stale is True


# --- property: history explains the furthest stage ------------------------------------

ACTIONS = st.one_of(
    st.tuples(st.just("move"), st.sampled_from("DCBA")),
    st.tuples(st.just("win"), st.none()),
    st.tuples(st.just("lose"), st.none()),
    st.tuples(st.just("reopen"), st.none()),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(actions=st.lists(ACTIONS, max_size=12), strict=st.booleans(), first=st.sampled_from("DCBA"))
def test_history_always_explains_furthest_stage(org, reason, actions, strict, first):
    """For any sequence of moves, wins, losses and reopens, the furthest stage is the
    highest-placed open stage the history ever entered, and there is one StageChange
    per successful action plus the creation."""
    pipeline = make_pipeline("dcba", checklist_mode="strict" if strict else "advisory")
    opp = make_opp(org, pipeline, first)
    succeeded = 0
    for action, code in actions:
        fresh = reload(opp)
        try:
            if action == "move":
                if code == fresh.stage.code:
                    continue  # not a change; covered by its own test
                services.move_opportunity(
                    fresh, stage(pipeline, code), actor=org.east_rep, version=fresh.version
                )
            elif action == "win":
                services.win_opportunity(fresh, actor=org.east_rep, version=fresh.version)
            elif action == "lose":
                services.lose_opportunity(fresh, reason, actor=org.east_rep, version=fresh.version)
            else:
                services.reopen_opportunity(fresh, actor=org.east_rep, version=fresh.version)
        except ServiceError:
            assert reload(opp).version == fresh.version
            continue
        succeeded += 1
        entered = Stage.objects.filter(
            pk__in=StageChange.objects.filter(opportunity=opp).values("to_stage"), kind="open"
        )
        assert reload(opp).furthest_stage == entered.order_by("-position").first()
    assert StageChange.objects.filter(opportunity=opp).count() == 1 + succeeded
    assert reload(opp).version == 1 + succeeded
