"""The language switch: remembered for the user, set in a cookie, never an open redirect."""

import pytest
from django.conf import settings

from loudou.org.models import User

COOKIE = settings.LANGUAGE_COOKIE_NAME


def test_switch_stores_users_language_and_sets_cookie(client, org):
    """A logged-in user's choice is saved on their profile and in the language cookie."""
    client.force_login(org.east_rep)
    response = client.post("/language/", {"language": "en", "next": "/customers/"})
    assert response.status_code == 302
    assert response.url == "/customers/"
    assert User.objects.get(pk=org.east_rep.pk).language == "en"
    assert response.cookies[COOKIE].value == "en"


def test_switch_changes_only_the_users_own_language(client, org):
    """Switching saves the language of the user who switched and of nobody else."""
    client.force_login(org.east_rep)
    client.post("/language/", {"language": "en"})
    assert dict(User.objects.exclude(language="").values_list("username", "language")) == {
        "east_rep": "en"
    }


def test_switch_for_anonymous_sets_only_cookie(client, org):
    """An anonymous visitor's choice lives in the cookie; no user is changed."""
    response = client.post("/language/", {"language": "en", "next": "/login/"})
    assert response.status_code == 302
    assert response.url == "/login/"
    assert response.cookies[COOKIE].value == "en"
    assert User.objects.exclude(language="").count() == 0


def test_unknown_language_falls_back_to_default(client, org):
    """A language the product does not offer is replaced by the default language."""
    client.force_login(org.east_rep)
    response = client.post("/language/", {"language": "klingon"})
    assert response.cookies[COOKIE].value == settings.LANGUAGE_CODE
    assert User.objects.get(pk=org.east_rep.pk).language == settings.LANGUAGE_CODE


def test_switch_requires_post(client, org):
    """A GET cannot change the language (it would be a cross-site trick)."""
    client.force_login(org.east_rep)
    response = client.get("/language/", {"language": "en"})
    assert response.status_code == 405
    assert User.objects.get(pk=org.east_rep.pk).language == ""


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "http://evil.example",
        "https:///evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
    ],
)
def test_next_cannot_leave_the_site(client, org, target):
    """A ``next`` pointing to another site is replaced by the home page."""
    client.force_login(org.east_rep)
    response = client.post("/language/", {"language": "en", "next": target})
    assert response.status_code == 302
    assert response.url == "/"


def test_next_on_same_host_with_scheme_is_kept(client, org):
    """A full URL on this very host is an allowed ``next``."""
    client.force_login(org.east_rep)
    response = client.post(
        "/language/", {"language": "en", "next": "http://testserver/customers/?q=a"}
    )
    assert response.url == "http://testserver/customers/?q=a"


def test_saved_language_is_used_on_next_page(client, org):
    """After switching, pages come in the chosen language even without the cookie."""
    client.force_login(org.east_rep)
    client.post("/language/", {"language": "en"})
    client.cookies.pop(COOKIE)
    response = client.get("/customers/")
    assert response.headers["Content-Language"] == "en"
    assert '<html lang="en">' in response.content.decode()


def test_login_sets_cookie_to_saved_language(client, org):
    """Logging in sets the language cookie to the user's saved language."""
    from tests.conftest import PASSWORD

    User.objects.filter(pk=org.east_rep.pk).update(language="en")
    response = client.post("/login/", {"username": "east_rep", "password": PASSWORD})
    assert response.status_code == 302
    assert response.cookies[COOKIE].value == "en"
