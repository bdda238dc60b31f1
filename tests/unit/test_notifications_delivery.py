"""Delivering notifications through channels: a real local HTTP server stands in for
the chat robots (it records every POST and answers what the test tells it), e-mail goes
through Django's in-memory mail backend. Formats and signatures of WeCom, DingTalk,
Feishu and the generic webhook; robot error codes; retries with back-off; giving up;
double hand-offs; SSRF refusals."""

import base64
import hashlib
import hmac
import ipaddress
import json
import socket
import threading
import urllib.parse
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from loudou.core.exceptions import ValidationFailed
from loudou.notifications import channels, delivery, services
from loudou.notifications.choices import DeliveryStatus
from loudou.notifications.models import Channel, Delivery, Notification

OK_WECOM = (200, {"errcode": 0, "errmsg": "ok"})


class RobotServer:
    """A chat robot on 127.0.0.1: records each POST (path with query, headers, JSON
    body) and answers from ``answers`` in turn, then ``default``."""

    def __init__(self):
        self.requests = []
        self.answers = []
        self.default = OK_WECOM
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "raw": body,
                     "json": json.loads(body)}
                )  # fmt: skip
                status, answer = server.answers.pop(0) if server.answers else server.default
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook?key=abc"):
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def robot(settings):
    settings.LOUDOU_WEBHOOK_ALLOW_PRIVATE = True
    server = RobotServer()
    yield server
    server.close()


@pytest.fixture
def immediate_tasks(settings):
    """The worker runs each enqueued task at once (instead of a separate process)."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def _notify(capture, user, text, **kwargs):
    """notify() and run what happens after commit (hand-off, enqueue, the task)."""
    with capture(execute=True):
        return services.notify(user, text, **kwargs)


def test_wecom_message_format(
    org, robot, immediate_tasks, django_capture_on_commit_callbacks, settings
):
    """A personal WeCom webhook receives the notification as a WeCom text message with
    the wrapper and the absolute link, and the delivery is recorded as sent."""
    settings.LOUDOU_BASE_URL = "https://crm.example.com"
    org.east_rep.language = "en"
    org.east_rep.save()
    hook = services.create_webhook(org.east_rep, name="My robot", flavour="wecom", url=robot.url())
    n = _notify(django_capture_on_commit_callbacks, org.east_rep, "New lead: 甲", url="/leads/7/")
    assert len(robot.requests) == 1
    request = robot.requests[0]
    assert request["path"] == "/hook?key=abc"
    assert request["json"] == {
        "msgtype": "text",
        "text": {"content": "[Loudou] New lead: 甲\nhttps://crm.example.com/leads/7/"},
    }
    d = Delivery.objects.get(notification=n, channel=hook)
    assert (d.status, d.attempts, d.last_error) == (DeliveryStatus.SENT, 1, "")
    hook.refresh_from_db()
    assert hook.last_status == DeliveryStatus.SENT


def test_wrapper_text_follows_the_addressees_language(
    org, robot, immediate_tasks, django_capture_on_commit_callbacks
):
    """The wrapper around the notification is in the receiver's language (zh-hans)."""
    org.east_rep.language = "zh-hans"
    org.east_rep.save()
    services.create_webhook(org.east_rep, name="群", flavour="wecom", url=robot.url())
    _notify(django_capture_on_commit_callbacks, org.east_rep, "新线索")
    content = robot.requests[0]["json"]["text"]["content"]
    assert content.startswith("【Loudou】新线索") or content.startswith("[Loudou] 新线索")
    org.east_rep.language = "en"
    org.east_rep.save()
    _notify(django_capture_on_commit_callbacks, org.east_rep, "second")
    assert robot.requests[1]["json"]["text"]["content"] == "[Loudou] second"


def test_dingtalk_signature_in_the_query(
    org, robot, immediate_tasks, django_capture_on_commit_callbacks
):
    """A signed DingTalk robot gets timestamp and sign query parameters; the sign is the
    base64 HMAC-SHA256 of "timestamp\\nsecret" keyed with the secret, as DingTalk checks."""
    secret = "SECabc123"
    services.create_webhook(
        org.east_rep, name="钉钉", flavour="dingtalk", url=robot.url("/robot/send?access_token=t1"),
        secret=secret,
    )  # fmt: skip
    org.east_rep.language = "en"
    org.east_rep.save()
    _notify(django_capture_on_commit_callbacks, org.east_rep, "hello")
    request = robot.requests[0]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request["path"]).query)
    assert query["access_token"] == ["t1"]
    timestamp = query["timestamp"][0]
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    ).decode()
    assert query["sign"] == [expected]
    assert abs(int(timestamp) / 1000 - timezone.now().timestamp()) < 60
    assert request["json"] == {"msgtype": "text", "text": {"content": "[Loudou] hello"}}


def test_feishu_signature_in_the_body(
    org, robot, immediate_tasks, django_capture_on_commit_callbacks
):
    """A signed Feishu bot gets timestamp and sign in the body; the sign is the base64
    HMAC-SHA256 keyed with "timestamp\\nsecret" over an empty message, as Feishu checks;
    Feishu's {"code": 0} answer counts as sent."""
    secret = "feishu-secret"
    robot.default = (200, {"code": 0, "msg": "success", "data": {}})
    hook = services.create_webhook(
        org.east_rep, name="飞书", flavour="feishu", url=robot.url("/open-apis/bot/v2/hook/x"),
        secret=secret,
    )  # fmt: skip
    org.east_rep.language = "en"
    org.east_rep.save()
    _notify(django_capture_on_commit_callbacks, org.east_rep, "hi")
    body = robot.requests[0]["json"]
    timestamp = body["timestamp"]
    expected = base64.b64encode(
        hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    ).decode()
    assert body == {
        "timestamp": timestamp, "sign": expected,
        "msg_type": "text", "content": {"text": "[Loudou] hi"},
    }  # fmt: skip
    assert Delivery.objects.get(channel=hook).status == DeliveryStatus.SENT


def test_generic_json_body_and_signature_header(
    org, robot, immediate_tasks, django_capture_on_commit_callbacks, settings
):
    """The generic webhook posts the notification's fields as JSON and signs the body
    with X-Loudou-Signature = sha256 HMAC of "timestamp.body"."""
    settings.LOUDOU_BASE_URL = "https://crm.example.com/"
    robot.default = (204, {})
    services.create_webhook(
        org.east_rep, name="relay", flavour="json", url=robot.url("/in"), secret="s3"
    )
    org.east_rep.language = "en"
    org.east_rep.save()
    n = _notify(
        django_capture_on_commit_callbacks, org.east_rep, "x", url="/leads/", kind="lead_assigned"
    )
    request = robot.requests[0]
    assert request["json"] == {
        "text": "[Loudou] x\nhttps://crm.example.com/leads/", "kind": "lead_assigned",
        "url": "https://crm.example.com/leads/", "user": "east_rep",
        "notification_id": n.pk, "created_at": n.created_at.isoformat(),
    }  # fmt: skip
    timestamp = request["headers"]["X-Loudou-Timestamp"]
    mac = hmac.new(b"s3", f"{timestamp}.".encode() + request["raw"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Loudou-Signature"] == f"sha256={mac}"


def test_robot_error_code_is_a_failure_then_retried(
    org, robot, immediate_tasks, django_capture_on_commit_callbacks, settings
):
    """HTTP 200 with errcode != 0 (a wrong keyword) is a failed attempt: the row waits
    with a back-off of LOUDOU_NOTIFY_RETRY_SECONDS, and the retry job sends it later."""
    settings.LOUDOU_NOTIFY_RETRY_SECONDS = 60
    robot.answers = [(200, {"errcode": 310000, "errmsg": "keywords not in content"})]
    hook = services.create_webhook(org.east_rep, name="r", flavour="wecom", url=robot.url())
    before = timezone.now()
    n = _notify(django_capture_on_commit_callbacks, org.east_rep, "hello")
    d = Delivery.objects.get(notification=n)
    assert d.status == DeliveryStatus.FAILED and d.attempts == 1
    assert "310000" in d.last_error and "keywords not in content" in d.last_error
    assert (
        before + timedelta(seconds=59) < d.next_attempt_at < timezone.now() + timedelta(seconds=61)
    )
    # Not due yet: the sweep leaves it alone.
    assert delivery.retry_due() == {}
    assert len(robot.requests) == 1
    assert delivery.retry_due(now=timezone.now() + timedelta(seconds=61)) == {"sent": 1}
    d.refresh_from_db()
    assert (d.status, d.attempts, d.last_error) == (DeliveryStatus.SENT, 2, "")
    assert len(robot.requests) == 2
    hook.refresh_from_db()
    assert hook.last_status == DeliveryStatus.SENT


def test_backoff_doubles_and_gives_up_after_max_attempts(
    org, robot, immediate_tasks, django_capture_on_commit_callbacks, settings
):
    """An HTTP 500 every time: the waits double (60, 120, 240 s) and after
    LOUDOU_NOTIFY_MAX_ATTEMPTS attempts the row gives up and is never sent again."""
    settings.LOUDOU_NOTIFY_MAX_ATTEMPTS = 4
    settings.LOUDOU_NOTIFY_RETRY_SECONDS = 60
    robot.default = (500, {"error": "down"})
    services.create_webhook(org.east_rep, name="r", flavour="wecom", url=robot.url())
    n = _notify(django_capture_on_commit_callbacks, org.east_rep, "hello")
    d = Delivery.objects.get(notification=n)
    waits = []
    later = timezone.now()
    for _attempt in range(3):
        d.refresh_from_db()
        assert d.status == DeliveryStatus.FAILED
        assert "HTTP 500" in d.last_error
        waits.append(round((d.next_attempt_at - timezone.now()).total_seconds() / 60))
        later = d.next_attempt_at + timedelta(seconds=1)
        delivery.retry_due(now=later)
    assert waits == [1, 2, 4]
    d.refresh_from_db()
    assert (d.status, d.attempts, d.next_attempt_at) == (DeliveryStatus.GAVE_UP, 4, None)
    assert len(robot.requests) == 4
    assert delivery.retry_due(now=later + timedelta(days=1)) == {}
    assert len(robot.requests) == 4


def test_failing_channel_never_undoes_the_notification(
    org, immediate_tasks, django_capture_on_commit_callbacks, settings
):
    """A webhook that cannot be reached fails its delivery, but the notification stays
    in the inbox and notify() returns normally."""
    settings.LOUDOU_WEBHOOK_ALLOW_PRIVATE = True
    services.create_webhook(
        org.east_rep, name="dead", flavour="wecom", url="http://127.0.0.1:9/nothing"
    )
    n = _notify(django_capture_on_commit_callbacks, org.east_rep, "still here")
    assert Notification.objects.filter(pk=n.pk, text="still here").exists()
    d = Delivery.objects.get(notification=n)
    assert d.status == DeliveryStatus.FAILED
    assert "Could not reach" in d.last_error or "无法" in d.last_error


def test_a_broken_channel_code_does_not_undo_the_notification(
    org, django_capture_on_commit_callbacks
):
    """Even an exception inside the hand-off (a bug, a database error) is logged: the
    notification is kept."""

    def broken(batch):
        raise RuntimeError("boom")

    broken.deliver_many = True
    channels.register_channel(broken)
    try:
        n = _notify(django_capture_on_commit_callbacks, org.east_rep, "kept")
    finally:
        channels.unregister_channel(broken)
    assert Notification.objects.filter(pk=n.pk).exists()


def test_double_hand_off_delivers_once(
    org, robot, immediate_tasks, django_capture_on_commit_callbacks
):
    """Handing the same notification to the channels twice (a re-run) writes one
    delivery row and posts once."""
    services.create_webhook(org.east_rep, name="r", flavour="wecom", url=robot.url())
    n = _notify(django_capture_on_commit_callbacks, org.east_rep, "once")
    with django_capture_on_commit_callbacks(execute=True):
        channels.deliver([n])
    with django_capture_on_commit_callbacks(execute=True):
        delivery.hand_off([Notification.objects.get(pk=n.pk)])
    assert Delivery.objects.filter(notification=n).count() == 1
    assert len(robot.requests) == 1


def test_notify_many_hands_off_every_new_row(
    org, robot, immediate_tasks, django_capture_on_commit_callbacks
):
    """A sweep's notify_many delivers each new row (keyed and unkeyed) once, and not the
    rows whose key existed already."""
    services.create_webhook(org.east_rep, name="r", flavour="wecom", url=robot.url())
    services.notify(org.east_rep, "old", key="k1")  # committed earlier: not handed off here
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_many(
            [{"user": org.east_rep, "text": "dup", "key": "k1"},
             {"user": org.east_rep, "text": "new keyed", "key": "k2"},
             {"user": org.east_rep.pk, "text": "plain"},
             {"user": org.east_rep2, "text": "other user"}]
        )  # fmt: skip
    sent = sorted(r["json"]["text"]["content"].split("\n")[0] for r in robot.requests)
    assert [s.split(" ", 1)[-1].split("】")[-1] for s in sent] == ["new keyed", "plain"]
    assert Delivery.objects.count() == 2


def test_team_webhook_posts_members_notifications_with_their_name(
    org, robot, immediate_tasks, django_capture_on_commit_callbacks
):
    """A team webhook carries the notifications of its team's members as "@name: text";
    a sub-team's member only when include_subteams is on; another team's never."""
    for member in (org.east_rep, org.sub_rep):
        member.language = "en"
        member.save()
    hook = services.create_webhook(
        org.east_mgr, team=org.east, name="East group", flavour="wecom", url=robot.url()
    )
    _notify(django_capture_on_commit_callbacks, org.east_rep, "member")
    _notify(django_capture_on_commit_callbacks, org.sub_rep, "sub-team member")
    _notify(django_capture_on_commit_callbacks, org.south_rep, "other team")
    assert [r["json"]["text"]["content"] for r in robot.requests] == ["[Loudou] @east_rep: member"]
    services.update_webhook(hook, actor=org.east_mgr, include_subteams=True)
    _notify(django_capture_on_commit_callbacks, org.sub_rep, "sub-team again")
    assert len(robot.requests) == 2
    assert "@sub_rep: sub-team again" in robot.requests[1]["json"]["text"]["content"]


def test_kinds_filter(org, robot, immediate_tasks, django_capture_on_commit_callbacks):
    """A webhook limited to some kinds carries only those; an inactive one nothing."""
    services.create_webhook(
        org.east_rep, name="leads only", flavour="wecom", url=robot.url(), kinds=["lead_assigned"]
    )
    services.create_webhook(
        org.east_rep, name="off", flavour="wecom", url=robot.url("/off"), active=False
    )
    _notify(django_capture_on_commit_callbacks, org.east_rep, "a lead", kind="lead_assigned")
    _notify(django_capture_on_commit_callbacks, org.east_rep, "handover", kind="handover")
    assert [r["path"] for r in robot.requests] == ["/hook?key=abc"]
    assert "a lead" in robot.requests[0]["json"]["text"]["content"]


def test_switching_a_channel_off_stops_pending_retries(
    org, robot, immediate_tasks, django_capture_on_commit_callbacks
):
    """A delivery waiting for its retry gives up when its channel is switched off."""
    robot.answers = [(500, {})]
    hook = services.create_webhook(org.east_rep, name="r", flavour="wecom", url=robot.url())
    n = _notify(django_capture_on_commit_callbacks, org.east_rep, "x")
    services.update_webhook(hook, actor=org.east_rep, active=False)
    delivery.retry_due(now=timezone.now() + timedelta(hours=1))
    d = Delivery.objects.get(notification=n)
    assert d.status == DeliveryStatus.GAVE_UP
    assert len(robot.requests) == 1


def test_email_goes_to_the_users_address(
    org, immediate_tasks, django_capture_on_commit_callbacks, settings
):
    """With SMTP configured and e-mail on, a notification is mailed to the user's
    address with the text as subject and body, the absolute link and the opt-out link."""
    settings.LOUDOU_EMAIL_NOTIFICATIONS = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "crm@example.com"
    settings.LOUDOU_BASE_URL = "https://crm.example.com"
    org.east_rep.email = "rep@example.com"
    org.east_rep.language = "en"
    org.east_rep.save()
    services.set_email_preference(org.east_rep, active=True, version=0)
    _notify(django_capture_on_commit_callbacks, org.east_rep, "New lead: 甲", url="/leads/3/")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["rep@example.com"]
    assert message.from_email == "crm@example.com"
    assert message.subject == "[Loudou] New lead: 甲"
    assert message.body.startswith("New lead: 甲\n\nhttps://crm.example.com/leads/3/\n\n-- \n")
    assert "https://crm.example.com/notifications/channels/" in message.body
    assert Delivery.objects.get().status == DeliveryStatus.SENT


def test_no_email_without_smtp_or_when_off(
    org, immediate_tasks, django_capture_on_commit_callbacks, settings
):
    """Without SMTP, or with e-mail off, or for another kind than chosen, nothing is
    mailed and no delivery row is written."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    org.east_rep.email = "rep@example.com"
    org.east_rep.save()
    services.set_email_preference(org.east_rep, active=True, kinds=["handover"], version=0)
    settings.LOUDOU_EMAIL_NOTIFICATIONS = False
    _notify(django_capture_on_commit_callbacks, org.east_rep, "a", kind="handover")
    settings.LOUDOU_EMAIL_NOTIFICATIONS = True
    _notify(django_capture_on_commit_callbacks, org.east_rep, "b", kind="lead_assigned")
    services.set_email_preference(org.east_rep, active=False)
    _notify(django_capture_on_commit_callbacks, org.east_rep, "c", kind="handover")
    assert mail.outbox == []
    assert Delivery.objects.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",  # not https
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10:8443/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://localhost/hook",
        "https://printer.local/hook",
        "ftp://example.com/hook",
        "https:///nohost",
        "not a url",
    ],
)
def test_unsafe_urls_are_refused(org, url, settings):
    """A webhook URL must be https to a public host: private, loopback, link-local
    (cloud metadata) and local names are refused and nothing is saved."""
    settings.LOUDOU_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(ValidationFailed) as refused:
        services.create_webhook(org.east_rep, name="x", flavour="wecom", url=url)
    assert refused.value.field == "url"
    assert Channel.objects.count() == 0


def test_public_https_url_is_accepted(org, settings):
    """A robot's public https URL is saved as given."""
    settings.LOUDOU_WEBHOOK_ALLOW_PRIVATE = False
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx"
    hook = services.create_webhook(org.east_rep, name="x", flavour="wecom", url=url)
    assert Channel.objects.get(pk=hook.pk).url == url


def test_private_address_refused_again_when_sending(
    english, org, robot, django_capture_on_commit_callbacks, settings
):
    """A name that passes the check on saving but resolves to a private or loopback
    address is refused before sending (the send-time check: nothing reaches the
    server). The machine's own host name resolves to such an address."""
    host = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(host, 443)}
    if all(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        pytest.skip("this machine's host name resolves to a public address")
    url = f"https://{host}:{robot.httpd.server_port}/hook"
    services.create_webhook(org.east_rep, name="r", flavour="wecom", url=url)
    settings.LOUDOU_WEBHOOK_ALLOW_PRIVATE = False
    n = _notify(django_capture_on_commit_callbacks, org.east_rep, "x")
    delivery.retry_due()
    d = Delivery.objects.get(notification=n)
    assert d.status == DeliveryStatus.FAILED
    assert host in d.last_error and "private or local address" in d.last_error
    assert robot.requests == []


def test_redirects_are_not_followed(
    org, robot, immediate_tasks, django_capture_on_commit_callbacks
):
    """A webhook answering a redirect fails (a redirect could point inside the network)."""
    robot.default = (302, {})
    services.create_webhook(org.east_rep, name="r", flavour="wecom", url=robot.url())
    n = _notify(django_capture_on_commit_callbacks, org.east_rep, "x")
    d = Delivery.objects.get(notification=n)
    assert d.status == DeliveryStatus.FAILED and "302" in d.last_error


def test_test_message_is_sent_once_even_to_an_inactive_webhook(
    org, robot, immediate_tasks, django_capture_on_commit_callbacks
):
    """ "Send test message" posts once through a switched-off webhook and records the
    outcome; a failing test gives up at once (no retries)."""
    org.east_rep.language = "en"
    org.east_rep.save()
    hook = services.create_webhook(
        org.east_rep, name="Robot", flavour="wecom", url=robot.url(), active=False
    )
    with django_capture_on_commit_callbacks(execute=True):
        d = services.send_test(hook, actor=org.east_rep)
    d.refresh_from_db()
    assert d.status == DeliveryStatus.SENT and d.is_test
    assert robot.requests[0]["json"]["text"]["content"].startswith(
        "[Loudou] Test message: this channel “Robot” works."
    )
    robot.default = (200, {"errcode": 93000, "errmsg": "invalid webhook url"})
    with django_capture_on_commit_callbacks(execute=True):
        d = services.send_test(hook, actor=org.east_rep)
    d.refresh_from_db()
    assert d.status == DeliveryStatus.GAVE_UP and "93000" in d.last_error
    assert d.attempts == 1


def test_nothing_is_sent_inside_the_request(org, robot, django_capture_on_commit_callbacks):
    """With the real (database) task queue, notify() writes the delivery row and a task
    row but posts nothing: the worker sends."""
    from django_tasks_db.models import DBTaskResult

    services.create_webhook(org.east_rep, name="r", flavour="wecom", url=robot.url())
    n = _notify(django_capture_on_commit_callbacks, org.east_rep, "later")
    d = Delivery.objects.get(notification=n)
    assert d.status == DeliveryStatus.PENDING and robot.requests == []
    task = DBTaskResult.objects.get()
    assert task.task_path == "loudou.notifications.tasks.send_deliveries"
    assert task.args_kwargs["args"] == [[d.pk]]
    assert delivery.send_ids([d.pk]) == {"sent": 1}
    assert len(robot.requests) == 1


def test_claim_is_exclusive(org, robot, django_capture_on_commit_callbacks):
    """Once claimed a row is not due for anyone else; a claim left by a dead worker is
    due again after the lease."""
    services.create_webhook(org.east_rep, name="r", flavour="wecom", url=robot.url())
    n = _notify(django_capture_on_commit_callbacks, org.east_rep, "x")
    d = Delivery.objects.get(notification=n)
    now = timezone.now()
    assert delivery.claim(d.pk, now) is not None
    assert delivery.claim(d.pk, now) is None
    assert delivery.claim(d.pk, now + delivery.LEASE - timedelta(seconds=1)) is None
    again = delivery.claim(d.pk, now + delivery.LEASE + timedelta(seconds=1))
    assert again is not None and again.attempts == 2


def test_cli_deliver_and_status(org, robot, django_capture_on_commit_callbacks):
    """``loudou notifications deliver`` sends what is due and ``status`` counts the
    deliveries per state."""
    from io import StringIO

    from django.core.management import call_command

    services.create_webhook(org.east_rep, name="r", flavour="wecom", url=robot.url())
    _notify(django_capture_on_commit_callbacks, org.east_rep, "one")
    _notify(django_capture_on_commit_callbacks, org.east_rep, "two")
    out = StringIO()
    call_command("notifications", "deliver", stdout=out)
    assert out.getvalue() == "delivered: sent 2\n"
    assert len(robot.requests) == 2
    out = StringIO()
    call_command("notifications", "status", stdout=out)
    lines = dict(line.split() for line in out.getvalue().splitlines())
    assert lines == {"pending": "0", "sending": "0", "sent": "2", "failed": "0", "gave_up": "0"}


def test_hand_off_costs_the_same_queries_for_3_or_30_notifications(org, robot):
    """A sweep's batch is handed off in a fixed number of queries, whatever its size;
    with no channel at all it costs one query."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def cost(count):
        notes = [services.notify(org.east_rep, f"n{i}") for i in range(count)]
        with CaptureQueriesContext(connection) as ctx:
            delivery.hand_off(notes)
        return len(ctx.captured_queries)

    assert cost(3) == 1
    services.create_webhook(org.east_rep, name="mine", flavour="wecom", url=robot.url())
    services.create_webhook(
        org.east_mgr, team=org.east, name="team", flavour="wecom", url=robot.url("/t")
    )
    few = cost(3)
    assert cost(30) == few
    assert Delivery.objects.count() == 2 * 33


def test_retry_job_is_scheduled_every_minute(org, robot, django_capture_on_commit_callbacks):
    """The scheduler enqueues notifications.retry_deliveries once a minute, and the task
    sends whatever is due."""
    from django_tasks_db.models import DBTaskResult

    from loudou.core import schedule
    from loudou.notifications.tasks import retry_deliveries

    name = "notifications.retry_deliveries"
    t0 = timezone.now()
    assert schedule.tick(t0, only={name}) == [name]
    assert schedule.tick(t0 + timedelta(seconds=59), only={name}) == []
    assert schedule.tick(t0 + timedelta(seconds=60), only={name}) == [name]
    assert (
        DBTaskResult.objects.filter(
            task_path=f"loudou.notifications.tasks.{name.split('.')[1]}"
        ).count()
        == 2
    )
    services.create_webhook(org.east_rep, name="r", flavour="wecom", url=robot.url())
    _notify(django_capture_on_commit_callbacks, org.east_rep, "due")
    assert retry_deliveries.call() == {"sent": 1}
    assert len(robot.requests) == 1
