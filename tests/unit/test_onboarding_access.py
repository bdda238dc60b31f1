"""Who sees which roadmap (pages, API, CLI), the admin's editing, the team view's fixed
number of queries, and the pages in both languages."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loudou.onboarding import queries
from loudou.onboarding.models import Band, Metric, Standard
from loudou.org.models import Role
from loudou.org.services import create_user

pytestmark = pytest.mark.django_db


def hire(user, days_ago):
    user.hire_date = timezone.localdate() - timedelta(days=days_ago)
    user.save(update_fields=["hire_date"])
    return user


@pytest.fixture
def onboarding(org):
    """east_rep in months 0–3, sub_rep in training, south_rep graduated, east_rep2 with
    no hire date."""
    hire(org.east_rep, 60)
    hire(org.sub_rep, 5)
    hire(org.south_rep, 500)
    return org


# --- scope -------------------------------------------------------------------------------


def test_roadmap_scope_rep_self_manager_subtree_admin_all(onboarding):
    """A rep may open only their own roadmap; a manager their subtree; an admin all."""
    o = onboarding
    scope = lambda u: set(queries.roadmap_users(u).values_list("username", flat=True))  # noqa: E731
    assert scope(o.east_rep) == {"east_rep"}
    assert scope(o.east_mgr) == {"east_mgr", "east_rep", "east_rep2", "sub_rep"}
    assert scope(o.south_mgr) == {"south_mgr", "south_rep"}
    assert "south_rep" in scope(o.admin) and "east_rep" in scope(o.admin)


def test_api_progress_outside_scope_is_404(client, onboarding, bearer):
    """GET /onboarding/progress?user= : yourself 200, a colleague 404 for a rep, the
    subtree 200 for a manager, another team 404, an id that does not exist 404."""
    o = onboarding
    url = "/api/v1/onboarding/progress"
    rep = bearer(o.east_rep)
    mgr = bearer(o.east_mgr)
    mine = client.get(url, headers=rep)
    assert mine.status_code == 200
    assert mine.json()["user"]["username"] == "east_rep"
    assert mine.json()["band"] is not None
    assert client.get(url, {"user": o.east_rep2.pk}, headers=rep).status_code == 404
    assert client.get(url, {"user": o.sub_rep.pk}, headers=mgr).status_code == 200
    assert client.get(url, {"user": o.south_rep.pk}, headers=mgr).status_code == 404
    assert client.get(url, {"user": 999999}, headers=bearer(o.admin)).status_code == 404


def test_api_team_lists_the_managers_reps(client, onboarding, bearer):
    """The team endpoint lists the active reps of the caller's subtree with status."""
    o = onboarding
    data = client.get("/api/v1/onboarding/team", headers=bearer(o.east_mgr)).json()
    status = {r["user"]["username"]: r["status"] for r in data["reps"]}
    assert status == {"east_rep": "onboarding", "sub_rep": "onboarding",
                      "east_rep2": "no_hire_date"}  # fmt: skip
    rep_view = client.get("/api/v1/onboarding/team", headers=bearer(o.east_rep)).json()
    assert [r["user"]["username"] for r in rep_view["reps"]] == ["east_rep"]


def test_pages_follow_the_same_scope(client, onboarding):
    """A rep opening a colleague's roadmap page gets a 404; the manager gets it."""
    o = onboarding
    client.force_login(o.east_rep)
    assert client.get(f"/onboarding/reps/{o.east_rep2.pk}/").status_code == 404
    assert client.get("/onboarding/bands/").status_code == 404
    client.force_login(o.east_mgr)
    assert client.get(f"/onboarding/reps/{o.sub_rep.pk}/").status_code == 200
    assert client.get(f"/onboarding/reps/{o.south_rep.pk}/").status_code == 404


# --- editing -----------------------------------------------------------------------------


def test_only_an_admin_edits_standards(client, onboarding, bearer):
    """A manager's PATCH is refused (403) and changes nothing; the admin's is saved."""
    o = onboarding
    standard = Standard.objects.get(metric=Metric.NEW_ACCOUNTS)
    url = f"/api/v1/onboarding/standards/{standard.pk}"
    refused = client.patch(url, {"value": "12"}, content_type="application/json",
                           headers=bearer(o.east_mgr))  # fmt: skip
    assert refused.status_code == 403
    standard.refresh_from_db()
    assert standard.value == 10
    ok = client.patch(url, {"value": "12"}, content_type="application/json",
                      headers=bearer(o.admin))  # fmt: skip
    assert ok.status_code == 200
    standard.refresh_from_db()
    assert standard.value == 12


def test_a_range_without_upper_end_is_a_field_error(client, onboarding, bearer):
    """API: "between" with no upper end is a 422 naming value_max; nothing is created."""
    o = onboarding
    band = Band.objects.get(from_month=0)
    before = band.standards.count()
    answer = client.post(
        f"/api/v1/onboarding/bands/{band.pk}/standards",
        {"metric": "visits", "scope": "weekly", "comparison": "between", "value": "6"},
        content_type="application/json", headers=bearer(o.admin),
    )  # fmt: skip
    assert answer.status_code == 422
    assert "value_max" in answer.json()["errors"]
    assert band.standards.count() == before


def test_admin_page_shows_field_errors_over_htmx(client, onboarding, english):
    """The band form answered over htmx with an overlapping span comes back as the band's
    card with the error on the field (422), and the band is unchanged."""
    o = onboarding
    client.force_login(o.admin)
    band = Band.objects.get(from_month=3)
    answer = client.post(
        f"/onboarding/bands/{band.pk}/",
        {f"b{band.pk}-name": band.name, f"b{band.pk}-name_en": band.name_en,
         f"b{band.pk}-from_month": "2", f"b{band.pk}-to_month": "6"},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert answer.status_code == 422
    body = answer.content.decode()
    assert f'id="band-{band.pk}"' in body
    assert "Overlaps the band" in body
    assert "<html" not in body
    band.refresh_from_db()
    assert band.from_month == 3


# --- cost --------------------------------------------------------------------------------


def make_reps(org, n, start=0):
    return [
        create_user(f"r{start + i}", name=f"r{start + i}", role=Role.REP, team=org.east,
                    hire_date=timezone.localdate() - timedelta(days=10 + 40 * (i % 9)))
        for i in range(n)
    ]  # fmt: skip


def test_team_view_takes_a_fixed_number_of_queries(org, django_assert_max_num_queries):
    """The manager's team view costs the same number of queries for 9 reps as for 45
    (both spread over every band, so the same standards are in force)."""
    make_reps(org, 9)
    with CaptureQueriesContext(connection) as small:
        first = queries.team_summary(org.east_mgr)
    assert {p["band_id"] for _r, p in first["onboarding"]} == set(
        Band.objects.values_list("pk", flat=True)
    )
    make_reps(org, 36, start=9)
    with django_assert_max_num_queries(len(small.captured_queries)):
        summary = queries.team_summary(org.east_mgr)
    assert len(summary["onboarding"]) == 45


def test_team_page_queries_do_not_grow(client, org, django_assert_max_num_queries):
    """The team page itself: no query per rep either."""
    make_reps(org, 9)
    client.force_login(org.east_mgr)
    with CaptureQueriesContext(connection) as small:
        client.get("/onboarding/")
    make_reps(org, 27, start=9)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get("/onboarding/").status_code == 200


# --- pages in both languages ---------------------------------------------------------------


@pytest.mark.parametrize(("language", "title"), [("en", "My onboarding roadmap"),
                                                 ("zh-hans", "zh")])  # fmt: skip
def test_rep_page_in_both_languages(client, onboarding, language, title):
    """The rep's page renders in English and in Chinese with the timeline and the band's
    name in that language (the band names come from the data)."""
    o = onboarding
    o.east_rep.language = language
    o.east_rep.save(update_fields=["language"])
    client.force_login(o.east_rep)
    body = client.get("/onboarding/", headers={"Accept-Language": language}).content.decode()
    assert 'data-testid="timeline"' in body
    if language == "en":
        assert title in body and "Months 0–3" in body
    else:
        assert 'lang="zh-hans"' in body and "第 0–3 个月" in body


def test_empty_states(client, onboarding):
    """No hire date and graduated reps get their own explanation instead of standards."""
    o = onboarding
    client.force_login(o.east_rep2)
    assert 'data-testid="no-hire-date"' in client.get("/onboarding/").content.decode()
    client.force_login(o.south_rep)
    assert 'data-testid="graduated"' in client.get("/onboarding/").content.decode()


def test_dashboard_card(client, onboarding):
    """The card: a rep onboarding sees band and week, a manager the count behind, a
    graduated rep nothing."""
    o = onboarding
    client.force_login(o.east_rep)
    assert 'data-testid="onboarding-card"' in client.get("/onboarding/card/").content.decode()
    client.force_login(o.east_mgr)
    assert "onboarding-card" in client.get("/onboarding/card/").content.decode()
    client.force_login(o.south_rep)
    assert client.get("/onboarding/card/").content == b""


# --- command line ------------------------------------------------------------------------


def test_cli_json_for_a_team(onboarding):
    """`loudou roadmap --team East --format json` lists the subtree's reps."""
    out = StringIO()
    call_command("roadmap", "--team", "East", "--format", "json", stdout=out)
    rows = {r["user"]: r for r in json.loads(out.getvalue())}
    assert set(rows) == {"east_rep", "east_rep2", "sub_rep"}
    assert rows["sub_rep"]["band"] and rows["east_rep2"]["status"] == "no_hire_date"
