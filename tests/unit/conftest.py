"""Fixtures for the unit tests of the foundation."""

import pytest

from loudou.org.services import create_token


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Argon2 makes the ``org`` fixture cost a second per test; hashing strength is not
    what these tests are about."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def english(settings):
    """Answer in English, so that tests can compare messages word for word."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def bearer():
    """``bearer(user)`` makes a token for ``user`` and returns the request headers."""

    def make(user):
        _token, key = create_token(user)
        return {"Authorization": f"Bearer {key}"}

    return make
