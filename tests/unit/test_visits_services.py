"""Visit services: planning creates the task, rescheduling moves it, check-in stores the
position and the exact distance, recording logs the activity and completes the task,
cancelling removes the task; refusals change nothing; who may do what."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from loudou.activities.choices import VisitStatus
from loudou.activities.models import Activity, Visit
from loudou.activities.visits import services
from loudou.activities.visits.geo import haversine_m
from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.customers.models import Account
from loudou.customers.services import create_account, create_contact
from loudou.tasks.models import Task
from tests.unit.test_activities_services import make_subjects

pytestmark = pytest.mark.django_db

# People's Square, Shanghai; a point 0.00288° (320 m) north of it.
SQUARE = (Decimal("31.230400"), Decimal("121.473700"))
NORTH_320 = ("31.233280", "121.473700")


# --- helpers (imported by the other test_visits_* modules) ------------------------------


def place(account, lat_lng=SQUARE):
    """Give ``account`` coordinates (as its edit page would) and return it fresh."""
    Account.objects.filter(pk=account.pk).update(latitude=lat_lng[0], longitude=lat_lng[1])
    account.refresh_from_db()
    return account


def plan(actor, account, *, hours=2, **kwargs):
    return services.plan_visit(
        actor, account=account, planned_for=timezone.now() + timedelta(hours=hours), **kwargs
    )


def snapshot(visit):
    """Every stored field of the visit and of its task, to prove a refusal changed
    nothing."""
    fresh = Visit.objects.get(pk=visit.pk)
    row = {f.attname: getattr(fresh, f.attname) for f in Visit._meta.concrete_fields}
    task = Task.objects.filter(pk=fresh.task_id).values().first()
    return row, task, Activity.objects.count()


@pytest.fixture
def s(org):
    subjects = make_subjects(org.east_rep)
    place(subjects.account)
    return subjects


# --- the distance ---------------------------------------------------------------------------


def test_haversine_one_degree_on_the_equator():
    """One degree of longitude on the equator is 2πR/360 = 111,194.9 m (R = 6,371 km)."""
    assert haversine_m(0, 0, 0, 1) == 111_195


def test_haversine_is_symmetric_and_zero_on_the_spot():
    """The distance is the same both ways and zero from a point to itself."""
    assert haversine_m(*SQUARE, *NORTH_320) == haversine_m(*NORTH_320, *SQUARE) == 320
    assert haversine_m(*SQUARE, *SQUARE) == 0


def test_haversine_antipodes():
    """Opposite points of the sphere are half its circumference apart."""
    assert haversine_m(0, 0, 0, 180) == 20_015_087


# --- planning ---------------------------------------------------------------------------------


def test_plan_creates_visit_task_for_the_owner(org, s):
    """Planning stores the visit and creates a visit task for the owner, due at the
    planned time and linked to the same account, contact and opportunity."""
    when = timezone.now() + timedelta(days=1)
    visit = services.plan_visit(
        org.east_rep, account=s.account, contact=s.contact, opportunity=s.opp,
        planned_for=when, topic="  演示新版本 ",
    )  # fmt: skip
    visit.refresh_from_db()
    task = visit.task
    assert (visit.status, visit.owner, visit.topic, visit.purpose) == (
        "planned", org.east_rep, "演示新版本", "follow_up",
    )  # fmt: skip
    assert (task.kind, task.owner, task.due_at, task.done_at) == ("visit", org.east_rep, when, None)
    assert (task.account_id, task.contact_id, task.opportunity_id) == (
        s.account.pk, s.contact.pk, s.opp.pk,
    )  # fmt: skip
    assert list(task.assignees.all()) == [org.east_rep]
    assert task.key == f"visit:{visit.pk}"


def test_plan_from_contact_fills_the_account(org, s):
    """A visit planned on a contact goes to the contact's account."""
    visit = services.plan_visit(
        org.east_rep, contact=s.contact, planned_for=timezone.now() + timedelta(hours=1)
    )
    assert visit.account == s.account


def test_manager_plans_for_a_rep_of_the_team(org, s):
    """A manager may plan a visit for a rep of their team; the rep owns it and its task."""
    visit = plan(org.east_mgr, s.account, owner=org.east_rep)
    assert (visit.owner, visit.created_by, visit.task.owner) == (
        org.east_rep, org.east_mgr, org.east_rep,
    )  # fmt: skip


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"account": None}, "account"),
        ({"planned_for": None}, "planned_for"),
        ({"purpose": "party"}, "purpose"),
        ({"topic": "x" * 201}, "topic"),
    ],
)
def test_plan_refusals_save_nothing(org, s, kwargs, field):
    """A visit without account or time, with an unknown purpose or an overlong topic is
    refused on its field, and neither a visit nor a task is saved."""
    data = {"account": s.account, "planned_for": timezone.now(), **kwargs}
    with pytest.raises(ValidationFailed) as info:
        services.plan_visit(org.east_rep, **data)
    assert info.value.field == field
    assert (Visit.objects.count(), Task.objects.count()) == (0, 0)


def test_plan_on_account_out_of_scope_is_refused(org, s):
    """A rep cannot plan a visit to another team's account; nothing is saved."""
    with pytest.raises(ValidationFailed):
        plan(org.south_rep, s.account)
    assert (Visit.objects.count(), Task.objects.count()) == (0, 0)


def test_plan_for_someone_outside_the_team_is_refused(org, s):
    """A rep cannot plan a visit for a colleague; a manager not for another team."""
    other = create_account(actor=org.south_rep, name="华南客户")
    with pytest.raises(ValidationFailed) as info:
        plan(org.east_rep, s.account, owner=org.east_rep2)
    assert info.value.field == "owner"
    with pytest.raises(ValidationFailed):
        plan(org.east_mgr, s.account, owner=org.south_rep)
    with pytest.raises(ValidationFailed):
        plan(org.admin, other, owner=org.east_rep)  # east_rep cannot see it
    assert (Visit.objects.count(), Task.objects.count()) == (0, 0)


def test_contact_of_another_account_is_refused(org, s):
    """A contact of another account is refused."""
    other = create_account(actor=org.east_rep, name="别的客户")
    stranger = create_contact(other, actor=org.east_rep, name="路人")
    with pytest.raises(ValidationFailed) as info:
        plan(org.east_rep, s.account, contact=stranger)
    assert info.value.code == "other_account"
    assert Visit.objects.count() == 0


# --- rescheduling -------------------------------------------------------------------------------


def test_reschedule_moves_the_task(org, s):
    """Rescheduling moves the visit and its task; the version goes up."""
    visit = plan(org.east_rep, s.account)
    later = timezone.now() + timedelta(days=3)
    moved = services.reschedule_visit(
        visit, actor=org.east_rep, planned_for=later, version=visit.version
    )
    moved.task.refresh_from_db()
    assert (moved.planned_for, moved.task.due_at, moved.version) == (later, later, 2)


def test_reschedule_stale_version_changes_nothing(org, s):
    """A reschedule from a stale copy is a conflict; the visit and task stay."""
    visit = plan(org.east_rep, s.account)
    services.update_visit(visit, actor=org.east_rep, topic="先改一次")
    before = snapshot(visit)
    with pytest.raises(Conflict):
        services.reschedule_visit(visit, actor=org.east_rep, planned_for=timezone.now(), version=1)
    assert snapshot(visit) == before


def test_reschedule_by_teammate_is_refused(org, s):
    """A teammate who is not the owner's manager may not reschedule."""
    visit = plan(org.east_rep, s.account)
    before = snapshot(visit)
    with pytest.raises(NotPermitted):
        services.reschedule_visit(visit, actor=org.east_rep2, planned_for=timezone.now())
    assert snapshot(visit) == before


def test_manager_reschedules(org, s):
    """The owner's manager may reschedule."""
    visit = plan(org.east_rep, s.account)
    when = timezone.now() + timedelta(days=5)
    assert (
        services.reschedule_visit(visit, actor=org.east_mgr, planned_for=when).planned_for == when
    )


# --- check-in -----------------------------------------------------------------------------------


def test_check_in_stores_position_and_exact_distance(org, s):
    """A check-in 0.00288° north of the account's coordinates stores the position, the
    accuracy, the time and a distance of exactly 320 m."""
    visit = plan(org.east_rep, s.account)
    at = timezone.now()
    done = services.check_in(
        visit, actor=org.east_rep, latitude=NORTH_320[0], longitude=NORTH_320[1],
        accuracy=24.6, at=at,
    )  # fmt: skip
    done.refresh_from_db()
    assert (done.latitude, done.longitude) == (Decimal("31.233280"), Decimal("121.473700"))
    assert (done.accuracy_m, done.distance_m, done.checked_in_at) == (25, 320, at)
    assert (done.is_far, done.status, done.version) == (False, "planned", 2)


def test_far_check_in_is_marked(org, s, settings):
    """A check-in further than LOUDOU_VISIT_FAR_METRES from the address is far."""
    settings.LOUDOU_VISIT_FAR_METRES = 300
    visit = plan(org.east_rep, s.account)
    done = services.check_in(
        visit, actor=org.east_rep, latitude=NORTH_320[0], longitude=NORTH_320[1]
    )
    assert (done.distance_m, done.is_far) == (320, True)


def test_check_in_without_account_coordinates_has_no_distance(org):
    """When the account has no coordinates the position is kept but no distance."""
    account = create_account(actor=org.east_rep, name="没有坐标")
    visit = plan(org.east_rep, account)
    done = services.check_in(visit, actor=org.east_rep, latitude="31.2", longitude="121.4")
    assert (done.latitude, done.distance_m, done.is_far) == (Decimal("31.200000"), None, False)


@pytest.mark.parametrize(
    "lat, lng, accuracy, field",
    [
        ("90.1", "121", None, "latitude"),
        ("-91", "121", None, "latitude"),
        ("31", "180.5", None, "longitude"),
        ("31", "-181", None, "longitude"),
        ("nan", "121", None, "latitude"),
        ("31", "inf", None, "longitude"),
        ("北", "121", None, "latitude"),
        (None, "121", None, "latitude"),
        ("31", "121", -5, "accuracy"),
        ("31", "121", "far", "accuracy"),
    ],
)
def test_check_in_refuses_bad_coordinates_and_changes_nothing(org, s, lat, lng, accuracy, field):
    """Coordinates outside -90..90 / -180..180, not numbers, or a negative accuracy are
    refused on their field; the visit stays unchecked."""
    visit = plan(org.east_rep, s.account)
    before = snapshot(visit)
    with pytest.raises(ValidationFailed) as info:
        services.check_in(visit, actor=org.east_rep, latitude=lat, longitude=lng, accuracy=accuracy)
    assert info.value.field == field
    assert snapshot(visit) == before


@pytest.mark.parametrize("actor", ["east_mgr", "east_rep2", "admin"])
def test_only_the_owner_checks_in(org, s, actor):
    """Not even the owner's manager or an admin may check in for the rep: a check-in
    says where the rep's own phone was."""
    visit = plan(org.east_rep, s.account)
    before = snapshot(visit)
    with pytest.raises(NotPermitted):
        services.check_in(visit, actor=getattr(org, actor), latitude="31", longitude="121")
    assert snapshot(visit) == before


def test_check_in_twice_is_refused(org, s):
    """The second check-in is a conflict and keeps the first position."""
    visit = plan(org.east_rep, s.account)
    services.check_in(visit, actor=org.east_rep, latitude=NORTH_320[0], longitude=NORTH_320[1])
    before = snapshot(visit)
    with pytest.raises(Conflict) as info:
        services.check_in(visit, actor=org.east_rep, latitude="0", longitude="0")
    assert info.value.code == "checked_in"
    assert snapshot(visit) == before


def test_check_in_on_cancelled_visit_is_refused(org, s):
    """A cancelled visit cannot be checked in."""
    visit = plan(org.east_rep, s.account)
    services.cancel_visit(visit, actor=org.east_rep, reason="客户出差")
    before = snapshot(visit)
    with pytest.raises(Conflict):
        services.check_in(visit, actor=org.east_rep, latitude="31", longitude="121")
    assert snapshot(visit) == before


def test_rescheduling_after_check_in_is_refused(org, s):
    """Once checked in the visit is under way: it cannot be moved."""
    visit = plan(org.east_rep, s.account)
    services.check_in(visit, actor=org.east_rep, latitude="31.23", longitude="121.47")
    before = snapshot(visit)
    with pytest.raises(Conflict):
        services.reschedule_visit(
            visit, actor=org.east_rep, planned_for=timezone.now() + timedelta(days=1)
        )
    assert snapshot(visit) == before


# --- recording ---------------------------------------------------------------------------------


def test_record_logs_visit_activity_and_completes_task(org, s):
    """Recording a checked-in visit logs an activity of kind visit with the outcome, the
    notes, what was given and the visit's links, at the check-in time, owned by the rep;
    the task is done and the visit too."""
    visit = plan(org.east_rep, s.account, contact=s.contact, hours=-1)
    arrived = timezone.now() - timedelta(minutes=50)
    services.check_in(
        visit, actor=org.east_rep, latitude="31.2304", longitude="121.4737", at=arrived
    )
    done = services.record_visit(
        visit, actor=org.east_rep, outcome="visited", notes="见了采购", gave_what="样品",
        check_out=True,
    )  # fmt: skip
    a = done.activity
    assert (a.kind, a.outcome, a.notes, a.gave_something, a.gave_what) == (
        "visit", "visited", "见了采购", True, "样品",
    )  # fmt: skip
    assert (a.account, a.contact, a.owner, a.occurred_at, a.purpose) == (
        s.account, s.contact, org.east_rep, arrived, "prospecting",
    )  # fmt: skip
    assert a.duration_minutes == 50  # check-in to check-out
    done.task.refresh_from_db()
    assert (done.status, done.task.done_by, done.version) == ("done", org.east_rep, 3)
    assert done.task.done_at == done.done_at == done.checked_out_at


def test_record_without_check_in(org, s):
    """A visit can be recorded without a check-in: the activity happened at the planned
    time when that has passed, and the visit shows no check-in."""
    visit = plan(org.east_rep, s.account, hours=-3)
    done = services.record_visit(
        visit, actor=org.east_rep, outcome="not_reached", duration_minutes=20
    )
    assert (done.checked_in_at, done.activity.occurred_at, done.activity.outcome) == (
        None, visit.planned_for, "not_reached",
    )  # fmt: skip
    assert done.activity.duration_minutes == 20


def test_record_early_happens_now(org, s):
    """A visit planned for tomorrow but recorded today happened now, not tomorrow."""
    visit = plan(org.east_rep, s.account, hours=24)
    done = services.record_visit(visit, actor=org.east_rep)
    assert timezone.now() - done.activity.occurred_at < timedelta(minutes=1)


def test_manager_records_for_the_rep(org, s):
    """The owner's manager may record the visit; the activity is the rep's."""
    visit = plan(org.east_rep, s.account, hours=-1)
    done = services.record_visit(visit, actor=org.east_mgr)
    assert (done.activity.owner, done.activity.created_by) == (org.east_rep, org.east_mgr)


@pytest.mark.parametrize("outcome", ["cancelled", "reached", ""])
def test_record_refuses_other_outcomes(org, s, outcome):
    """Only a visit's outcomes are accepted; the refusal logs nothing and leaves the
    task open."""
    visit = plan(org.east_rep, s.account)
    before = snapshot(visit)
    with pytest.raises(ValidationFailed):
        services.record_visit(visit, actor=org.east_rep, outcome=outcome)
    assert snapshot(visit) == before


def test_record_twice_is_refused(org, s):
    """A done visit cannot be recorded again: one activity only."""
    visit = plan(org.east_rep, s.account)
    services.record_visit(visit, actor=org.east_rep)
    before = snapshot(visit)
    with pytest.raises(Conflict):
        services.record_visit(visit, actor=org.east_rep)
    assert snapshot(visit) == before


def test_record_by_other_rep_is_refused(org, s):
    """A teammate may not record someone else's visit."""
    visit = plan(org.east_rep, s.account)
    before = snapshot(visit)
    with pytest.raises(NotPermitted):
        services.record_visit(visit, actor=org.east_rep2)
    assert snapshot(visit) == before


def test_refused_activity_rolls_back_the_whole_record(org, s):
    """When the activity is refused (a duration over a day), the task stays open and the
    visit planned: recording is all or nothing."""
    visit = plan(org.east_rep, s.account)
    before = snapshot(visit)
    with pytest.raises(ValidationError) as info:
        services.record_visit(visit, actor=org.east_rep, duration_minutes=5000)
    assert list(info.value.message_dict) == ["duration_minutes"]
    assert snapshot(visit) == before


# --- cancelling ---------------------------------------------------------------------------------


def test_cancel_keeps_reason_and_deletes_open_task(org, s):
    """Cancelling stores the reason and removes the open task from the calendar."""
    visit = plan(org.east_rep, s.account)
    task_pk = visit.task_id
    cancelled = services.cancel_visit(visit, actor=org.east_rep, reason="  客户出差 ")
    assert (cancelled.status, cancelled.cancel_reason, cancelled.task_id) == (
        "cancelled", "客户出差", None,
    )  # fmt: skip
    assert not Task.objects.filter(pk=task_pk).exists()


def test_cancel_without_reason_changes_nothing(org, s):
    """A cancellation needs a reason; without one nothing changes."""
    visit = plan(org.east_rep, s.account)
    before = snapshot(visit)
    with pytest.raises(ValidationFailed) as info:
        services.cancel_visit(visit, actor=org.east_rep, reason="  ")
    assert info.value.field == "reason"
    assert snapshot(visit) == before


def test_cancel_done_visit_is_refused(org, s):
    """A done visit cannot be cancelled."""
    visit = plan(org.east_rep, s.account)
    services.record_visit(visit, actor=org.east_rep)
    before = snapshot(visit)
    with pytest.raises(Conflict):
        services.cancel_visit(visit, actor=org.east_rep, reason="算了")
    assert snapshot(visit) == before


# --- who sees visits ---------------------------------------------------------------------------


def test_visits_are_seen_by_owner_manager_admin_only(org, s):
    """A visit is seen by its owner, their manager and admins; not by a teammate or
    another team."""
    visit = plan(org.east_rep, s.account)
    seen = {
        name: Visit.objects.visible_to(getattr(org, name)).filter(pk=visit.pk).exists()
        for name in ("east_rep", "east_mgr", "admin", "east_rep2", "south_mgr", "south_rep")
    }
    assert seen == {
        "east_rep": True, "east_mgr": True, "admin": True,
        "east_rep2": False, "south_mgr": False, "south_rep": False,
    }  # fmt: skip


class _LateRecord:
    """The demo's draws for a visit recorded without a check-in, as late as it goes: no
    check-in (random ≥ 0.85), the longest duration and the longest delay (randint's top)."""

    def random(self):
        return 0.9

    def randint(self, low, high):
        return high

    def choice(self, items):
        return items[0]


def test_demo_records_a_morning_visit_by_now_at_the_latest(org, s):
    """The demo's visits of the last hours (planned 3 hours ago, recorded "up to 6 hours
    later" without a check-in) are recorded at now at the latest, not in the future the
    service refuses: the demo loads at any hour of the day."""
    from loudou.activities import demo

    when = timezone.now() - timedelta(hours=3, minutes=10)
    visit = services.plan_visit(org.east_rep, account=s.account, planned_for=when)
    before = timezone.now()
    done = demo._do_visit(_LateRecord(), org.east_rep, visit, when)
    assert done.status == VisitStatus.DONE and before <= done.done_at <= timezone.now()
    assert Activity.objects.get(pk=done.activity_id).occurred_at == when
