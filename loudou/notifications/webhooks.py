"""Chat robot webhooks: checking a URL, the message body of each robot, signing, and
one POST.

The formats follow each robot's documentation for a plain text message:

- WeCom (企业微信) group robot: ``{"msgtype": "text", "text": {"content": ...}}``;
  answers ``{"errcode": 0, "errmsg": "ok"}``.
- DingTalk (钉钉) custom robot: the same body; with a signing secret the URL gets
  ``&timestamp=<ms>&sign=<urlencoded base64 HMAC-SHA256(key=secret,
  msg="<timestamp>\\n<secret>")>``; answers ``{"errcode": 0, ...}``.
- Feishu / Lark (飞书) custom bot: ``{"msg_type": "text", "content": {"text": ...}}``;
  with a secret the body also carries ``"timestamp": "<s>"`` and ``"sign": base64
  HMAC-SHA256(key="<timestamp>\\n<secret>", msg="")``; answers ``{"code": 0, ...}``.
- Generic JSON: ``{"text", "kind", "url", "user", "notification_id", "created_at"}``;
  with a secret, headers ``X-Loudou-Timestamp`` and ``X-Loudou-Signature: sha256=<hex
  HMAC-SHA256(key=secret, msg="<timestamp>.<body>")>``. Any 2xx answer is success.

A robot answering HTTP 200 with a non-zero ``errcode``/``code`` refused the message
(wrong keyword, bad signature, rate limit): that is a failure and is retried.

Server-side request forgery: a URL must be https and its host must not be a private,
loopback, link-local or otherwise reserved address — checked on the literal host when
the URL is saved and on every resolved address before each POST; redirects are not
followed. ``LOUDOU_WEBHOOK_ALLOW_PRIVATE=1`` lifts both rules (a relay on the intranet;
the tests' local server).
"""

import base64
import hashlib
import hmac
import ipaddress
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings
from django.utils.translation import gettext as _

from .choices import Flavour

TIMEOUT_SECONDS = 5
MAX_ANSWER_BYTES = 64 * 1024


class WebhookError(Exception):
    """The POST failed or the robot refused the message; the message says why."""


class UnsafeURL(ValueError):
    """The URL is not allowed as a webhook (scheme, host)."""


# --- URL checks -----------------------------------------------------------------------


def _allow_private() -> bool:
    return bool(getattr(settings, "LOUDOU_WEBHOOK_ALLOW_PRIVATE", False))


def _address_is_private(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _local_name(host: str) -> bool:
    host = host.rstrip(".").lower()
    return host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".lan"))


def check_url(url: str) -> str:
    """The cleaned URL, or :class:`UnsafeURL` with the reason. Looks only at the text
    (no DNS look-up while a person waits); :func:`post` checks the resolved addresses."""
    url = (url or "").strip()
    if not url:
        raise UnsafeURL(_("Enter the webhook URL."))
    if len(url) > 500:
        raise UnsafeURL(_("The URL is too long (at most 500 characters)."))
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(_("This is not a valid URL.")) from exc
    allow_private = _allow_private()
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme.lower() not in schemes:
        raise UnsafeURL(_("The URL must start with https://."))
    host = parts.hostname or ""
    if not host or any(c.isspace() for c in url):
        raise UnsafeURL(_("This is not a valid URL."))
    if port == 0:
        raise UnsafeURL(_("This is not a valid URL."))
    if not allow_private and (_local_name(host) or _address_is_private(host)):
        raise UnsafeURL(
            _("Webhooks may not point to a private or local address (%(host)s).") % {"host": host}
        )
    return url


def _check_resolved(url: str) -> None:
    if _allow_private():
        return
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        error = _("Cannot resolve %(host)s: %(error)s") % {"host": host, "error": exc}
        raise WebhookError(error) from exc
    for info in infos:
        if _address_is_private(info[4][0]):
            raise WebhookError(
                _("Refused: %(host)s resolves to a private or local address.") % {"host": host}
            )


# --- bodies and signatures ------------------------------------------------------------


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's ``sign``: base64 HMAC-SHA256 keyed with the secret over
    "timestamp\\nsecret" (before URL encoding)."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's ``sign``: base64 HMAC-SHA256 keyed with "timestamp\\nsecret" over an
    empty message."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def json_signature(secret: str, timestamp_s: int, body: bytes) -> str:
    """The generic webhook's ``X-Loudou-Signature``."""
    mac = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def build_request(flavour: str, url: str, secret: str, text: str, *, extra=None, now=None):
    """(url, body bytes, headers) of one text message to a robot of ``flavour``."""
    now = time.time() if now is None else now
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Loudou"}
    if flavour in (Flavour.WECOM, Flavour.DINGTALK):
        payload = {"msgtype": "text", "text": {"content": text}}
        if flavour == Flavour.DINGTALK and secret:
            timestamp = int(now * 1000)
            query = urllib.parse.urlencode(
                {"timestamp": timestamp, "sign": dingtalk_sign(secret, timestamp)}
            )
            url = url + ("&" if urllib.parse.urlsplit(url).query else "?") + query
    elif flavour == Flavour.FEISHU:
        payload = {"msg_type": "text", "content": {"text": text}}
        if secret:
            timestamp = int(now)
            payload = {
                "timestamp": str(timestamp),
                "sign": feishu_sign(secret, timestamp),
            } | payload
    elif flavour == Flavour.JSON:
        payload = {"text": text, **(extra or {})}
    else:
        raise ValueError(f"not a webhook flavour: {flavour}")
    body = json.dumps(payload, ensure_ascii=False).encode()
    if flavour == Flavour.JSON and secret:
        timestamp = int(now)
        headers["X-Loudou-Timestamp"] = str(timestamp)
        headers["X-Loudou-Signature"] = json_signature(secret, timestamp, body)
    return url, body, headers


# --- sending --------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect could lead to an internal address: treat it as an error


_opener = urllib.request.build_opener(_NoRedirect)


def _robot_error(flavour: str, answer: bytes) -> str | None:
    """The robot's refusal in a 2xx answer, or None when it accepted the message."""
    if flavour == Flavour.JSON:
        return None
    try:
        data = json.loads(answer.decode("utf-8", "replace") or "{}")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for code_key, message_key in (
        ("errcode", "errmsg"),
        ("code", "msg"),
        ("StatusCode", "StatusMessage"),
    ):
        code = data.get(code_key)
        if code not in (None, 0, "0"):
            return _("The robot refused the message: %(code)s %(message)s") % {
                "code": code, "message": data.get(message_key, ""),
            }  # fmt: skip
    return None


def post(flavour: str, url: str, secret: str, text: str, *, extra=None) -> None:
    """Send one text message; :class:`WebhookError` when it did not arrive."""
    try:
        check_url(url)
    except UnsafeURL as exc:
        raise WebhookError(str(exc)) from exc
    _check_resolved(url)
    url, body, headers = build_request(flavour, url, secret, text, extra=extra)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    timeout = getattr(settings, "LOUDOU_WEBHOOK_TIMEOUT", TIMEOUT_SECONDS)
    try:
        with _opener.open(request, timeout=timeout) as response:
            answer = response.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace").strip()
        raise WebhookError(f"HTTP {exc.code} {exc.reason}: {detail}".strip().rstrip(":")) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebhookError(
            _("Could not reach the webhook: %(reason)s") % {"reason": reason}
        ) from exc
    refusal = _robot_error(flavour, answer)
    if refusal:
        raise WebhookError(refusal)
