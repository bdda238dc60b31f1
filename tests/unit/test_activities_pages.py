"""Activity pages: the panel on each record's page, logging without reload, timelines
merging stage changes, the list page and its downloads, query counts and languages."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loudou.activities import services
from loudou.activities.models import Activity
from loudou.activities.timeline import merged
from loudou.pipeline import services as pipeline_services
from tests.unit.test_activities_services import make_subjects

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def s(org):
    return make_subjects(org.east_rep)


@pytest.fixture
def rep(client, org):
    client.force_login(org.east_rep)
    return client


@pytest.mark.parametrize("name", ["opp", "account", "contact", "lead"])
def test_panel_on_each_record_page(rep, s, name):
    """The account, contact, lead and opportunity pages carry the logging form posting
    to that record."""
    subject = getattr(s, name)
    html = rep.get(subject.get_absolute_url()).content.decode()
    url = f"/activities/log/{subject._meta.model_name}/{subject.pk}/"
    assert 'data-testid="activity-form"' in html and f'hx-post="{url}"' in html


def test_htmx_log_on_opportunity_returns_form_and_timeline(rep, org, s):
    """Logging on an opportunity with htmx saves it, tells the page (HX-Trigger
    activity-logged) and answers a fresh form plus the opportunity's Timeline card (out
    of band) with the new entry on top."""
    response = rep.post(
        f"/activities/log/opportunity/{s.opp.pk}/",
        {"kind": "call", "outcome": "not_reached", "notes": "没接", "duration_minutes": "3"},
        headers=HTMX,
    )
    html = response.content.decode()
    a = Activity.objects.get()
    assert (a.opportunity, a.account, a.owner, a.duration_minutes) == (
        s.opp,
        s.account,
        org.east_rep,
        3,
    )
    assert 'id="activity-timeline"' in html and 'hx-swap-oob="true"' in html
    assert html.index(f'id="activity-{a.pk}"') < html.index('data-testid="timeline-stage"')
    assert 'name="notes" value=""' in html  # the form is ready for the next one
    # other panels on the page (tasks) refresh on this event
    assert response.headers["HX-Trigger"] == "activity-logged"


def test_untouched_when_means_now(rep, s):
    """A "when" left as the form showed it (say an hour ago) records the moment of
    saving; a changed one is kept."""
    hour_ago = timezone.localtime() - timedelta(hours=1)
    shown = hour_ago.strftime("%Y-%m-%dT%H:%M")
    data = {"kind": "call", "outcome": "reached", "occurred_at": shown, "shown_now": shown}
    rep.post(f"/activities/log/account/{s.account.pk}/", data, headers=HTMX)
    assert timezone.now() - Activity.objects.get().occurred_at < timedelta(minutes=1)
    rep.post(f"/activities/log/account/{s.account.pk}/", {**data, "shown_now": "x"}, headers=HTMX)
    kept = Activity.objects.order_by("-pk").first().occurred_at
    assert timezone.localtime(kept).strftime("%Y-%m-%dT%H:%M") == shown


def test_htmx_log_refusal_shows_errors_and_saves_nothing(rep, s):
    """A refused activity (no outcome on a call) comes back as the form with the reason,
    the typed notes kept, nothing saved."""
    response = rep.post(
        f"/activities/log/account/{s.account.pk}/",
        {"kind": "call", "outcome": "", "notes": "打了"},
        headers=HTMX,
    )
    html = response.content.decode()
    assert 'data-testid="activity-errors"' in html and 'value="打了"' in html
    assert "HX-Trigger" not in response.headers
    assert Activity.objects.count() == 0


def test_log_on_record_out_of_scope_is_404(client, org, s):
    """Posting to a record the user cannot see is a 404 and saves nothing."""
    client.force_login(org.south_rep)
    response = client.post(
        f"/activities/log/account/{s.account.pk}/", {"kind": "call", "outcome": "reached"}
    )
    assert response.status_code == 404
    assert Activity.objects.count() == 0


def test_opportunity_timeline_merges_in_time_order(org, s):
    """Stage changes and activities are one list, newest first: move (now), call
    (1 day ago), visit (3 days ago), creation (5 days ago)."""
    now = timezone.now()
    from loudou.pipeline.models import StageChange

    StageChange.objects.filter(opportunity=s.opp).update(changed_at=now - timedelta(days=5))
    visit = services.log_activity(
        org.east_rep, opportunity=s.opp, kind="visit", outcome="visited",
        occurred_at=now - timedelta(days=3),
    )  # fmt: skip
    call = services.log_activity(
        org.east_rep, opportunity=s.opp, kind="call", outcome="reached",
        occurred_at=now - timedelta(days=1),
    )  # fmt: skip
    next_stage = s.pipeline.stages.get(code="C")
    pipeline_services.move_opportunity(s.opp, next_stage, actor=org.east_rep, when=now)
    entries = merged(s.opp, org.east_rep)
    assert [(e.kind, getattr(e.obj, "kind", None)) for e in entries] == [
        ("stage", "moved"), ("activity", "call"), ("activity", "visit"), ("stage", "created"),
    ]  # fmt: skip
    assert entries[1].obj == call and entries[2].obj == visit


def test_account_timeline_has_its_opportunities_stage_changes(rep, org, s):
    """The account page's timeline shows its activities and the stage changes of its
    opportunities, naming the opportunity."""
    services.log_activity(org.east_rep, account=s.account, kind="research")
    html = rep.get(s.account.get_absolute_url()).content.decode()
    assert html.count('data-testid="timeline-activity"') == 1
    assert html.count('data-testid="timeline-stage"') == 1
    assert f'href="{s.opp.get_absolute_url()}"' in html


def test_delete_from_timeline_with_htmx(rep, org, s):
    """Deleting from the timeline (after the page's confirmation) removes the entry."""
    a = services.log_activity(org.east_rep, account=s.account, kind="call", outcome="reached")
    response = rep.post(f"/activities/{a.pk}/delete/", {"version": a.version}, headers=HTMX)
    assert response.status_code == 200 and response.content == b""
    assert not Activity.objects.filter(pk=a.pk).exists()


def test_list_filters_and_downloads(rep, org, s):
    """The list shows what the filters keep; CSV and xlsx download the same rows."""
    services.log_activity(
        org.east_rep, account=s.account, kind="call", outcome="reached", notes="甲"
    )
    services.log_activity(org.east_rep, lead=s.lead, kind="visit", outcome="visited", notes="乙")
    page = rep.get("/activities/?kind=visit")
    assert [a.notes for a in page.context["page"]] == ["乙"]
    assert [a.notes for a in rep.get("/activities/?linked=account").context["page"]] == ["甲"]
    csv = rep.get("/activities/?kind=call&format=csv")
    assert csv["Content-Type"].startswith("text/csv")
    body = csv.content.decode("utf-8-sig")
    assert "甲" in body and "乙" not in body
    xlsx = rep.get("/activities/?format=xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


def add_activities(org, s, n):
    Activity.objects.bulk_create(
        Activity(
            owner=org.east_rep if i % 2 else org.east_rep2,
            kind="call",
            purpose="follow_up",
            outcome="reached",
            account=s.account,
            contact=s.contact,
            opportunity=s.opp,
            occurred_at=timezone.now() - timedelta(hours=i + 1),
        )  # fmt: skip
        for i in range(n)
    )


def count(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("where", ["/activities/", "account", "opp", "contact"])
@pytest.mark.parametrize("username", ["east_mgr", "east_rep"])
def test_query_count_does_not_grow_with_rows(client, org, s, where, username):
    """The list page and the panels on record pages cost as many queries with 40
    activities as with 4."""
    client.force_login(getattr(org, username))
    url = where if where.startswith("/") else getattr(s, where).get_absolute_url()
    add_activities(org, s, 4)
    count(client, url)  # warm up: session, language, content types
    few = count(client, url)
    add_activities(org, s, 36)
    assert count(client, url) == few


@pytest.mark.parametrize(
    ("language", "expected"), [("en", ["Log an activity", "Timeline"]), ("zh-hans", ["时间线"])]
)
def test_pages_in_both_languages(client, org, s, language, expected):
    """The opportunity page with the panel, and the list, render in English and Chinese."""
    org.east_rep.language = language
    org.east_rep.save(update_fields=["language"])
    client.force_login(org.east_rep)
    services.log_activity(org.east_rep, opportunity=s.opp, kind="call", outcome="reached")
    html = client.get(s.opp.get_absolute_url()).content.decode()
    assert f'lang="{language}"' in html
    for text in expected:
        assert text in html
    assert client.get("/activities/").status_code == 200
