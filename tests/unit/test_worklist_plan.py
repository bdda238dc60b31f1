"""The PDCA daily plan services: seven items at most, carry-over, versions, owner only."""

from datetime import date, time, timedelta

import pytest
from django.db import IntegrityError, transaction

from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.customers.services import create_account
from loudou.worklist import services
from loudou.worklist.models import DailyPlan, PlanItem, WorklistSettings

DAY = date(2026, 11, 23)


def _fill(user, day, n, status="planned"):
    return [
        services.add_item(user, day, actor=user, text=f"Item {i + 1}", status=status)
        for i in range(n)
    ]


def test_first_item_creates_the_plan(org):
    """Adding an item creates the day's plan; positions count from 1."""
    item = services.add_item(org.east_rep, DAY, actor=org.east_rep, text=" Call Hengxin ")
    plan = DailyPlan.objects.get(user=org.east_rep, day=DAY)
    assert (item.plan_id, item.position, item.text, item.category, item.status) == (
        plan.pk, 1, "Call Hengxin", "key", "planned",
    )  # fmt: skip


def test_eighth_item_refused(org):
    """A plan holds seven items; the eighth is a field error on text, and nothing is
    added."""
    _fill(org.east_rep, DAY, 7)
    with pytest.raises(ValidationFailed) as exc:
        services.add_item(org.east_rep, DAY, actor=org.east_rep, text="One more")
    assert (exc.value.field, exc.value.code, exc.value.status) == ("text", "plan_full", 422)
    assert PlanItem.objects.filter(plan__user=org.east_rep).count() == 7


def test_database_refuses_an_eighth_position(org):
    """The database itself refuses a position outside 1..7 or a repeated one."""
    first = _fill(org.east_rep, DAY, 1)[0]
    with pytest.raises(IntegrityError), transaction.atomic():
        PlanItem.objects.create(plan=first.plan, position=8, text="Sneaked in")
    with pytest.raises(IntegrityError), transaction.atomic():
        PlanItem.objects.create(plan=first.plan, position=1, text="Same place")


def test_empty_text_refused(org):
    """An item needs words."""
    with pytest.raises(ValidationFailed) as exc:
        services.add_item(org.east_rep, DAY, actor=org.east_rep, text="   ")
    assert exc.value.field == "text"
    assert not DailyPlan.objects.exists()


def test_delete_moves_the_rest_up(org):
    """Removing the second of three items renumbers the third to 2."""
    items = _fill(org.east_rep, DAY, 3)
    services.delete_item(items[1], actor=org.east_rep, version=1)
    assert list(PlanItem.objects.order_by("position").values_list("text", "position")) == [
        ("Item 1", 1), ("Item 3", 2),
    ]  # fmt: skip


def test_item_version_conflict(org):
    """A stale item version is refused and changes nothing."""
    item = _fill(org.east_rep, DAY, 1)[0]
    services.update_item(item, actor=org.east_rep, version=1, status="done")
    with pytest.raises(Conflict):
        services.update_item(item, actor=org.east_rep, version=1, status="not_done")
    item.refresh_from_db()
    assert (item.status, item.version) == ("done", 2)


def test_plan_version_conflict(org):
    """The Check/Act texts carry the plan's version: a stale save is refused."""
    plan = services.update_plan(org.east_rep, DAY, actor=org.east_rep, version=0, problems="A")
    assert plan.version == 1
    with pytest.raises(Conflict):
        services.update_plan(org.east_rep, DAY, actor=org.east_rep, version=0, problems="B")
    plan.refresh_from_db()
    assert plan.problems == "A"


def test_ticking_an_item_does_not_stale_the_review(org):
    """Changing an item's status leaves the plan's version alone, so a half-written
    Check/Act form still saves."""
    item = _fill(org.east_rep, DAY, 1)[0]
    version = DailyPlan.objects.get().version
    services.update_item(item, actor=org.east_rep, status="done")
    plan = services.update_plan(
        org.east_rep, DAY, actor=org.east_rep, version=version, not_done_well="Late call"
    )
    assert plan.not_done_well == "Late call"


def test_only_the_owner_writes(org):
    """A manager reads a rep's plan but cannot change it."""
    item = _fill(org.east_rep, DAY, 1)[0]
    with pytest.raises(NotPermitted):
        services.add_item(org.east_rep, DAY, actor=org.east_mgr, text="Do this")
    with pytest.raises(NotPermitted):
        services.update_item(item, actor=org.east_mgr, status="done")
    with pytest.raises(NotPermitted):
        services.update_plan(org.east_rep, DAY, actor=org.east_mgr, problems="x")
    assert PlanItem.objects.get().status == "planned"


def test_carry_over_unfinished(org):
    """Carrying over copies the planned, partly done and not done items (as planned,
    linked to what they continue), not the done ones, and each only once."""
    rep = org.east_rep
    done, partly, planned, not_done = _fill(rep, DAY, 4)
    services.update_item(done, actor=rep, status="done")
    services.update_item(partly, actor=rep, status="partly", note="half")
    services.update_item(not_done, actor=rep, status="not_done")
    plan, n = services.carry_over(rep, DAY, DAY + timedelta(days=1), actor=rep)
    assert n == 3
    rows = list(plan.items.order_by("position").values_list("text", "status", "carried_from"))
    assert rows == [
        ("Item 2", "planned", partly.pk), ("Item 3", "planned", planned.pk),
        ("Item 4", "planned", not_done.pk),
    ]  # fmt: skip
    with pytest.raises(ValidationFailed) as exc:
        services.carry_over(rep, DAY, DAY + timedelta(days=1), actor=rep)
    assert exc.value.code == "nothing"


def test_carry_over_refused_when_full(org):
    """When the unfinished items do not fit in the next day's seven, nothing is carried."""
    rep = org.east_rep
    _fill(rep, DAY, 2)
    tomorrow = DAY + timedelta(days=1)
    _fill(rep, tomorrow, 6)
    with pytest.raises(ValidationFailed) as exc:
        services.carry_over(rep, DAY, tomorrow, actor=rep)
    assert exc.value.code == "plan_full"
    assert PlanItem.objects.filter(plan__day=tomorrow).count() == 6
    assert not PlanItem.objects.filter(carried_from__isnull=False).exists()


def test_link_must_be_visible(org):
    """An item may link only a record the user can see."""
    theirs = create_account(actor=org.south_rep, name="South account")
    with pytest.raises(ValidationFailed) as exc:
        services.add_item(org.east_rep, DAY, actor=org.east_rep, text="Visit", account=theirs)
    assert exc.value.field == "account"
    mine = create_account(actor=org.east_rep, name="Mine")
    item = services.add_item(org.east_rep, DAY, actor=org.east_rep, text="Visit", account=mine)
    assert item.account == mine


def test_prospecting_block(org):
    """The prospecting block defaults to 09:30–11:00, is set per person, must end after
    it starts, and a stale version is refused."""
    rep = org.east_rep
    assert services.prospecting_block(rep).start == time(9, 30)
    services.set_prospecting_time(rep, actor=rep, start=time(8), end=time(9), version=0)
    with pytest.raises(ValidationFailed):
        services.set_prospecting_time(rep, actor=rep, start=time(9), end=time(8))
    with pytest.raises(Conflict):
        services.set_prospecting_time(rep, actor=rep, start=time(7), end=time(8), version=0)
    row = WorklistSettings.objects.get(user=rep)
    assert (row.prospecting_start, row.prospecting_end) == (time(8), time(9))
