"""In-app notifications: dedupe by key, channels, inbox and bell pages, the API, and
query counts that do not grow with the number of notifications."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loudou.notifications import channels, services
from loudou.notifications.models import Notification


def test_notify_with_a_key_notifies_once(org):
    """The same key twice (a sweep run twice) makes one row; the second call says so."""
    first = services.notify(org.east_rep, "3 leads", key="warn:1")
    again = services.notify(org.east_rep, "3 leads", key="warn:1")
    assert first is not None and again is None
    assert Notification.objects.filter(user=org.east_rep).count() == 1
    # Another user with the same key is another notification.
    assert services.notify(org.east_rep2, "3 leads", key="warn:1") is not None


def test_notify_without_key_always_writes(org):
    """Without a key every call is a new notification."""
    services.notify(org.east_rep, "a")
    services.notify(org.east_rep, "a")
    assert Notification.objects.filter(user=org.east_rep).count() == 2


def test_notify_many_skips_existing_keys(org):
    """Bulk notify writes only the (user, key) pairs that are new."""
    services.notify(org.east_rep, "x", key="k1")
    services.notify_many(
        [{"user": org.east_rep, "text": "x", "key": "k1"},
         {"user": org.east_rep, "text": "y", "key": "k2"},
         {"user": org.east_rep2.pk, "text": "z", "key": "k1"}]
    )  # fmt: skip
    assert sorted(Notification.objects.values_list("user__username", "key")) == [
        ("east_rep", "k1"), ("east_rep", "k2"), ("east_rep2", "k1"),
    ]  # fmt: skip


def test_channels_receive_new_notifications_after_commit(org, django_capture_on_commit_callbacks):
    """A registered channel gets each new notification once the transaction commits, not
    a deduplicated repeat; a failing channel does not undo the notification."""
    seen = []

    def broken(n):
        raise RuntimeError("smtp down")

    channels.register_channel(seen.append)
    channels.register_channel(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.notify(org.east_rep, "hello", key="k")
            services.notify(org.east_rep, "hello", key="k")
    finally:
        channels.unregister_channel(seen.append)
        channels.unregister_channel(broken)
    assert [n.text for n in seen] == ["hello"]
    assert Notification.objects.count() == 1


def test_mark_read_touches_only_own_rows(org):
    """Marking someone else's notification read through my account changes nothing."""
    mine = services.notify(org.east_rep, "mine")
    theirs = services.notify(org.east_rep2, "theirs")
    assert services.mark_read(org.east_rep, [mine.pk, theirs.pk]) == 1
    assert Notification.objects.get(pk=theirs.pk).read_at is None
    assert services.unread_count(org.east_rep) == 0
    assert services.unread_count(org.east_rep2) == 1


def _login(client, user):
    client.force_login(user)


def test_bell_shows_unread_count(client, org):
    """The bell in every page's navigation shows my unread count."""
    for i in range(3):
        services.notify(org.east_rep, f"n{i}")
    services.notify(org.east_rep2, "other")
    _login(client, org.east_rep)
    html = client.get(reverse("notifications:inbox")).content.decode()
    assert 'data-testid="bell-count">3<' in html


@pytest.mark.parametrize("name", ["notifications:inbox", "dashboard"])
def test_page_query_count_constant(client, org, name):
    """The bell and inbox cost the same number of queries with 2 or 40 notifications."""
    _login(client, org.east_rep)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse(name)).status_code == 200
        return len(ctx.captured_queries)

    for i in range(2):
        services.notify(org.east_rep, f"a{i}", url="/leads/")
    few = count()
    for i in range(38):
        services.notify(org.east_rep, f"b{i}", url="/leads/")
    assert count() == few


def test_open_marks_read_and_follows_only_local_links(client, org):
    """Opening a notification marks it read and follows its link; an outside link is
    not followed (back to the inbox instead)."""
    local = services.notify(org.east_rep, "lead", url="/leads/")
    outside = services.notify(org.east_rep, "evil", url="https://evil.example/")
    _login(client, org.east_rep)
    assert client.get(reverse("notifications:open", args=[local.pk])).url == "/leads/"
    assert client.get(reverse("notifications:open", args=[outside.pk])).url == reverse(
        "notifications:inbox"
    )
    assert services.unread_count(org.east_rep) == 0


def test_someone_elses_notification_is_404(client, org):
    """Opening or marking another user's notification answers 404 and changes nothing."""
    theirs = services.notify(org.east_rep2, "theirs")
    _login(client, org.east_rep)
    assert client.get(reverse("notifications:open", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("notifications:read", args=[theirs.pk])).status_code == 404
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_mark_all_read_page(client, org):
    """ "Mark all read" empties my unread list and leaves others' alone."""
    services.notify(org.east_rep, "a")
    services.notify(org.east_rep2, "b")
    _login(client, org.east_rep)
    client.post(reverse("notifications:read-all"))
    assert services.unread_count(org.east_rep) == 0
    assert services.unread_count(org.east_rep2) == 1


def test_api_list_count_and_mark(client, org, bearer):
    """The API lists my notifications, counts the unread ones and marks them read; another
    user's id is a 404."""
    headers = bearer(org.east_rep)
    a = services.notify(org.east_rep, "a")
    services.notify(org.east_rep, "b")
    theirs = services.notify(org.east_rep2, "c")
    body = client.get("/api/v1/notifications?unread=true", headers=headers).json()
    assert sorted(n["text"] for n in body["items"]) == ["a", "b"]
    count = client.get("/api/v1/notifications/unread-count", headers=headers).json()
    assert count == {"unread": 2}
    r = client.post(f"/api/v1/notifications/{a.pk}/read", headers=headers)
    assert r.status_code == 200 and r.json()["is_read"] is True
    r = client.post(f"/api/v1/notifications/{theirs.pk}/read", headers=headers)
    assert r.status_code == 404
    r = client.post("/api/v1/notifications/read-all", headers=headers)
    assert r.json() == {"marked": 1}
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_key_unique_in_the_database(org):
    """The database itself refuses a second row with the same user and key."""
    from django.db import IntegrityError

    services.notify(org.east_rep, "x", key="same")
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(user=org.east_rep, text="x", key="same")


def test_new_owner_is_notified_on_assignment_not_self(org):
    """A lead given to someone else notifies them once with a link to it; a lead a rep
    creates for themself notifies nobody; a bulk assignment sends one summary per rep."""
    from loudou.leads import assignment
    from loudou.leads import services as leads
    from loudou.leads.models import AssignmentRule, Lead

    lead, _ = leads.create_lead(actor=org.east_mgr, owner=org.east_rep, name="甲")
    leads.create_lead(actor=org.east_rep2, name="乙")
    assigned = Notification.objects.filter(kind="lead_assigned")
    assert list(assigned.values_list("user_id", "url")) == [
        (org.east_rep.pk, lead.get_absolute_url())
    ]
    rule = AssignmentRule.objects.create(name="轮流", method="round_robin")
    rule.reps.set([org.sub_rep])
    new = [Lead.objects.create(name=f"批量{i}") for i in range(3)]
    assignment.assign_many(new, actor=org.admin)
    assert assigned.filter(user=org.sub_rep).count() == 1
