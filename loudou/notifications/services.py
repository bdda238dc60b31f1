"""Writes to notifications: send, mark read; the channels (e-mail preference, webhooks,
test messages). Every other app notifies through :func:`notify` (or
:func:`notify_many` for a sweep's summaries)."""

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.core.exceptions import NotPermitted, ValidationFailed
from loudou.core.services import check_version

from . import channels
from .choices import SIGNING_FLAVOURS, WEBHOOK_FLAVOURS, Flavour
from .models import Channel, Delivery, Notification

TEXT_MAX = 500


def _row(user, text, url, kind, key) -> Notification:
    return Notification(
        user_id=getattr(user, "pk", user), text=str(text)[:TEXT_MAX], url=url[:500],
        kind=kind[:40], key=(key or "")[:200],
    )  # fmt: skip


def notify(user, text, *, url: str = "", kind: str = "", key: str | None = None):
    """Tell ``user`` something in the app. With a ``key``, the user is told at most once
    for that key: a second call (a re-run, a parallel worker) returns None and writes
    nothing. Returns the new notification otherwise. The registered channels
    (channels.py) receive it after the transaction commits."""
    if user is None:
        return None
    row = _row(user, text, url, kind, key)
    if key:
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:
            return None
    else:
        row.save()
    transaction.on_commit(lambda: channels.deliver([row]))
    return row


def notify_many(items) -> int:
    """Send many notifications at once: ``items`` are dicts with ``user``, ``text`` and
    optionally ``url``, ``kind``, ``key``. Rows whose (user, key) exists already are
    skipped. One INSERT per 500 rows; returns how many rows were attempted. Channels
    receive the keyed rows that are new."""
    rows = [
        _row(i["user"], i["text"], i.get("url", ""), i.get("kind", ""), i.get("key")) for i in items
    ]
    if not rows:
        return 0
    keyed = [(r.user_id, r.key) for r in rows if r.key]
    before = set()
    if keyed and channels.active():
        before = set(
            Notification.objects.filter(
                user_id__in={u for u, _k in keyed}, key__in={k for _u, k in keyed}
            ).values_list("user_id", "key")
        )
    keyed_rows = [r for r in rows if r.key]
    plain_rows = [r for r in rows if not r.key]
    # Rows without a key cannot conflict, so they are inserted plainly and get their ids
    # back; keyed rows may conflict (ignore_conflicts returns no ids: looked up below).
    Notification.objects.bulk_create(plain_rows, batch_size=500)
    Notification.objects.bulk_create(keyed_rows, batch_size=500, ignore_conflicts=True)
    if channels.active():
        fresh = plain_rows + [r for r in keyed_rows if (r.user_id, r.key) not in before]
        _fill_ids([r for r in fresh if r.key])
        fresh = [r for r in fresh if r.pk]
        transaction.on_commit(lambda: channels.deliver(fresh))
    return len(rows)


def _fill_ids(rows) -> None:
    """Give keyed rows inserted with ``ignore_conflicts`` their ids (one query), so the
    channels can refer to them."""
    if not rows:
        return
    ids = dict(
        ((user_id, key), pk)
        for pk, user_id, key in Notification.objects.filter(
            user_id__in={r.user_id for r in rows}, key__in={r.key for r in rows}
        ).values_list("pk", "user_id", "key")
    )
    for row in rows:
        row.pk = ids.get((row.user_id, row.key))


def unread_count(user) -> int:
    """The bell's number: one COUNT on the partial index of unread rows."""
    if user is None or not user.is_authenticated:
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def mark_read(user, ids) -> int:
    """Mark the user's notifications ``ids`` read (someone else's ids are ignored).
    Returns how many changed."""
    return (
        Notification.objects.for_user(user)
        .filter(pk__in=list(ids), read_at__isnull=True)
        .update(read_at=timezone.now())
    )


def mark_all_read(user) -> int:
    """Mark every unread notification of the user read; returns how many changed."""
    return Notification.objects.for_user(user).unread().update(read_at=timezone.now())


# --- channels: e-mail preference, webhooks, test messages ----------------------------
#
# Lock contract: a channel is changed only under its row lock (select_for_update) and
# with the version the editor read; a team webhook only by a manager of the team (its
# subtree) or an admin, a personal one only by its owner. Refusals change nothing.

CHANNEL_FIELDS = ("name", "flavour", "url", "secret", "kinds", "active", "include_subteams")


def can_manage_team(user, team) -> bool:
    """Whether ``user`` may configure ``team``'s webhooks: an admin, or a manager of
    the team or of a team above it."""
    if user is None or not user.is_authenticated or not user.is_active or team is None:
        return False
    if user.sees_everything:
        return True
    path = user.managed_team_path
    return bool(path) and team.path.startswith(path)


def manageable_teams(user):
    """The teams whose webhooks ``user`` may configure."""
    from loudou.org.models import Team

    if user is None or not user.is_authenticated or not user.is_active:
        return Team.objects.none()
    if user.sees_everything:
        return Team.objects.all()
    if user.managed_team_path:
        return Team.objects.filter(path__startswith=user.managed_team_path)
    return Team.objects.none()


def _check_edit(channel: Channel, actor) -> None:
    if channel.team_id is not None:
        allowed = can_manage_team(actor, channel.team)
    else:
        allowed = actor is not None and channel.user_id == actor.pk
    if not allowed:
        raise NotPermitted()


def _clean_kinds(kinds) -> list[str]:
    from . import kinds as registry

    cleaned = []
    for kind in kinds or ():
        kind = str(kind).strip()
        if not registry.is_known(kind):
            raise ValidationFailed(
                _("Unknown notification kind: %(kind)s") % {"kind": kind[:40]}, field="kinds"
            )
        if kind not in cleaned:
            cleaned.append(kind)
    return sorted(cleaned)


def _clean_webhook(channel: Channel) -> None:
    """Validate a webhook's fields in place; ValidationFailed names the field."""
    from . import webhooks

    if channel.flavour not in WEBHOOK_FLAVOURS:
        raise ValidationFailed(_("Choose the type of robot."), field="flavour")
    channel.name = (channel.name or "").strip()
    if not channel.name:
        raise ValidationFailed(_("Give the webhook a name."), field="name")
    if len(channel.name) > 100:
        raise ValidationFailed(_("At most 100 characters."), field="name")
    try:
        channel.url = webhooks.check_url(channel.url)
    except webhooks.UnsafeURL as exc:
        raise ValidationFailed(str(exc), field="url") from exc
    channel.secret = (channel.secret or "").strip()
    if channel.secret and channel.flavour not in SIGNING_FLAVOURS:
        raise ValidationFailed(
            _("WeCom group robots do not sign messages; leave the secret empty."),
            field="secret",
        )
    if len(channel.secret) > 200:
        raise ValidationFailed(_("At most 200 characters."), field="secret")
    if channel.user_id is not None:
        channel.include_subteams = False


def create_webhook(actor, *, team=None, **fields) -> Channel:
    """Add a chat webhook: the actor's own, or ``team``'s (a manager of it or an admin).
    ``fields``: name, flavour, url, secret, kinds, active, include_subteams."""
    unknown = set(fields) - set(CHANNEL_FIELDS)
    if unknown:
        raise TypeError(f"unknown channel fields: {sorted(unknown)}")
    if team is not None and not can_manage_team(actor, team):
        raise ValidationFailed(_("Choose a team you manage."), field="team")
    channel = Channel(
        user=None if team is not None else actor, team=team, created_by=actor,
        name=fields.get("name", ""), flavour=fields.get("flavour", ""),
        url=fields.get("url", ""), secret=fields.get("secret", "") or "",
        kinds=_clean_kinds(fields.get("kinds")), active=fields.get("active", True),
        include_subteams=bool(fields.get("include_subteams", False)),
    )  # fmt: skip
    _clean_webhook(channel)
    with transaction.atomic():
        channel.save()
    return channel


def update_webhook(channel: Channel, *, actor, version=None, **fields) -> Channel:
    """Change a webhook's fields (those given; ``secret=None`` keeps the secret, ``""``
    clears it). 409 on a stale ``version``."""
    unknown = set(fields) - set(CHANNEL_FIELDS)
    if unknown:
        raise TypeError(f"unknown channel fields: {sorted(unknown)}")
    with transaction.atomic():
        locked = (
            Channel.objects.select_for_update(of=("self",))
            .select_related("team")
            .get(pk=channel.pk)
        )
        if locked.is_email:
            raise ValidationFailed(_("This is not a webhook."))
        _check_edit(locked, actor)
        check_version(locked, version)
        for name, value in fields.items():
            if name == "secret" and value is None:
                continue
            if name == "kinds":
                value = _clean_kinds(value)
            if value is not None:
                setattr(locked, name, value)
        _clean_webhook(locked)
        locked.version += 1
        locked.save()
    return locked


def delete_channel(channel: Channel, *, actor, version=None) -> None:
    """Remove a webhook and its delivery history."""
    with transaction.atomic():
        locked = (
            Channel.objects.select_for_update(of=("self",))
            .select_related("team")
            .get(pk=channel.pk)
        )
        _check_edit(locked, actor)
        check_version(locked, version)
        locked.delete()


def email_channel(user) -> Channel:
    """The user's e-mail channel, or an unsaved one that is off (no row until the user
    first saves a preference)."""
    found = Channel.objects.filter(user=user, flavour=Flavour.EMAIL).first()
    return found or Channel(user=user, flavour=Flavour.EMAIL, active=False, version=0)


def set_email_preference(user, *, active=None, kinds=None, version=None) -> Channel:
    """Turn the user's e-mail notifications on or off and choose their kinds (``None``
    leaves a value as it is). ``version`` 0 means "I saw no saved preference"."""
    cleaned = None if kinds is None else _clean_kinds(kinds)
    with transaction.atomic():
        try:
            with transaction.atomic():
                Channel.objects.get_or_create(
                    user=user, flavour=Flavour.EMAIL,
                    defaults={"active": False, "created_by": user, "version": 0},
                )  # fmt: skip
        except IntegrityError:  # created by a parallel request a moment ago
            pass
        locked = Channel.objects.select_for_update().get(user=user, flavour=Flavour.EMAIL)
        check_version(locked, version)
        if active is not None:
            locked.active = bool(active)
        if cleaned is not None:
            locked.kinds = cleaned
        locked.version += 1
        locked.save()
    return locked


def send_test(channel: Channel, *, actor) -> Delivery:
    """Queue a test message through ``channel`` (even a switched-off one, to try it
    before turning it on). The worker sends it once; the delivery row shows the outcome."""
    from . import delivery

    if channel.is_email:
        if channel.user_id != getattr(actor, "pk", None):
            raise NotPermitted()
    else:
        _check_edit(channel, actor)
    with transaction.atomic():
        if channel.pk is None:  # an e-mail preference never saved yet
            channel = set_email_preference(actor)
        return delivery.create_test(channel, actor=actor)
