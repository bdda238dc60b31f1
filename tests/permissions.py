"""Generic permission checks for every page and endpoint (after NetBox's ViewTestCases).

Every object in Loudou is seen through one gate, ``Model.objects.visible_to(user)``
(DESIGN.md rule 2). This module checks that a model's pages and API honour it, for every
kind of user, without each test module writing the same twenty tests again.

How to use it
-------------
Subclass :class:`PermissionChecks` in a test module (the subclass name must start with
``Test``), say how to make one object and where its pages and endpoints live::

    from tests.permissions import PermissionChecks

    class TestOpportunityPermissions(PermissionChecks):
        page_urls = ("/pipeline/{obj.pk}/", "/pipeline/{obj.pk}/edit/")
        list_url = "/pipeline/"
        api_url = "/api/v1/opportunities/{obj.pk}"
        api_list_url = "/api/v1/opportunities"

        def make_object(self, org, owner):
            return services.create_opportunity(actor=owner, name="Deal", ...)

        # optional: prove that a write by someone out of scope is a 404 and changes nothing
        edit_url = "/pipeline/{obj.pk}/edit/"
        def edit_data(self, obj):
            return {"name": "Renamed", "version": obj.version, ...}
        def api_patch_data(self, obj):
            return {"version": obj.version, "name": "Renamed"}

    class TestOpportunityPermissionsInSubteam(TestOpportunityPermissions):
        '''The same checks for an object owned in the sub-team, to prove subtree scope.'''
        owner = "sub_rep"
        team_rep = "east_rep"   # east_sub has no second rep; a rep of the parent team

URLs are ``str.format`` templates receiving the object as ``obj``. The inherited tests
are parametrised over the actors below (and over ``page_urls``), so a failure names
both, e.g. ``test_page[manager-/customers/{obj.pk}/edit/]``. Whatever a subclass leaves
as ``None`` (or empty) is reported as skipped, so a missing page is visible.

Actors, all from the ``org`` fixture (tests/conftest.py) unless said otherwise:

========== ================================================================ ==========
actor      who                                                              sees it?
========== ================================================================ ==========
anonymous  nobody logged in: pages redirect to the login, the API says 401  no
owner      ``owner`` (default ``east_rep``), who owns the object            yes
shared     a rep of *another* team (created here) the object is shared with yes
team_rep   ``team_rep`` (default ``east_rep2``), a rep beside the owner     no
other_rep  ``other_rep`` (default ``south_rep``), a rep of another team     no
manager    ``manager`` (default ``east_mgr``), manages the owner's subtree  yes
other_mgr  ``other_manager`` (default ``south_mgr``), whose team holds the  no
           ``shared`` collaborator but not the owner
admin      ``admin``                                                        yes
========== ================================================================ ==========

What is asserted, for each actor: pages — anonymous is redirected to the login page with
``next``, an actor out of scope gets 404 (never 403: existence is not leaked), an actor in
scope gets 200; the list page shows the object (``list_marker``) only in scope; API
detail — 401 JSON / 404 JSON identical to a missing id / 200 with the object's id; API
list — the object's id is among ``items`` only in scope. With ``edit_url`` +
``edit_data`` or ``api_patch_data``, a write out of scope is a 404 and leaves the row
exactly as it was, and the same write in scope succeeds (302 / 200) and changes it.

Override ``share`` when sharing goes through a parent (contacts are shared through their
account), ``list_marker`` when the list page does not link ``get_absolute_url()``, and
``visible_actors`` for a model with another scope rule.
"""

import copy
from dataclasses import dataclass, field

import pytest

from loudou.org.models import Role
from loudou.org.services import create_token, create_user

ANONYMOUS = "anonymous"
OWNER = "owner"
SHARED = "shared"
TEAM_REP = "team_rep"
OTHER_REP = "other_rep"
MANAGER = "manager"
OTHER_MANAGER = "other_mgr"
ADMIN = "admin"

ACTORS = (OWNER, SHARED, TEAM_REP, OTHER_REP, MANAGER, OTHER_MANAGER, ADMIN)
"""Logged-in actors; :data:`ANONYMOUS` is checked by its own tests."""

LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _form_errors(response):
    """The errors of the form a page re-rendered, to explain a failed save."""
    form = (response.context or {}).get("form") if response.status_code == 200 else None
    return form.errors if form is not None else response.status_code


@dataclass
class Scene:
    """One object under test and the user behind each actor name."""

    org: object
    obj: object
    users: dict = field(default_factory=dict)


class PermissionChecks:
    """Base class of the permission tests of one model; see the module docstring."""

    # --- who: attribute names on the ``org`` fixture -----------------------------------
    owner = "east_rep"
    team_rep = "east_rep2"
    other_rep = "south_rep"
    manager = "east_mgr"
    other_manager = "south_mgr"
    admin = "admin"
    visible_actors = frozenset({OWNER, SHARED, MANAGER, ADMIN})

    # --- where: ``str.format`` templates receiving ``obj`` -----------------------------
    page_urls: tuple[str, ...] = ()
    list_url: str | None = None
    api_url: str | None = None
    api_list_url: str | None = None
    edit_url: str | None = None

    # --- what: hooks a subclass fills in --------------------------------------------
    def make_object(self, org, owner):
        """Create and return the object under test, owned by ``owner``."""
        raise NotImplementedError

    def share(self, obj, user):
        """Share ``obj`` with ``user``; return False if the model cannot be shared."""
        obj.shared_with.add(user)
        return True

    def list_marker(self, obj) -> str:
        """A string the list page contains exactly when it lists ``obj``."""
        return f'href="{obj.get_absolute_url()}"'

    def api_list_ids(self, data) -> list:
        """The ids of the objects in an API list response."""
        return [item["id"] for item in data["items"]]

    def edit_data(self, obj) -> dict | None:
        """POST data of a valid edit of ``obj`` at ``edit_url``, or None."""
        return None

    def api_patch_data(self, obj) -> dict | None:
        """JSON body of a valid PATCH of ``obj`` at ``api_url``, or None."""
        return None

    def snapshot(self, obj) -> dict:
        """Every column of the object's row, to prove a refused write changed nothing."""
        return type(obj)._default_manager.filter(pk=obj.pk).values().get()

    # --- parametrisation -------------------------------------------------------------
    def pytest_generate_tests(self, metafunc):
        if "page_url" in metafunc.fixturenames:
            if self.page_urls:
                metafunc.parametrize("page_url", self.page_urls)
            else:
                metafunc.parametrize(
                    "page_url", [pytest.param(None, marks=pytest.mark.skip("no page_urls"))]
                )

    @pytest.fixture
    def scene(self, org):
        owner = getattr(org, self.owner)
        obj = self.make_object(org, owner)
        users = {
            OWNER: owner,
            TEAM_REP: getattr(org, self.team_rep),
            OTHER_REP: getattr(org, self.other_rep),
            MANAGER: getattr(org, self.manager),
            OTHER_MANAGER: getattr(org, self.other_manager),
            ADMIN: getattr(org, self.admin),
        }
        collaborator = create_user(
            "collaborator", name="Collaborator", role=Role.REP, team=org.south
        )
        if self.share(obj, collaborator):
            users[SHARED] = collaborator
        return Scene(org=org, obj=obj, users=users)

    # --- helpers ---------------------------------------------------------------------
    def user_for(self, scene, actor):
        if actor not in scene.users:
            pytest.skip(f"{type(self).__name__} has no {actor!r} actor")
        return scene.users[actor]

    def login(self, client, user):
        client.force_login(user, backend=LOGIN_BACKEND)
        return client

    def bearer(self, user) -> dict:
        _token, key = create_token(user, name="permission test")
        return {"Authorization": f"Bearer {key}"}

    def url(self, name, scene):
        """The URL the class attribute ``name`` declares, for the scene's object."""
        template = getattr(self, name)
        if template is None:
            pytest.skip(f"{type(self).__name__} declares no {name}")
        return template.format(obj=scene.obj)

    def sees(self, actor) -> bool:
        return actor in self.visible_actors

    # --- pages -------------------------------------------------------------------------
    def test_page_anonymous_redirects_to_login(self, client, scene, page_url):
        """Anonymous visitors of an object's page are sent to the login page."""
        url = page_url.format(obj=scene.obj)
        response = client.get(url)
        assert response.status_code == 302
        assert response.url == f"/login/?next={url}"

    @pytest.mark.parametrize("actor", ACTORS)
    def test_page(self, client, scene, actor, page_url):
        """An object's page answers 200 in the actor's scope and 404 outside it."""
        url = page_url.format(obj=scene.obj)
        self.login(client, self.user_for(scene, actor))
        response = client.get(url)
        assert response.status_code == (200 if self.sees(actor) else 404), url

    def test_list_page_anonymous_redirects_to_login(self, client, scene):
        """Anonymous visitors of the list page are sent to the login page."""
        url = self.url("list_url", scene)
        response = client.get(url)
        assert response.status_code == 302
        assert response.url == f"/login/?next={url}"

    @pytest.mark.parametrize("actor", ACTORS)
    def test_list_page(self, client, scene, actor):
        """The list page lists the object exactly for the actors in scope."""
        url = self.url("list_url", scene)
        self.login(client, self.user_for(scene, actor))
        response = client.get(url)
        assert response.status_code == 200
        assert (self.list_marker(scene.obj) in response.content.decode()) is self.sees(actor)

    # --- API ---------------------------------------------------------------------------
    def test_api_anonymous_is_401(self, client, scene):
        """The API answers 401 in JSON to a caller without credentials."""
        names = [name for name in ("api_url", "api_list_url") if getattr(self, name)]
        if not names:
            pytest.skip(f"{type(self).__name__} declares no api_url or api_list_url")
        for name in names:
            response = client.get(self.url(name, scene))
            assert response.status_code == 401, name
            assert response.json()["code"] == "unauthenticated", name

    @pytest.mark.parametrize("actor", ACTORS)
    def test_api_detail(self, client, scene, actor):
        """The API gives the object in scope and a 404 like a missing id outside it."""
        url = self.url("api_url", scene)
        headers = self.bearer(self.user_for(scene, actor))
        response = client.get(url, headers=headers)
        if self.sees(actor):
            assert response.status_code == 200
            assert response.json()["id"] == scene.obj.pk
        else:
            assert response.status_code == 404
            missing = client.get(self._missing_url(scene), headers=headers)
            assert missing.status_code == 404
            assert response.json() == missing.json()
            assert response.json()["code"] == "not_found"

    @pytest.mark.parametrize("actor", ACTORS)
    def test_api_list(self, client, scene, actor):
        """The API list holds the object exactly for the actors in scope."""
        url = self.url("api_list_url", scene)
        response = client.get(url, headers=self.bearer(self.user_for(scene, actor)))
        assert response.status_code == 200
        assert (scene.obj.pk in self.api_list_ids(response.json())) is self.sees(actor)

    # --- writes ------------------------------------------------------------------------
    @pytest.mark.parametrize("actor", ACTORS)
    def test_page_edit(self, client, scene, actor):
        """A valid edit form saves in scope; outside it is a 404 that changes nothing."""
        url = self.url("edit_url", scene)
        data = self.edit_data(scene.obj)
        if data is None:
            pytest.skip("no edit_data")
        before = self.snapshot(scene.obj)
        self.login(client, self.user_for(scene, actor))
        response = client.post(url, data)
        if self.sees(actor):
            assert response.status_code == 302, _form_errors(response)
            assert self.snapshot(scene.obj) != before
        else:
            assert response.status_code == 404
            assert self.snapshot(scene.obj) == before

    def test_page_edit_anonymous_changes_nothing(self, client, scene):
        """An anonymous edit is sent to the login page and changes nothing."""
        url = self.url("edit_url", scene)
        data = self.edit_data(scene.obj)
        if data is None:
            pytest.skip("no edit_data")
        before = self.snapshot(scene.obj)
        response = client.post(url, data)
        assert response.status_code == 302
        assert response.url == f"/login/?next={url}"
        assert self.snapshot(scene.obj) == before

    @pytest.mark.parametrize("actor", ACTORS)
    def test_api_patch(self, client, scene, actor):
        """A valid PATCH succeeds in scope; outside it is a 404 that changes nothing."""
        url = self.url("api_url", scene)
        data = self.api_patch_data(scene.obj)
        if data is None:
            pytest.skip("no api_patch_data")
        before = self.snapshot(scene.obj)
        response = client.patch(
            url,
            data,
            content_type="application/json",
            headers=self.bearer(self.user_for(scene, actor)),
        )
        if self.sees(actor):
            assert response.status_code == 200, response.content
            assert self.snapshot(scene.obj) != before
        else:
            assert response.status_code == 404
            assert response.json()["code"] == "not_found"
            assert self.snapshot(scene.obj) == before

    def test_api_patch_anonymous_is_401(self, client, scene):
        """An anonymous PATCH is a 401 and changes nothing."""
        url = self.url("api_url", scene)
        data = self.api_patch_data(scene.obj)
        if data is None:
            pytest.skip("no api_patch_data")
        before = self.snapshot(scene.obj)
        response = client.patch(url, data, content_type="application/json")
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"
        assert self.snapshot(scene.obj) == before

    def _missing_url(self, scene):
        """The API detail URL of an object that does not exist."""
        model = type(scene.obj)
        last = model._default_manager.order_by("-pk").values_list("pk", flat=True).first() or 0
        missing = copy.copy(scene.obj)  # same parents, an id no row has
        missing.pk = last + 1000
        return self.api_url.format(obj=missing)
