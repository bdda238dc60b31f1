"""API authentication: a bearer token for scripts, the browser session for pages."""

from django.utils import timezone
from ninja.security import HttpBearer, SessionAuth

from loudou.org.models import ApiToken


class BearerToken(HttpBearer):
    """``Authorization: Bearer ld_...``, a token made by ``loudou token create``."""

    def authenticate(self, request, token):
        if not token:
            return None
        row = (
            ApiToken.objects.select_related("user__team")
            .filter(key_hash=ApiToken.hash_key(token), revoked_at__isnull=True)
            .first()
        )
        if row is None or not row.user.is_active:
            return None
        now = timezone.now()
        # Touch at most once a minute, so a busy script does not write on every call.
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        request.user = row.user
        return row.user


class ActiveSession(SessionAuth):
    """The logged-in browser session (CSRF checked on unsafe methods)."""

    def authenticate(self, request, key):
        user = super().authenticate(request, key)
        if user is not None and user.is_active:
            return user
        return None


AUTH = [BearerToken(), ActiveSession()]
