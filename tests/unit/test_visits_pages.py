"""Visit pages: planning from the account page, the phone page's check-in / record /
reschedule / cancel through htmx, refusals shown on the page, who sees which button, the
visits list (today first, scope) and its query count."""

from datetime import timedelta

import pytest
from django.utils import timezone

from loudou.activities.models import Activity, Visit
from loudou.activities.visits import services
from loudou.customers.services import create_account, create_contact
from loudou.tasks.models import Task
from tests.unit.test_visits_services import NORTH_320, place, plan, snapshot

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def account(org):
    return place(create_account(actor=org.east_rep, name="华东机械"))


@pytest.fixture
def visit(org, account):
    return plan(org.east_rep, account)


@pytest.fixture
def rep(client, org):
    client.force_login(org.east_rep)
    return client


def test_account_page_has_visit_card_and_plan_link(rep, account, visit):
    """The account page lists its planned visits and links to planning one for it."""
    html = rep.get(account.get_absolute_url()).content.decode()
    assert 'data-testid="account-visits"' in html
    assert f"/activities/visits/plan/?account={account.pk}&next=" in html
    assert f'href="{visit.get_absolute_url()}"' in html


def test_contact_page_has_no_visit_card(rep, account):
    """Only the account page carries the visits card."""
    contact = create_contact(account, actor=account.owner, name="王经理")
    assert (
        'data-testid="account-visits"' not in rep.get(contact.get_absolute_url()).content.decode()
    )


def test_plan_from_account_page(rep, org, account):
    """Planning posts the form and returns to the account page; the visit and its task
    exist for the rep at the chosen time."""
    contact = create_contact(account, actor=org.east_rep, name="王经理")
    form = rep.get(f"/activities/visits/plan/?account={account.pk}").content.decode()
    assert "王经理" in form
    response = rep.post("/activities/visits/plan/", {
        "account": account.pk, "planned_for": "2030-05-06T10:30", "contact": contact.pk,
        "topic": "送样品", "next": account.get_absolute_url(),
    })  # fmt: skip
    assert response.status_code == 302 and response.url == account.get_absolute_url()
    visit = Visit.objects.get()
    local = timezone.localtime(visit.planned_for)
    assert (local.strftime("%Y-%m-%d %H:%M"), visit.contact, visit.topic) == (
        "2030-05-06 10:30", contact, "送样品",
    )  # fmt: skip
    assert Task.objects.get(pk=visit.task_id).kind == "visit"


def test_plan_refusal_shows_error_and_saves_nothing(rep, org, account):
    """A contact of another account is refused on the form (422); nothing is saved."""
    other = create_account(actor=org.east_rep, name="别的")
    stranger = create_contact(other, actor=org.east_rep, name="路人")
    response = rep.post("/activities/visits/plan/", {
        "account": account.pk, "planned_for": "2030-05-06T10:30", "contact": stranger.pk,
    })  # fmt: skip
    assert response.status_code == 422
    assert (Visit.objects.count(), Task.objects.count()) == (0, 0)


def test_plan_page_for_account_out_of_scope_is_404(client, org, account):
    """Another team's rep cannot open the plan form for the account."""
    client.force_login(org.south_rep)
    assert client.get(f"/activities/visits/plan/?account={account.pk}").status_code == 404


def test_plan_next_must_be_local(rep, account):
    """A ``next`` to another site is ignored: the rep lands on the visit page."""
    response = rep.post("/activities/visits/plan/", {
        "account": account.pk, "planned_for": "2030-05-06T10:30", "next": "https://evil.example/",
    })  # fmt: skip
    assert response.url == Visit.objects.get().get_absolute_url()


def test_owner_sees_check_in_button_with_explanation(english, rep, visit):
    """The owner's page explains what the check-in stores before the big button."""
    html = rep.get(visit.get_absolute_url()).content.decode()
    assert 'data-testid="checkin-button"' in html
    assert html.index("Only this one position is read") < html.index('data-testid="checkin-button"')


def test_manager_sees_record_form_but_no_check_in(client, org, visit):
    """The manager may record or cancel the rep's visit, not check in for them."""
    client.force_login(org.east_mgr)
    html = client.get(visit.get_absolute_url()).content.decode()
    assert 'data-testid="checkin-button"' not in html and 'data-testid="record-form"' in html


def test_teammate_shared_sees_no_forms(client, org, visit):
    """A colleague the visit is shared with sees it but no form."""
    visit.shared_with.add(org.east_rep2)
    client.force_login(org.east_rep2)
    html = client.get(visit.get_absolute_url()).content.decode()
    assert 'data-testid="record-form"' not in html and 'data-testid="checkin-button"' not in html


def test_htmx_check_in_shows_distance_then_record(rep, visit, english):
    """Checking in (htmx) answers the visit's body with "320 m from the address" and the
    record form open."""
    response = rep.post(
        f"/activities/visits/{visit.pk}/check-in/",
        {"latitude": NORTH_320[0], "longitude": NORTH_320[1], "accuracy": "18", "version": 1},
        headers=HTMX,
    )  # fmt: skip
    html = response.content.decode()
    assert '<span data-testid="checkin-distance">320 m from the address</span>' in html
    assert 'id="record-panel"' in html and 'collapse show" id="record-panel"' in html
    assert Visit.objects.get(pk=visit.pk).distance_m == 320


def test_far_check_in_warns(rep, visit, english, settings):
    """A check-in over the threshold shows the far warning."""
    settings.LOUDOU_VISIT_FAR_METRES = 200
    html = rep.post(
        f"/activities/visits/{visit.pk}/check-in/",
        {"latitude": NORTH_320[0], "longitude": NORTH_320[1]}, headers=HTMX,
    ).content.decode()  # fmt: skip
    assert "far from the address" in html and "alert-warning" in html


def test_bad_check_in_shows_error_and_changes_nothing(rep, visit, english):
    """Coordinates out of range come back as a message under the button; the visit is
    unchanged."""
    before = snapshot(visit)
    html = rep.post(
        f"/activities/visits/{visit.pk}/check-in/", {"latitude": "95", "longitude": "121"},
        headers=HTMX,
    ).content.decode()  # fmt: skip
    assert "The latitude must be a number from -90 to 90." in html
    assert snapshot(visit) == before


def test_manager_check_in_is_refused(client, org, visit, english):
    """A manager posting a check-in gets the refusal; nothing changes."""
    client.force_login(org.east_mgr)
    before = snapshot(visit)
    response = client.post(
        f"/activities/visits/{visit.pk}/check-in/", {"latitude": "31", "longitude": "121"}
    )
    assert response.status_code == 302
    assert snapshot(visit) == before


def test_htmx_record_after_check_in(rep, org, visit, english):
    """Recording (htmx) logs the visit activity with the form's fields, completes the
    task and shows the done summary."""
    services.check_in(visit, actor=org.east_rep, latitude=NORTH_320[0], longitude=NORTH_320[1])
    html = rep.post(f"/activities/visits/{visit.pk}/record/", {
        "outcome": "visited", "notes": "见了采购", "gave_something": "on", "gave_what": "样品",
        "duration_minutes": "40", "version": 2,
    }, headers=HTMX).content.decode()  # fmt: skip
    activity = Activity.objects.get()
    assert (activity.kind, activity.outcome, activity.notes, activity.gave_what) == (
        "visit", "visited", "见了采购", "样品",
    )  # fmt: skip
    assert activity.duration_minutes == 40
    assert Task.objects.get(pk=visit.task_id).done_at is not None
    assert 'data-testid="visit-done"' in html and "Visit recorded." in html
    assert 'data-testid="no-check-in"' not in html


def test_record_without_check_in_is_flagged(rep, visit, english):
    """A visit recorded without check-in says so on its page."""
    rep.post(f"/activities/visits/{visit.pk}/record/", {"outcome": "visited"}, headers=HTMX)
    html = rep.get(visit.get_absolute_url()).content.decode()
    assert 'data-testid="no-check-in"' in html


def test_record_with_stale_version_shows_conflict(rep, org, visit):
    """A record form from before someone else's change is refused; nothing is logged."""
    services.update_visit(visit, actor=org.east_mgr, topic="改了")
    html = rep.post(
        f"/activities/visits/{visit.pk}/record/", {"outcome": "visited", "version": 1},
        headers=HTMX,
    ).content.decode()  # fmt: skip
    assert 'role="alert"' in html
    assert Activity.objects.count() == 0


def test_cancel_needs_reason(rep, visit):
    """Cancelling without a reason shows the field error; with one the visit is
    cancelled and its task gone."""
    empty = rep.post(f"/activities/visits/{visit.pk}/cancel/", {"reason": ""}, headers=HTMX)
    assert 'collapse show" id="cancel-panel"' in empty.content.decode()
    assert Visit.objects.get(pk=visit.pk).status == "planned"
    rep.post(f"/activities/visits/{visit.pk}/cancel/", {"reason": "客户出差"}, headers=HTMX)
    assert Visit.objects.get(pk=visit.pk).status == "cancelled"
    assert not Task.objects.filter(pk=visit.task_id).exists()


def test_reschedule_from_page(rep, visit):
    """The reschedule form moves the visit and its task."""
    rep.post(
        f"/activities/visits/{visit.pk}/reschedule/",
        {"planned_for": "2030-01-02T09:00", "version": 1},
    )  # fmt: skip
    moved = Visit.objects.get(pk=visit.pk)
    assert timezone.localtime(moved.planned_for).strftime("%Y-%m-%d %H:%M") == "2030-01-02 09:00"
    assert Task.objects.get(pk=visit.task_id).due_at == moved.planned_for


def test_actions_out_of_scope_are_404(client, org, visit):
    """Every action on a visit the user cannot see is a 404 that changes nothing."""
    client.force_login(org.south_rep)
    before = snapshot(visit)
    for action, data in [
        ("check-in", {"latitude": "31", "longitude": "121"}),
        ("record", {"outcome": "visited"}),
        ("reschedule", {"planned_for": "2030-01-02T09:00"}),
        ("cancel", {"reason": "x"}),
    ]:
        assert client.post(f"/activities/visits/{visit.pk}/{action}/", data).status_code == 404
    assert snapshot(visit) == before


def test_list_today_first_and_own_only(rep, org, account):
    """The rep's list shows today's visits before later ones and not a teammate's."""
    later = plan(org.east_rep, account, hours=24 * 3)
    start = timezone.localtime().replace(hour=23, minute=0, second=0, microsecond=0)
    today = services.plan_visit(org.east_rep, account=account, planned_for=start)
    mates = services.plan_visit(
        org.east_rep2, account=create_account(actor=org.east_rep2, name="同事的客户"),
        planned_for=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    html = rep.get("/activities/visits/").content.decode()
    assert html.index(today.get_absolute_url()) < html.index(later.get_absolute_url())
    assert mates.get_absolute_url() not in html


def test_list_queries_do_not_grow(client, org, account, django_assert_max_num_queries):
    """The manager's visits page costs the same number of queries for 2 or 20 visits."""
    client.force_login(org.east_mgr)
    for i in range(2):
        plan(org.east_rep, account, hours=i + 1)
    with django_assert_max_num_queries(20) as few:
        assert client.get("/activities/visits/").status_code == 200
    for i in range(18):
        plan(org.east_rep, account, hours=-(i + 1) * 24)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/activities/visits/")
