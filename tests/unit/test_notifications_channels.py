"""Notification channels: who may see and change which webhook (pages and API, through
the shared permission checks), the channels page in both languages with its field
errors, confirmations and test button, the e-mail preference, and the API."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loudou.core.exceptions import NotPermitted, ValidationFailed
from loudou.notifications import services
from loudou.notifications.choices import DeliveryStatus
from loudou.notifications.models import Channel, Delivery
from tests.permissions import ADMIN, MANAGER, OWNER, PermissionChecks

HOOK_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"


class TestTeamWebhookPermissions(PermissionChecks):
    """A team webhook of East: its manager (subtree) and admins see and change it; no
    rep (not even the team's own), no other team's manager."""

    page_urls = (
        "/notifications/channels/{obj.pk}/edit/",
        "/notifications/channels/{obj.pk}/delete/",
    )
    list_url = "/notifications/channels/"
    api_url = "/api/v1/notification-channels/{obj.pk}"
    api_list_url = "/api/v1/notification-channels"
    edit_url = "/notifications/channels/{obj.pk}/edit/"
    visible_actors = frozenset({MANAGER, ADMIN})

    def make_object(self, org, owner):
        return services.create_webhook(
            org.east_mgr, team=org.east, name="East group", flavour="wecom", url=HOOK_URL
        )

    def share(self, obj, user):
        return False

    def list_marker(self, obj) -> str:
        return f'id="channel-{obj.pk}"'

    def edit_data(self, obj):
        return {"name": "Renamed", "flavour": "wecom", "url": HOOK_URL, "active": "on",
                "version": obj.version}  # fmt: skip

    def api_patch_data(self, obj):
        return {"version": obj.version, "name": "Renamed"}


class TestPersonalWebhookPermissions(TestTeamWebhookPermissions):
    """A rep's own webhook is theirs alone: not their manager's, not an admin's."""

    visible_actors = frozenset({OWNER})

    def make_object(self, org, owner):
        return services.create_webhook(owner, name="Mine", flavour="wecom", url=HOOK_URL)


class TestSubteamWebhookPermissions(TestTeamWebhookPermissions):
    """A webhook of East Sub: East's manager manages the subtree, so it is theirs too."""

    def make_object(self, org, owner):
        return services.create_webhook(
            org.admin, team=org.east_sub, name="Sub group", flavour="wecom", url=HOOK_URL
        )


# --- services ---------------------------------------------------------------------------


def test_rep_cannot_create_a_team_webhook(org):
    """A rep may not add a webhook to their team (it posts for everyone); nothing saved."""
    with pytest.raises(ValidationFailed) as refused:
        services.create_webhook(
            org.east_rep, team=org.east, name="x", flavour="wecom", url=HOOK_URL
        )
    assert refused.value.field == "team"
    assert Channel.objects.count() == 0


def test_manager_cannot_touch_another_teams_webhook(org):
    """South's manager can neither create for East nor change or delete East's webhook."""
    with pytest.raises(ValidationFailed):
        services.create_webhook(
            org.south_mgr, team=org.east, name="x", flavour="wecom", url=HOOK_URL
        )
    hook = services.create_webhook(
        org.east_mgr, team=org.east, name="E", flavour="wecom", url=HOOK_URL
    )
    with pytest.raises(NotPermitted):
        services.update_webhook(hook, actor=org.south_mgr, name="hijack")
    with pytest.raises(NotPermitted):
        services.delete_channel(hook, actor=org.south_mgr)
    assert Channel.objects.get(pk=hook.pk).name == "E"


def test_stale_version_is_refused(org):
    """An edit made from an old copy is a conflict and changes nothing."""
    from loudou.core.exceptions import Conflict

    hook = services.create_webhook(org.east_rep, name="A", flavour="wecom", url=HOOK_URL)
    services.update_webhook(hook, actor=org.east_rep, version=1, name="B")
    with pytest.raises(Conflict):
        services.update_webhook(hook, actor=org.east_rep, version=1, name="C")
    assert Channel.objects.get(pk=hook.pk).name == "B"


def test_secret_rules(org):
    """A WeCom robot takes no secret; a DingTalk secret is kept when an edit leaves it
    out (None) and removed with ""."""
    with pytest.raises(ValidationFailed) as refused:
        services.create_webhook(org.east_rep, name="w", flavour="wecom", url=HOOK_URL, secret="x")
    assert refused.value.field == "secret"
    hook = services.create_webhook(
        org.east_rep, name="d", flavour="dingtalk", url=HOOK_URL, secret="SEC1"
    )
    services.update_webhook(hook, actor=org.east_rep, secret=None, name="d2")
    assert Channel.objects.get(pk=hook.pk).secret == "SEC1"
    services.update_webhook(hook, actor=org.east_rep, secret="")
    assert Channel.objects.get(pk=hook.pk).secret == ""


def test_unknown_kind_is_refused(org):
    """Only registered kinds can be chosen."""
    with pytest.raises(ValidationFailed) as refused:
        services.create_webhook(
            org.east_rep, name="w", flavour="wecom", url=HOOK_URL, kinds=["no_such_kind"]
        )
    assert refused.value.field == "kinds"


# --- pages ------------------------------------------------------------------------------


def _lang(client, language):
    client.post("/i18n/setlang/", {"language": language, "next": "/"})


@pytest.mark.parametrize(
    ("language", "words"),
    [("en", ["Notification channels", "My webhooks", "Team webhooks", "Recent deliveries"]),
     ("zh-hans", ["企业微信", "钉钉", "飞书"])],
)  # fmt: skip
def test_channels_page_in_both_languages(client, org, language, words):
    """The channels page renders in English and Chinese, with the manager's team
    webhooks, the note that e-mail is not set up, and the help on robot URLs."""
    services.create_webhook(
        org.east_mgr, team=org.east, name="East group", flavour="wecom", url=HOOK_URL
    )
    client.force_login(org.east_mgr)
    _lang(client, language)
    response = client.get(reverse("notifications:channels"))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'lang="{language}"' in html
    for word in words:
        assert word in html
    assert "East group" in html
    assert 'data-testid="smtp-missing"' in html


def test_rep_sees_no_team_section(client, org):
    """A rep's page has their own webhooks and e-mail, no team webhooks section."""
    services.create_webhook(
        org.east_mgr, team=org.east, name="East group", flavour="wecom", url=HOOK_URL
    )
    client.force_login(org.east_rep)
    html = client.get(reverse("notifications:channels")).content.decode()
    assert 'data-testid="team-webhooks"' not in html
    assert "East group" not in html


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_bad_url_shows_a_field_error(client, org, settings, language):
    """A private address in the form comes back with the error under the URL field
    (422) and nothing is saved, in both languages."""
    settings.LOUDOU_WEBHOOK_ALLOW_PRIVATE = False
    client.force_login(org.east_rep)
    _lang(client, language)
    response = client.post(
        reverse("notifications:webhook-new"),
        {"name": "Mine", "flavour": "wecom", "url": "https://192.168.1.5/hook", "active": "on"},
    )
    assert response.status_code == 422
    form = response.context["form"]
    assert list(form.errors) == ["url"]
    assert "192.168.1.5" in form.errors["url"][0]
    assert "is-invalid" in response.content.decode()
    assert Channel.objects.count() == 0


def test_add_edit_and_delete_a_webhook_through_the_pages(client, org):
    """Add a signed DingTalk webhook limited to one kind, edit it keeping its secret,
    then delete it after the confirmation page."""
    client.force_login(org.east_rep)
    response = client.post(
        reverse("notifications:webhook-new"),
        {"name": "我的钉钉", "flavour": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=t",
         "secret": "SECxyz", "kinds": ["lead_assigned"], "active": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    hook = Channel.objects.get()
    assert (hook.user, hook.team, hook.secret, hook.kinds) == (
        org.east_rep,
        None,
        "SECxyz",
        ["lead_assigned"],
    )
    edit = reverse("notifications:webhook-edit", args=[hook.pk])
    assert "SECxyz" not in client.get(edit).content.decode()  # the secret is never shown
    response = client.post(
        edit,
        {"name": "改名", "flavour": "dingtalk", "url": hook.url, "secret": "",
         "version": hook.version},
    )  # fmt: skip
    assert response.status_code == 302
    hook.refresh_from_db()
    assert (hook.name, hook.secret, hook.active, hook.kinds) == ("改名", "SECxyz", False, [])
    delete = reverse("notifications:webhook-delete", args=[hook.pk])
    page = client.get(delete).content.decode()
    assert "改名" in page and 'data-testid="webhook-delete-confirm"' in page
    assert Channel.objects.filter(pk=hook.pk).exists()  # looking is not deleting
    assert client.post(delete).status_code == 302
    assert not Channel.objects.filter(pk=hook.pk).exists()


def test_manager_adds_a_team_webhook(client, org):
    """A manager picks one of their teams (a sub-team too) in the form; a team outside
    their subtree is not a valid choice."""
    client.force_login(org.east_mgr)
    data = {
        "name": "Sub",
        "flavour": "wecom",
        "url": HOOK_URL,
        "team": org.east_sub.pk,
        "active": "on",
    }
    assert client.post(reverse("notifications:webhook-new"), data).status_code == 302
    assert Channel.objects.get().team == org.east_sub
    data |= {"team": org.south.pk}
    response = client.post(reverse("notifications:webhook-new"), data)
    assert response.status_code == 422 and "team" in response.context["form"].errors
    assert Channel.objects.count() == 1


def test_test_button_enqueues_and_polls(client, org):
    """The test button answers at once with a waiting status that polls its delivery
    row (nothing is sent in the request); once the worker has sent, the poll shows it
    and stops polling."""
    hook = services.create_webhook(org.east_rep, name="Mine", flavour="wecom", url=HOOK_URL)
    client.force_login(org.east_rep)
    response = client.post(
        reverse("notifications:webhook-test", args=[hook.pk]), headers={"HX-Request": "true"}
    )
    d = Delivery.objects.get()
    html = response.content.decode()
    assert (d.is_test, d.status, d.attempts) == (True, DeliveryStatus.PENDING, 0)
    poll = reverse("notifications:delivery", args=[d.pk])
    assert f'hx-get="{poll}"' in html
    Delivery.objects.filter(pk=d.pk).update(status=DeliveryStatus.SENT, attempts=1)
    html = client.get(poll).content.decode()
    assert 'data-testid="delivery-status"' in html and "hx-get" not in html


def test_other_users_delivery_and_test_are_404(client, org):
    """Someone else's webhook cannot be tested and their deliveries cannot be read."""
    hook = services.create_webhook(org.east_rep, name="Mine", flavour="wecom", url=HOOK_URL)
    d = services.send_test(hook, actor=org.east_rep)
    client.force_login(org.east_rep2)
    assert client.post(reverse("notifications:webhook-test", args=[hook.pk])).status_code == 404
    assert client.get(reverse("notifications:delivery", args=[d.pk])).status_code == 404
    assert Delivery.objects.count() == 1


def test_email_preference_page(client, org, settings):
    """Saving the e-mail card stores on/off and kinds; a stale form is refused with a
    message and changes nothing."""
    client.force_login(org.east_rep)
    url = reverse("notifications:email")
    response = client.post(url, {"active": "on", "kinds": ["handover"], "version": 0})
    assert response.status_code == 302
    channel = Channel.objects.get(user=org.east_rep, flavour="email")
    assert (channel.active, channel.kinds, channel.version) == (True, ["handover"], 1)
    response = client.post(url, {"version": 0})
    assert response.status_code == 200
    assert response.context["email_form"].non_field_errors()
    channel.refresh_from_db()
    assert channel.active is True


def test_channels_page_query_count_does_not_grow(client, org, django_assert_max_num_queries):
    """The channels page costs the same number of queries with 1 or 8 webhooks and
    their deliveries."""

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("notifications:channels")).status_code == 200
        return len(ctx.captured_queries)

    def add(i):
        hook = services.create_webhook(
            org.east_mgr, team=org.east if i % 2 else None, name=f"h{i}", flavour="wecom",
            url=HOOK_URL, kinds=["handover"],
        )  # fmt: skip
        services.send_test(hook, actor=org.east_mgr)

    client.force_login(org.east_mgr)
    add(0)
    few = count()
    for i in range(1, 8):
        add(i)
    assert count() == few


# --- API --------------------------------------------------------------------------------


def test_api_webhook_lifecycle(client, org, bearer, english):
    """Create, read, patch (version), test and delete a webhook through the API; the
    secret is never returned."""
    headers = bearer(org.east_mgr)
    r = client.post(
        "/api/v1/notification-channels",
        {"name": "East", "flavour": "feishu", "url": "https://open.feishu.cn/open-apis/bot/v2/hook/x",
         "secret": "s", "team_id": org.east.pk, "kinds": ["handover"]},
        content_type="application/json", headers=headers,
    )  # fmt: skip
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["team_id"], body["user_id"], body["has_secret"], body["kinds"]) == (
        org.east.pk,
        None,
        True,
        ["handover"],
    )
    assert "secret" not in body
    pk = body["id"]
    r = client.patch(
        f"/api/v1/notification-channels/{pk}", {"version": 1, "active": False},
        content_type="application/json", headers=headers,
    )  # fmt: skip
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["version"] == 2
    assert r.json()["has_secret"] is True
    r = client.patch(
        f"/api/v1/notification-channels/{pk}", {"version": 1, "name": "late"},
        content_type="application/json", headers=headers,
    )  # fmt: skip
    assert r.status_code == 409 and r.json()["code"] == "version_conflict"
    r = client.post(f"/api/v1/notification-channels/{pk}/test", headers=headers)
    assert r.status_code == 202 and r.json()["status"] == "pending" and r.json()["is_test"] is True
    test_id = r.json()["id"]
    r = client.get(f"/api/v1/notification-deliveries/{test_id}", headers=headers)
    assert r.status_code == 200 and r.json()["channel_id"] == pk
    other = bearer(org.south_mgr)  # another team's manager: neither the channel nor its delivery
    r = client.get(f"/api/v1/notification-deliveries/{test_id}", headers=other)
    assert r.status_code == 404
    assert client.get("/api/v1/notification-deliveries", headers=other).json()["count"] == 0
    r = client.post(f"/api/v1/notification-channels/{pk}/test", headers=other)
    assert r.status_code == 404
    r = client.get("/api/v1/notification-deliveries?status=pending", headers=headers)
    assert [d["channel_id"] for d in r.json()["items"]] == [pk]
    r = client.delete(f"/api/v1/notification-channels/{pk}?version=2", headers=headers)
    assert r.status_code == 204
    assert not Channel.objects.filter(pk=pk).exists()


def test_api_refusals_are_json(client, org, bearer, english, settings):
    """Bad input answers 422 JSON naming the field: a private URL, another team, an
    unknown kind, an unknown flavour; nothing is saved."""
    settings.LOUDOU_WEBHOOK_ALLOW_PRIVATE = False
    headers = bearer(org.east_rep)

    def post(**data):
        base = {"name": "x", "flavour": "wecom", "url": HOOK_URL}
        return client.post(
            "/api/v1/notification-channels", base | data,
            content_type="application/json", headers=headers,
        )  # fmt: skip

    r = post(url="https://10.0.0.1/x")
    assert r.status_code == 422 and r.json()["field"] == "url"
    r = post(team_id=org.east.pk)
    assert r.status_code == 422 and r.json()["field"] == "team_id"
    r = post(kinds=["nope"])
    assert r.status_code == 422 and r.json()["field"] == "kinds"
    r = post(flavour="slack")
    assert r.status_code == 422 and r.json()["code"] == "invalid"
    assert Channel.objects.count() == 0


def test_api_email_preference(client, org, bearer, settings):
    """GET shows the e-mail preference (off, version 0, whether SMTP is set up); PATCH
    turns it on for chosen kinds; a stale version is a 409."""
    settings.LOUDOU_EMAIL_NOTIFICATIONS = True
    org.east_rep.email = "rep@example.com"
    org.east_rep.save()
    headers = bearer(org.east_rep)
    r = client.get("/api/v1/notification-channels/email", headers=headers)
    assert r.json() == {"active": False, "kinds": [], "address": "rep@example.com",
                        "configured": True, "version": 0}  # fmt: skip
    r = client.patch(
        "/api/v1/notification-channels/email",
        {"version": 0, "active": True, "kinds": ["recycled"]},
        content_type="application/json", headers=headers,
    )  # fmt: skip
    assert r.json() == {"active": True, "kinds": ["recycled"], "address": "rep@example.com",
                        "configured": True, "version": 1}  # fmt: skip
    r = client.patch(
        "/api/v1/notification-channels/email", {"version": 0, "active": False},
        content_type="application/json", headers=headers,
    )  # fmt: skip
    assert r.status_code == 409
    assert Channel.objects.get(user=org.east_rep).active is True
    # The e-mail row is not a webhook: not listed, not reachable by id.
    email_pk = Channel.objects.get(user=org.east_rep).pk
    assert client.get("/api/v1/notification-channels", headers=headers).json()["count"] == 0
    assert (
        client.get(f"/api/v1/notification-channels/{email_pk}", headers=headers).status_code == 404
    )
