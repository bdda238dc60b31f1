"""The ``loudou`` command line: users, tokens, demo data and the deployment check."""

import functools
import os
import secrets
import subprocess
import sys
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from loudou.customers.models import Account
from loudou.org.models import ApiToken, User


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


class TestCreateUser:
    def test_creates_manager_in_team_and_region(self, org, english):
        """createuser makes a user with the given role, team, region and password."""
        out = run(
            "createuser", "li_ming", "--role", "manager", "--team", "East Sub",
            "--region", "上海", "--name", "李明", "--password", "a long enough password",
        )  # fmt: skip
        user = User.objects.get(username="li_ming")
        assert (user.role, user.team, user.region, user.name) == (
            "manager", org.east_sub, org.shanghai, "李明",
        )  # fmt: skip
        assert user.check_password("a long enough password")
        assert (user.is_staff, user.is_superuser) == (False, False)
        assert out == "Created li_ming (Manager).\n"

    def test_admin_role_gets_django_admin(self, db):
        """createuser --role admin makes a staff superuser."""
        run("createuser", "boss", "--role", "admin", "--password", "a long enough password")
        boss = User.objects.get(username="boss")
        assert (boss.role, boss.is_staff, boss.is_superuser) == ("admin", True, True)

    def test_default_role_is_rep_without_password(self, db):
        """Without --role a rep is made; without --password (no terminal) none is usable."""
        run("createuser", "wang")
        user = User.objects.get(username="wang")
        assert (user.role, user.team, user.has_usable_password()) == ("rep", None, False)

    def test_unknown_team_is_an_error_and_creates_nobody(self, org):
        """A team name that does not exist is a CommandError and no user is created."""
        count = User.objects.count()
        with pytest.raises(CommandError, match="No team named 'Nowhere'"):
            run("createuser", "li_ming", "--team", "Nowhere")
        assert User.objects.count() == count

    def test_unknown_region_is_an_error_and_creates_nobody(self, org):
        """A region name that does not exist is a CommandError and no user is created."""
        with pytest.raises(CommandError, match="No region named 'Atlantis'"):
            run("createuser", "li_ming", "--region", "Atlantis")
        assert not User.objects.filter(username="li_ming").exists()

    def test_duplicate_username_is_an_error(self, org):
        """An existing username is refused with a CommandError naming the field."""
        with pytest.raises(CommandError, match="username"):
            run("createuser", "east_rep")
        assert User.objects.filter(username="east_rep").count() == 1

    def test_unknown_role_is_refused(self, db):
        """A role outside rep/manager/admin is refused before anything is written."""
        with pytest.raises(CommandError):
            run("createuser", "li_ming", "--role", "king")
        assert User.objects.count() == 0


class TestToken:
    def test_create_prints_a_working_token(self, client, org):
        """token create prints one key that authenticates its user on the API."""
        out = run("token", "create", "east_rep", "--name", "export")
        key = out.strip()
        assert out == f"{key}\n"
        token = ApiToken.objects.get()
        assert (token.user, token.name, token.key_hash) == (
            org.east_rep, "export", ApiToken.hash_key(key),
        )  # fmt: skip
        response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert (response.status_code, response.json()["username"]) == (200, "east_rep")

    def test_create_for_unknown_user_is_an_error(self, db):
        """token create for a user that does not exist is a CommandError; no token is made."""
        with pytest.raises(CommandError, match="No user 'ghost'"):
            run("token", "create", "ghost")
        assert ApiToken.objects.count() == 0

    def test_create_for_deactivated_user_is_an_error(self, org):
        """token create refuses a deactivated user; no token is made."""
        org.east_rep.is_active = False
        org.east_rep.save()
        with pytest.raises(CommandError, match="deactivated"):
            run("token", "create", "east_rep")
        assert ApiToken.objects.count() == 0

    def test_revoke_by_hint_stops_the_token(self, client, org):
        """token revoke HINT revokes the token, which then answers 401."""
        key = run("token", "create", "east_rep").strip()
        assert run("token", "revoke", key[:10]) == "Revoked.\n"
        response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401

    def test_list_shows_hints_not_keys(self, org):
        """token list shows each token's hint and state, never the key."""
        key = run("token", "create", "east_rep", "--name", "export").strip()
        out = run("token", "list", "east_rep")
        assert key not in out
        assert out.split() == [f"{key[:10]}…", "active", "export"]


def counts():
    """Rows per model of every Loudou app, so that a later demo step is counted too."""
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model.__module__.startswith("loudou.")
    }


class TestDemo:
    @pytest.fixture(autouse=True)
    def small_demo(self, monkeypatch):
        """The same organisation and accounts with a short sales history, to keep it fast."""
        from loudou.web import demo
        from loudou.web.management.commands import demo as command

        monkeypatch.setattr(
            command, "load_demo", functools.partial(demo.load_demo, opportunities=20)
        )

    def test_demo_is_idempotent(self, db):
        """Running demo twice loads the data once: the second run changes no count."""
        run("demo")
        first = counts()
        out = run("demo")
        assert counts() == first
        assert "already loaded" in out
        assert (first["org.User"], first["org.Team"], first["org.Region"]) == (11, 3, 7)
        assert first["customers.Account"] > 0

    # --reset flushes with TRUNCATE, which PostgreSQL refuses inside the test transaction.
    @pytest.mark.django_db(transaction=True)
    def test_demo_reset_reloads_the_same_data(self):
        """demo --reset erases what was added and reloads the same demo."""
        run("demo")
        first = counts()
        names = sorted(Account.objects.values_list("name", flat=True))
        User.objects.create(username="intruder")
        Account.objects.filter(name=names[0]).update(name="renamed by hand")

        run("demo", "--reset")

        assert counts() == first
        assert sorted(Account.objects.values_list("name", flat=True)) == names
        assert not User.objects.filter(username="intruder").exists()


def test_check_deploy_passes_with_production_environment(tmp_path):
    """`loudou check --deploy` with production settings exits 0 and reports no issue."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LOUDOU_", "DJANGO_"))
    }
    env.update(
        LOUDOU_PRODUCTION="1",
        LOUDOU_SECRET_KEY=secrets.token_urlsafe(64),
        LOUDOU_DEBUG="0",
        LOUDOU_ALLOWED_HOSTS="crm.example.com",
        LOUDOU_DATABASE_URL=f"sqlite:///{tmp_path / 'check.sqlite3'}",
        LOUDOU_VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "-m", "loudou.cli", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "System check identified no issues (0 silenced).\n"
    assert result.stderr == ""


def test_check_deploy_refuses_production_without_secret_key(tmp_path):
    """In production, a missing LOUDOU_SECRET_KEY stops the program instead of using a default."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LOUDOU_", "DJANGO_"))
    }
    env.update(
        LOUDOU_PRODUCTION="1",
        LOUDOU_DEBUG="0",
        LOUDOU_ALLOWED_HOSTS="crm.example.com",
        LOUDOU_VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "-m", "loudou.cli", "check", "--deploy"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "LOUDOU_SECRET_KEY must be set in production." in result.stderr
