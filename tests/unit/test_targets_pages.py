"""The targets pages: the year grid with both figures of a quarter, editing a cell in
place (errors and conflicts on the form), the twelve-month entry, the performance list
and its downloads, the standards admin and the dashboard panel, in both languages."""

from datetime import date

import pytest
from django.utils import timezone

from loudou.targets import services
from loudou.targets.models import Standard, Target

LOGIN = "django.contrib.auth.backends.ModelBackend"


def login(client, user, language="en"):
    client.force_login(user, backend=LOGIN)
    client.cookies["django_language"] = language
    return client


def set_month(org, m, target, **owner):
    level = "rep" if "user" in owner else "team" if "team" in owner else "company"
    return services.set_target(org.admin, level=level, measure="signed", period="month",
                               start=date(2026, m, 1), target=target, **owner)  # fmt: skip


@pytest.mark.parametrize(("language", "word"), [("en", "Targets"), ("zh-hans", "目标")])
def test_grid_shows_set_and_rolled_up_quarter(client, org, language, word, settings):
    """The year grid of a rep shows Q4 as set (500) and rolled up (300 from 3 months) when
    they differ; the page renders in English and Chinese."""
    for m in (10, 11, 12):
        set_month(org, m, 100, user=org.east_rep)
    services.set_target(org.admin, level="rep", user=org.east_rep, measure="signed",
                        period="quarter", start=date(2026, 10, 1), target=500)  # fmt: skip
    login(client, org.east_mgr, language)
    response = client.get(f"/targets/?owner=rep-{org.east_rep.pk}&year=2026")
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["nav"] == "targets"
    q4 = next(line for line in response.context["lines"] if line["label"] == "2026Q4")
    cell = q4["cells"][0]
    assert (cell["direct"].target, cell["rolled"].target, cell["differ"]) == (500, 300, True)
    assert 'data-testid="rolled"' in html
    if language == "zh-hans":
        assert '<html lang="zh-hans"' in html or 'lang="zh-hans"' in html


def test_rep_sees_own_grid_read_only_and_not_others(client, org):
    """A rep's grid is not editable, and another rep's grid is a 404."""
    login(client, org.east_rep)
    response = client.get("/targets/")
    assert response.status_code == 200
    assert response.context["editable"] is False
    assert 'hx-get="/targets/cell/' not in response.content.decode()
    assert client.get(f"/targets/?owner=rep-{org.east_rep2.pk}").status_code == 404


def _cell_post(client, owner_key, **data):
    base = {"owner": owner_key, "measure": "visits", "period": "month", "start": "2026-03-01"}
    return client.post("/targets/cell/", {**base, **data})


def test_cell_edit_saves_and_answers_the_cell(client, org):
    """A manager sets a rep's March visits in place: the answer is the cell, now with the
    target."""
    login(client, org.east_mgr)
    response = _cell_post(client, f"rep-{org.east_rep.pk}", target="40", stretch="50")
    assert response.status_code == 200
    assert 'data-testid="target">40<' in response.content.decode()
    row = Target.objects.get()
    assert (row.target, row.stretch, row.user) == (40, 50, org.east_rep)


def test_cell_edit_errors_land_on_the_field(client, org):
    """A stretch below the target answers 422 with the error under the stretch field and
    stores nothing."""
    login(client, org.east_mgr)
    response = _cell_post(client, f"rep-{org.east_rep.pk}", target="40", stretch="30")
    assert response.status_code == 422
    assert 'data-testid="field-error"' in response.content.decode()
    assert not Target.objects.exists()


def test_cell_edit_with_stale_version_is_a_conflict(client, org):
    """Two managers open the same cell; the second save, carrying the old version, is a
    409 and keeps the first one's value."""
    row = services.set_target(org.admin, level="rep", user=org.east_rep, measure="visits",
                              period="month", start=date(2026, 3, 1), target=10)  # fmt: skip
    services.update_target(row, actor=org.admin, version=row.version, target=20)
    login(client, org.east_mgr)
    response = _cell_post(client, f"rep-{org.east_rep.pk}", target="30", version=str(row.version))
    assert response.status_code == 409
    assert Target.objects.get().target == 20


def test_cell_edit_outside_the_subtree_is_a_404(client, org):
    """A manager cannot open or post a cell of another team's rep."""
    login(client, org.south_mgr)
    assert _cell_post(client, f"rep-{org.east_rep.pk}", target="5").status_code == 404
    assert not Target.objects.exists()


def test_year_entry_saves_twelve_months(client, org):
    """The twelve-month form saves every filled month in one go and redirects to the
    grid; a bad month refuses all of them."""
    login(client, org.admin)
    url = "/targets/year/"
    base = {"owner": f"team-{org.east.pk}", "measure": "signed", "year": "2026"}
    bad = {**base, **{f"month_{m}.target": "100" for m in range(1, 13)}, "month_5.target": "x"}
    assert client.post(url, bad).status_code == 422
    assert not Target.objects.exists()
    good = {**base, **{f"month_{m}.target": "100" for m in range(1, 13)}}
    response = client.post(url, good)
    assert response.status_code == 302
    assert Target.objects.filter(team=org.east, period="month").count() == 12


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_performance_page_and_downloads(client, org, language):
    """The performance page renders for an admin in both languages; CSV and xlsx come
    with the current filters."""
    login(client, org.admin, language)
    response = client.get("/targets/performance/?period=2026-11")
    assert response.status_code == 200
    assert response.context["report"].period.label == "2026-11"
    csv = client.get("/targets/performance/?period=2026-11&format=csv")
    assert csv.status_code == 200
    assert csv["Content-Type"].startswith("text/csv")
    assert "east_rep" in csv.content.decode("utf-8-sig")
    xlsx = client.get("/targets/performance/?period=2026-11&format=xlsx")
    assert xlsx["Content-Type"].startswith("application/vnd.openxmlformats")


def test_performance_download_holds_only_what_the_rep_may_see(client, org):
    """A rep's CSV holds themself and the team average, not a teammate."""
    login(client, org.east_rep)
    text = client.get("/targets/performance/?period=2026-11&format=csv").content.decode("utf-8-sig")
    assert "east_rep," in text
    assert "east_rep2" not in text
    assert "Team average" in text


def test_performance_bad_period_is_422(client, org):
    """A period that does not parse answers 422 with the error, not a 500."""
    login(client, org.admin)
    assert client.get("/targets/performance/?period=2026Q9").status_code == 422


def test_standards_admin_only_edits(client, org):
    """An admin adds a standard from the page; a rep sees the list but a POST is a 404."""
    login(client, org.admin)
    response = client.post("/targets/standards/", {"measure": "visits", "period": "month",
                                                   "level": "junior", "minimum": "40"})  # fmt: skip
    assert response.status_code == 302
    assert Standard.objects.get().minimum == 40
    login(client, org.east_rep)
    assert client.get("/targets/standards/").status_code == 200
    response = client.post("/targets/standards/", {"measure": "visits", "period": "month",
                                                   "minimum": "1"})  # fmt: skip
    assert response.status_code == 404
    assert Standard.objects.count() == 1


def test_dashboard_panel_shows_levels_in_scope(client, org):
    """The dashboard panel of a manager shows the team and its reps that have targets,
    and nothing of another team."""
    today = timezone.localdate()
    services.set_target(org.admin, level="team", team=org.east, measure="signed",
                        period="month", start=today.replace(day=1), target=100)  # fmt: skip
    services.set_target(org.admin, level="rep", user=org.east_rep, measure="signed",
                        period="month", start=today.replace(day=1), target=50)  # fmt: skip
    services.set_target(org.admin, level="rep", user=org.south_rep, measure="signed",
                        period="month", start=today.replace(day=1), target=70)  # fmt: skip
    login(client, org.east_mgr)
    response = client.get("/targets/dashboard/")
    assert response.status_code == 200
    names = [card["owner"].name for card in response.context["cards"]]
    assert names[:2] == ["East", "east_rep"] or ("East" in names and "east_rep" in names)
    assert "south_rep" not in names
