"""Who sees and changes accounts and contacts, on the pages and through the API."""

import pytest

from loudou.customers import services
from loudou.customers.models import Account, Contact
from tests.permissions import PermissionChecks


class TestAccountPermissions(PermissionChecks):
    """An account owned by east_rep, through every page and endpoint."""

    page_urls = ("/customers/{obj.pk}/", "/customers/{obj.pk}/edit/")
    list_url = "/customers/"
    api_url = "/api/v1/accounts/{obj.pk}"
    api_list_url = "/api/v1/accounts"
    edit_url = "/customers/{obj.pk}/edit/"

    def make_object(self, org, owner):
        return services.create_account(actor=owner, name="Hengxin Tech", region=org.shanghai)

    def edit_data(self, obj):
        return {
            "name": "Hengxin Tech (renamed)",
            "owner": obj.owner_id,
            "region": obj.region_id,
            "revisit_status": obj.revisit_status,
            "version": obj.version,
        }

    def api_patch_data(self, obj):
        return {"version": obj.version, "name": "Hengxin Tech (renamed)"}


class TestAccountPermissionsInSubteam(TestAccountPermissions):
    """The same account owned in the sub-team: its manager is the parent team's."""

    owner = "sub_rep"
    team_rep = "east_rep"  # east_sub has no second rep; a rep of the parent team


class TestContactPermissions(PermissionChecks):
    """A contact follows its account: it is visible exactly when the account is."""

    page_urls = ("/customers/contacts/{obj.pk}/", "/customers/contacts/{obj.pk}/edit/")
    list_url = "/customers/contacts/"
    api_url = "/api/v1/contacts/{obj.pk}"
    api_list_url = "/api/v1/contacts"
    edit_url = "/customers/contacts/{obj.pk}/edit/"

    def make_object(self, org, owner):
        account = services.create_account(actor=owner, name="Hengxin Tech")
        return services.create_contact(account, actor=owner, name="Wang Fang")

    def share(self, obj, user):
        obj.account.shared_with.add(user)
        return True

    def edit_data(self, obj):
        return {"name": "Wang Fang", "title": "CTO", "version": obj.version}

    def api_patch_data(self, obj):
        return {"version": obj.version, "title": "CTO"}


class TestContactPermissionsInSubteam(TestContactPermissions):
    """The same contact at an account owned in the sub-team."""

    owner = "sub_rep"
    team_rep = "east_rep"


def test_contact_create_page_of_hidden_account_is_404(client, org):
    """Adding a contact to an account outside one's scope is a 404 and adds nothing."""
    account = services.create_account(actor=org.south_rep, name="Southern Star")
    client.force_login(org.east_rep)
    response = client.post(f"/customers/{account.pk}/contacts/new/", {"name": "Li Lei"})
    assert response.status_code == 404
    assert Contact.objects.count() == 0


def test_api_contact_create_for_hidden_account_is_refused(client, org, bearer):
    """The API refuses a contact for an account outside the caller's scope (422)."""
    account = services.create_account(actor=org.south_rep, name="Southern Star")
    response = client.post(
        "/api/v1/contacts",
        {"account_id": account.pk, "name": "Li Lei"},
        content_type="application/json",
        headers=bearer(org.east_rep),
    )
    assert response.status_code == 422
    assert response.json()["field"] == "account_id"
    assert Contact.objects.count() == 0


class TestOwnerAssignment:
    """Who may be made the owner of a new or existing account."""

    def post(self, client, headers, **payload):
        return client.post(
            "/api/v1/accounts", payload, content_type="application/json", headers=headers
        )

    def test_rep_cannot_give_new_account_to_someone_else(self, client, org, bearer):
        """A rep who names a teammate as owner gets 422 and no account is created."""
        response = self.post(
            client, bearer(org.east_rep), name="Hengxin", owner_id=org.east_rep2.pk
        )
        assert response.status_code == 422
        assert response.json()["field"] == "owner_id"
        assert Account.objects.count() == 0

    def test_rep_owns_what_they_create(self, client, org, bearer):
        """A new account without an owner belongs to the rep who created it."""
        response = self.post(client, bearer(org.east_rep), name="Hengxin")
        assert response.status_code == 201
        assert Account.objects.get().owner == org.east_rep

    def test_manager_can_give_new_account_to_subteam_rep(self, client, org, bearer):
        """A manager may make a rep anywhere in their subtree the owner."""
        response = self.post(client, bearer(org.east_mgr), name="Hengxin", owner_id=org.sub_rep.pk)
        assert response.status_code == 201
        assert response.json()["owner_id"] == org.sub_rep.pk
        assert Account.objects.get().owner == org.sub_rep

    def test_manager_cannot_give_new_account_to_other_team(self, client, org, bearer):
        """A manager naming a rep of another team gets 422 and nothing is created."""
        response = self.post(
            client, bearer(org.east_mgr), name="Hengxin", owner_id=org.south_rep.pk
        )
        assert response.status_code == 422
        assert response.json()["field"] == "owner_id"
        assert Account.objects.count() == 0

    def test_manager_cannot_hand_account_to_other_team(self, client, org, bearer):
        """A manager cannot move a subtree account to another team's rep by PATCH."""
        account = services.create_account(actor=org.east_rep, name="Hengxin")
        response = client.patch(
            f"/api/v1/accounts/{account.pk}",
            {"version": 1, "owner_id": org.south_rep.pk},
            content_type="application/json",
            headers=bearer(org.east_mgr),
        )
        assert response.status_code == 422
        account.refresh_from_db()
        assert (account.owner, account.version) == (org.east_rep, 1)

    def test_manager_can_hand_account_to_subteam_rep(self, client, org, bearer):
        """A manager may move an account to another rep of their subtree by PATCH."""
        account = services.create_account(actor=org.east_rep, name="Hengxin")
        response = client.patch(
            f"/api/v1/accounts/{account.pk}",
            {"version": 1, "owner_id": org.sub_rep.pk},
            content_type="application/json",
            headers=bearer(org.east_mgr),
        )
        assert response.status_code == 200
        account.refresh_from_db()
        assert (account.owner, account.version) == (org.sub_rep, 2)

    def test_rep_form_cannot_give_new_account_to_someone_else(self, client, org):
        """The new-account form refuses a teammate as owner for a rep and saves nothing."""
        client.force_login(org.east_rep)
        response = client.post(
            "/customers/new/",
            {"name": "Hengxin", "owner": org.east_rep2.pk, "revisit_status": "keep"},
        )
        assert response.status_code == 200
        assert response.context["form"].errors.as_data()["owner"][0].code == "invalid_choice"
        assert Account.objects.count() == 0

    @pytest.mark.parametrize(("actor", "owner"), [("east_mgr", "sub_rep"), ("admin", "south_rep")])
    def test_form_assigns_owner_in_scope(self, client, org, actor, owner):
        """A manager (own subtree) or an admin (anyone) can create an account for a rep."""
        client.force_login(getattr(org, actor))
        response = client.post(
            "/customers/new/",
            {"name": "Hengxin", "owner": getattr(org, owner).pk, "revisit_status": "keep"},
        )
        assert response.status_code == 302
        assert Account.objects.get().owner == getattr(org, owner)

    def test_collaborator_may_echo_current_owner(self, client, org, bearer):
        """A colleague the account is shared with may PATCH it sending its owner back."""
        account = services.create_account(
            actor=org.east_rep, name="Hengxin", shared_with=[org.east_rep2]
        )
        response = client.patch(
            f"/api/v1/accounts/{account.pk}",
            {"version": 1, "owner_id": org.east_rep.pk, "industry": "Software"},
            content_type="application/json",
            headers=bearer(org.east_rep2),
        )
        assert response.status_code == 200
        account.refresh_from_db()
        assert (account.owner, account.industry, account.version) == (org.east_rep, "Software", 2)

    def test_collaborator_cannot_hand_account_on(self, client, org, bearer):
        """A colleague the account is shared with cannot give it to a third person."""
        account = services.create_account(
            actor=org.east_rep, name="Hengxin", shared_with=[org.east_rep2]
        )
        response = client.patch(
            f"/api/v1/accounts/{account.pk}",
            {"version": 1, "owner_id": org.sub_rep.pk},
            content_type="application/json",
            headers=bearer(org.east_rep2),
        )
        assert response.status_code == 422
        account.refresh_from_db()
        assert (account.owner, account.version) == (org.east_rep, 1)
