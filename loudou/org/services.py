"""Writes to the organisation: users and API tokens."""

from django.db import transaction
from django.utils import timezone

from .models import ApiToken, Role, User


@transaction.atomic
def create_user(
    username: str,
    *,
    password: str | None = None,
    name: str = "",
    role: str = Role.REP,
    team=None,
    region=None,
    email: str = "",
    **profile,
) -> User:
    """Create a user with a role. An admin also gets Django admin access."""
    user = User(
        username=username,
        name=name,
        role=role,
        team=team,
        region=region,
        email=email,
        is_staff=role == Role.ADMIN,
        is_superuser=role == Role.ADMIN,
        **profile,
    )
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user


def create_token(user: User, *, name: str = "") -> tuple[ApiToken, str]:
    """Make an API token for ``user``. Returns the row and the key, which is shown once
    and never stored (only its hash is)."""
    key = ApiToken.new_key()
    token = ApiToken.objects.create(
        user=user, name=name, key_hash=ApiToken.hash_key(key), hint=key[:10]
    )
    return token, key


def revoke_token(token: ApiToken) -> None:
    """Stop a token from working; the row stays for the audit trail."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
