"""Account and contact services: what they write, and what they refuse to write."""

import pytest
from django.core.exceptions import ValidationError

from loudou.core.exceptions import Conflict
from loudou.customers import services
from loudou.customers.models import Account, Contact


def row(obj):
    return type(obj).objects.filter(pk=obj.pk).values().get()


@pytest.fixture
def account(org):
    return services.create_account(actor=org.east_rep, name="Hengxin", industry="Software")


def test_create_account_defaults_owner_and_creator_to_actor(org):
    """A new account is owned and marked as created by the actor, at version 1."""
    account = services.create_account(actor=org.east_rep, name="Hengxin")
    account = Account.objects.get(pk=account.pk)
    assert (account.owner, account.created_by, account.version) == (org.east_rep, org.east_rep, 1)


def test_create_account_with_shared_with(org):
    """Colleagues given at creation are stored as collaborators."""
    account = services.create_account(
        actor=org.east_rep, name="Hengxin", shared_with=[org.east_rep2, org.sub_rep]
    )
    assert sorted(u.username for u in account.shared_with.all()) == ["east_rep2", "sub_rep"]


def test_create_account_refuses_unknown_field(org):
    """A field the service does not accept is refused and nothing is created."""
    with pytest.raises(ValidationError) as excinfo:
        services.create_account(actor=org.east_rep, name="Hengxin", grade="A")
    assert list(excinfo.value.message_dict) == ["grade"]
    assert Account.objects.count() == 0


def test_create_account_refuses_empty_name(org):
    """An account without a name is refused and nothing is created."""
    with pytest.raises(ValidationError) as excinfo:
        services.create_account(actor=org.east_rep, name="")
    assert list(excinfo.value.message_dict) == ["name"]
    assert Account.objects.count() == 0


def test_update_account_with_current_version_saves_and_bumps(org, account):
    """An update carrying the current version is saved and the version goes up by one."""
    saved = services.update_account(account, actor=org.east_rep, version=1, name="Hengxin Tech")
    assert (saved.name, saved.version) == ("Hengxin Tech", 2)
    assert (row(account)["name"], row(account)["version"]) == ("Hengxin Tech", 2)


def test_update_account_with_stale_version_is_refused(org, account):
    """An update made from an older version raises Conflict and changes nothing."""
    services.update_account(account, actor=org.east_mgr, version=1, industry="Hardware")
    before = row(account)
    with pytest.raises(Conflict) as excinfo:
        services.update_account(account, actor=org.east_rep, version=1, name="Overwritten")
    assert excinfo.value.code == "version_conflict"
    assert excinfo.value.status == 409
    assert row(account) == before
    assert (before["name"], before["industry"], before["version"]) == ("Hengxin", "Hardware", 2)


def test_update_account_with_future_version_is_refused(org, account):
    """A version the record never had is refused too, not taken as newer."""
    before = row(account)
    with pytest.raises(Conflict):
        services.update_account(account, actor=org.east_rep, version=5, name="Overwritten")
    assert row(account) == before


def test_update_account_ignores_stale_in_memory_copy(org, account):
    """The service re-reads the row: a stale Python object does not undo a colleague's edit."""
    stale_copy = Account.objects.get(pk=account.pk)
    services.update_account(account, actor=org.east_mgr, version=1, industry="Hardware")
    services.update_account(stale_copy, actor=org.east_rep, version=2, name="Hengxin Tech")
    assert (row(account)["name"], row(account)["industry"], row(account)["version"]) == (
        "Hengxin Tech", "Hardware", 3,
    )  # fmt: skip


def test_update_account_invalid_data_changes_nothing(org, account):
    """An update that fails validation leaves the row and its version unchanged."""
    before = row(account)
    with pytest.raises(ValidationError):
        services.update_account(account, actor=org.east_rep, version=1, size="huge")
    assert row(account) == before


def test_update_account_shared_with_replaces_the_list(org, account):
    """Passing shared_with replaces the collaborators; omitting it keeps them."""
    services.update_account(account, actor=org.east_rep, version=1, shared_with=[org.east_rep2])
    services.update_account(account, actor=org.east_rep, version=2, name="Hengxin Tech")
    assert [u.username for u in account.shared_with.all()] == ["east_rep2"]
    services.update_account(account, actor=org.east_rep, version=3, shared_with=[org.sub_rep])
    assert [u.username for u in account.shared_with.all()] == ["sub_rep"]


def test_update_contact_with_stale_version_is_refused(org, account):
    """A contact update made from an older version raises Conflict and changes nothing."""
    contact = services.create_contact(account, actor=org.east_rep, name="Wang Fang")
    services.update_contact(contact, actor=org.east_rep, version=1, title="CTO")
    before = row(contact)
    with pytest.raises(Conflict):
        services.update_contact(contact, actor=org.east_rep, version=1, title="CEO")
    assert row(contact) == before
    assert (before["title"], before["version"]) == ("CTO", 2)


def test_create_contact_refuses_bad_email(org, account):
    """A contact with an invalid e-mail is refused and nothing is created."""
    with pytest.raises(ValidationError) as excinfo:
        services.create_contact(account, actor=org.east_rep, name="Wang", email="not-an-email")
    assert list(excinfo.value.message_dict) == ["email"]
    assert Contact.objects.count() == 0
