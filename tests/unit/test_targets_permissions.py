"""Who sees and who sets targets and standards: the generic permission checks for a rep's
target, and the write rules (a rep sets nothing, a manager only inside their subtree, an
admin everything; standards are the admin's), through the services and the API."""

from datetime import date

import pytest

from loudou.core.exceptions import Conflict, NotPermitted
from loudou.targets import services
from loudou.targets.models import Standard, Target
from tests.permissions import ADMIN, MANAGER, OWNER, PermissionChecks


class TestRepTargetPermissions(PermissionChecks):
    """A rep's target is seen by the rep, their manager and an admin; not by a teammate,
    another team's rep or manager (404 in the API, absent from the list)."""

    api_url = "/api/v1/targets/{obj.pk}"
    api_list_url = "/api/v1/targets"
    visible_actors = frozenset({OWNER, MANAGER, ADMIN})

    def make_object(self, org, owner):
        return services.set_target(org.admin, level="rep", user=owner, measure="signed",
                                   period="month", start=date(2026, 11, 1), target=100)  # fmt: skip

    def share(self, obj, user):
        return False


class TestSubteamRepTargetPermissions(TestRepTargetPermissions):
    """The same for a rep of the sub-team: the parent team's manager sees it."""

    owner = "sub_rep"
    team_rep = "east_rep"


def _set(actor, **owner):
    level = "rep" if "user" in owner else "team" if "team" in owner else "company"
    return services.set_target(actor, level=level, measure="visits", period="month",
                               start=date(2026, 1, 1), target=10, **owner)  # fmt: skip


def test_rep_cannot_set_even_their_own_target(org):
    """A rep's attempt to set their own target is refused and stores nothing."""
    with pytest.raises(NotPermitted):
        _set(org.east_rep, user=org.east_rep)
    assert not Target.objects.exists()


def test_manager_sets_inside_the_subtree_only(org):
    """east_mgr sets targets for east_sub and sub_rep, not for south, south_rep or the
    company."""
    _set(org.east_mgr, team=org.east_sub)
    _set(org.east_mgr, user=org.sub_rep)
    for owner in ({"team": org.south}, {"user": org.south_rep}, {}):
        with pytest.raises(NotPermitted):
            _set(org.east_mgr, **owner)
    assert Target.objects.count() == 2


def test_admin_sets_the_company_target(org):
    """Only an admin sets the company's target."""
    assert _set(org.admin).level == "company"


def test_stale_version_is_a_conflict_and_changes_nothing(org):
    """Updating with the version before someone else's change is a 409."""
    row = _set(org.admin, user=org.east_rep)
    services.update_target(row, actor=org.east_mgr, version=1, target=20)
    with pytest.raises(Conflict):
        services.update_target(row, actor=org.admin, version=1, target=30)
    assert Target.objects.get().target == 20


def test_setting_an_existing_key_without_version_is_a_conflict(org):
    """Two people create the same target: the second gets a 409, not a duplicate."""
    _set(org.admin, user=org.east_rep)
    with pytest.raises(Conflict):
        _set(org.east_mgr, user=org.east_rep)
    assert Target.objects.count() == 1


def test_api_rep_gets_403_for_a_write(client, org, bearer):
    """POST /targets by a rep is a 403 JSON; nothing is stored."""
    response = client.post("/api/v1/targets", {"level": "rep", "user_id": org.east_rep.pk,
                           "measure": "visits", "period": "month", "start": "2026-01-01",
                           "target": "5"}, content_type="application/json",
                           headers=bearer(org.east_rep))  # fmt: skip
    assert response.status_code == 403
    assert not Target.objects.exists()


def test_api_manager_naming_a_rep_outside_is_422(client, org, bearer):
    """A manager naming a rep outside their subtree gets a 422 on user_id, as for an
    unknown id."""
    response = client.post("/api/v1/targets", {"level": "rep", "user_id": org.south_rep.pk,
                           "measure": "visits", "period": "month", "start": "2026-01-01",
                           "target": "5"}, content_type="application/json",
                           headers=bearer(org.east_mgr))  # fmt: skip
    assert response.status_code == 422
    assert not Target.objects.exists()


def test_api_resolve_answers_tiers_actual_and_percent(client, org, bearer):
    """GET /targets/resolve for a team's quarter gives the roll-up of its months."""
    for m in (10, 11, 12):
        services.set_target(org.admin, level="team", team=org.east, measure="visits",
                            period="month", start=date(2026, m, 1), target=10)  # fmt: skip
    response = client.get(
        f"/api/v1/targets/resolve?measure=visits&period=2026Q4&team={org.east.pk}",
        headers=bearer(org.east_mgr),
    )
    assert response.status_code == 200
    data = response.json()
    assert (data["tiers"]["target"], data["tiers"]["source"], data["tiers"]["months"]) == (
        "30.00", "rolled_up", 3,
    )  # fmt: skip
    assert data["set"] is None
    assert data["actual"] == "0"
    assert data["percent"] == 0.0


def test_api_resolve_other_team_is_422(client, org, bearer):
    """A rep asking for another team's target gets a 422 on ``team``."""
    response = client.get(
        f"/api/v1/targets/resolve?measure=visits&period=2026Q4&team={org.south.pk}",
        headers=bearer(org.east_rep),
    )
    assert response.status_code == 422


def test_standards_are_written_by_admins_only(org, client, bearer):
    """A manager cannot add a standard (service 403, API 403); an admin can."""
    with pytest.raises(NotPermitted):
        services.create_standard(org.east_mgr, measure="visits", period="month", minimum=4)
    response = client.post("/api/v1/standards", {"measure": "visits", "period": "month",
                           "minimum": "4"}, content_type="application/json",
                           headers=bearer(org.east_mgr))  # fmt: skip
    assert response.status_code == 403
    assert not Standard.objects.exists()
    response = client.post("/api/v1/standards", {"measure": "visits", "period": "month",
                           "level": "junior", "minimum": "4"}, content_type="application/json",
                           headers=bearer(org.admin))  # fmt: skip
    assert response.status_code == 201
    duplicate = client.post("/api/v1/standards", {"measure": "visits", "period": "month",
                            "level": "junior", "minimum": "5"}, content_type="application/json",
                            headers=bearer(org.admin))  # fmt: skip
    assert duplicate.status_code == 409
