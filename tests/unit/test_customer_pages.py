"""Account and contact forms: bad input and stale edits are shown on the form, never saved."""

import pytest

from loudou.customers import services
from loudou.customers.models import Account, Contact

CONFLICT = "This record was changed by someone else (version 2, yours 1). Reload it and try again."


def row(obj):
    return type(obj).objects.filter(pk=obj.pk).values().get()


def error_codes(response):
    """{field: [error codes]} of the form the page re-rendered."""
    form = response.context["form"]
    return {field: [e.code for e in errors] for field, errors in form.errors.as_data().items()}


@pytest.fixture
def rep_client(client, org):
    client.force_login(org.east_rep)
    return client


@pytest.fixture
def account(org):
    return services.create_account(actor=org.east_rep, name="Hengxin", industry="Software")


@pytest.fixture
def contact(org, account):
    return services.create_contact(account, actor=org.east_rep, name="Wang Fang", title="CTO")


def account_form(account, **changes):
    data = {
        "name": account.name,
        "industry": account.industry,
        "owner": account.owner_id,
        "revisit_status": account.revisit_status,
        "version": account.version,
    }
    return {**data, **changes}


def test_new_account_page_creates_and_redirects(rep_client, org):
    """A valid new-account form creates the account and opens its page."""
    response = rep_client.post(
        "/customers/new/", {"name": "Hengxin", "owner": org.east_rep.pk, "revisit_status": "keep"}
    )
    account = Account.objects.get()
    assert response.status_code == 302
    assert response.url == f"/customers/{account.pk}/"
    assert (account.name, account.owner) == ("Hengxin", org.east_rep)
    assert account.created_by == org.east_rep


def test_new_account_page_shows_missing_name_and_saves_nothing(rep_client, org):
    """A new-account form without a name is shown again with the error on name."""
    response = rep_client.post(
        "/customers/new/", {"name": "", "owner": org.east_rep.pk, "revisit_status": "keep"}
    )
    assert response.status_code == 200
    assert error_codes(response) == {"name": ["required"]}
    assert response.content.decode().count('class="invalid-feedback d-block"') == 1
    assert Account.objects.count() == 0


def test_new_account_page_shows_bad_choice_and_saves_nothing(rep_client, org):
    """A size outside the choices is shown as a field error and nothing is created."""
    response = rep_client.post(
        "/customers/new/",
        {"name": "Hengxin", "owner": org.east_rep.pk, "revisit_status": "keep", "size": "huge"},
    )
    assert response.status_code == 200
    assert error_codes(response) == {"size": ["invalid_choice"]}
    assert Account.objects.count() == 0


def test_edit_account_page_shows_missing_name_and_changes_nothing(rep_client, account):
    """Emptying the name on the edit form shows the error and leaves the row as it was."""
    before = row(account)
    response = rep_client.post(f"/customers/{account.pk}/edit/", account_form(account, name=""))
    assert response.status_code == 200
    assert error_codes(response) == {"name": ["required"]}
    assert row(account) == before


def test_edit_account_page_saves_and_bumps_version(rep_client, account):
    """A valid edit saves the change, bumps the version and opens the account's page."""
    response = rep_client.post(
        f"/customers/{account.pk}/edit/", account_form(account, name="Hengxin Tech")
    )
    assert response.status_code == 302
    assert response.url == f"/customers/{account.pk}/"
    assert (row(account)["name"], row(account)["version"]) == ("Hengxin Tech", 2)


def test_edit_page_carries_the_version_it_was_rendered_with(rep_client, account):
    """The edit form holds the current version in a hidden field."""
    services.update_account(account, actor=account.owner, version=1, industry="Hardware")
    response = rep_client.get(f"/customers/{account.pk}/edit/")
    assert response.context["form"]["version"].value() == 2
    assert 'name="version" value="2"' in response.content.decode()


def test_stale_account_edit_shows_conflict_and_changes_nothing(rep_client, org, account, english):
    """A form rendered at version 1 and posted after a colleague saved shows the conflict."""
    stale = account_form(account, name="Overwritten")
    services.update_account(account, actor=org.east_mgr, version=1, industry="Hardware")
    before = row(account)

    response = rep_client.post(f"/customers/{account.pk}/edit/", stale)

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [CONFLICT]
    assert CONFLICT in response.content.decode()
    assert row(account) == before
    assert (before["name"], before["industry"], before["version"]) == ("Hengxin", "Hardware", 2)


def test_new_contact_page_shows_missing_name_and_saves_nothing(rep_client, account):
    """A new-contact form without a name shows the error and adds nobody."""
    response = rep_client.post(f"/customers/{account.pk}/contacts/new/", {"name": ""})
    assert response.status_code == 200
    assert error_codes(response) == {"name": ["required"]}
    assert Contact.objects.count() == 0


def test_new_contact_page_shows_bad_email_and_saves_nothing(rep_client, account):
    """A new-contact form with an invalid e-mail shows the error and adds nobody."""
    response = rep_client.post(
        f"/customers/{account.pk}/contacts/new/", {"name": "Wang", "email": "not-an-email"}
    )
    assert response.status_code == 200
    assert error_codes(response) == {"email": ["invalid"]}
    assert Contact.objects.count() == 0


def test_new_contact_page_adds_to_the_account(rep_client, account):
    """A valid new-contact form adds the person to the account and goes back to it."""
    response = rep_client.post(
        f"/customers/{account.pk}/contacts/new/", {"name": "Wang Fang", "style": "owl"}
    )
    assert response.status_code == 302
    assert response.url == f"/customers/{account.pk}/"
    contact = Contact.objects.get()
    assert (contact.account, contact.name, contact.style) == (account, "Wang Fang", "owl")


def test_edit_contact_page_shows_missing_name_and_changes_nothing(rep_client, contact):
    """Emptying a contact's name shows the error and leaves the row as it was."""
    before = row(contact)
    response = rep_client.post(
        f"/customers/contacts/{contact.pk}/edit/", {"name": "", "version": 1}
    )
    assert response.status_code == 200
    assert error_codes(response) == {"name": ["required"]}
    assert row(contact) == before


def test_stale_contact_edit_shows_conflict_and_changes_nothing(rep_client, org, contact, english):
    """A contact form posted after a colleague saved shows the conflict and saves nothing."""
    services.update_contact(contact, actor=org.east_mgr, version=1, title="CEO")
    before = row(contact)
    response = rep_client.post(
        f"/customers/contacts/{contact.pk}/edit/",
        {"name": "Wang Fang", "title": "Intern", "version": 1},
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [CONFLICT]
    assert CONFLICT in response.content.decode()
    assert row(contact) == before
    assert (before["title"], before["version"]) == ("CEO", 2)
