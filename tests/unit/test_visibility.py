"""The access gate: ``visible_to`` for every role, sharing, pool records, deactivation."""

import pytest
from django.contrib.auth.models import AnonymousUser

from loudou.customers.models import Account, Contact
from loudou.customers.services import create_account, create_contact
from loudou.org.models import Role, User
from loudou.org.services import create_user


@pytest.fixture
def accounts(org):
    """One account per rep and manager, plus one in the public pool (no owner)."""
    owners = ["east_mgr", "east_rep", "east_rep2", "sub_rep", "south_mgr", "south_rep"]
    made = {name: create_account(actor=getattr(org, name), name=name) for name in owners}
    made["pool"] = create_account(actor=org.admin, name="pool", owner=None)
    return made


def names(user, model=Account):
    return sorted(model.objects.visible_to(user).values_list("name", flat=True))


def test_admin_sees_everything(org, accounts):
    """An admin sees every account, the unowned pool record included."""
    assert names(org.admin) == sorted(accounts)


def test_superuser_without_admin_role_sees_everything(org, accounts):
    """A Django superuser sees everything whatever their role."""
    org.south_rep.is_superuser = True
    assert names(org.south_rep) == sorted(accounts)


def test_manager_sees_own_team_subtree(org, accounts):
    """A manager sees what anyone in their team or its sub-teams owns, nothing else."""
    assert names(org.east_mgr) == ["east_mgr", "east_rep", "east_rep2", "sub_rep"]


def test_manager_of_other_team_sees_only_that_team(org, accounts):
    """south_mgr sees south's accounts and none of east's."""
    assert names(org.south_mgr) == ["south_mgr", "south_rep"]


def test_manager_of_a_sub_team_does_not_see_the_parent_team(org, accounts):
    """A manager of east_sub sees east_sub's accounts, not those of the team above."""
    sub_mgr = create_user("sub_mgr", role=Role.MANAGER, team=org.east_sub)
    assert names(sub_mgr) == ["sub_rep"]


def test_manager_without_team_sees_only_own(org, accounts):
    """A manager with no team sees only what they own."""
    lone = create_user("lone_mgr", role=Role.MANAGER)
    create_account(actor=lone, name="lone")
    assert names(lone) == ["lone"]


def test_rep_sees_only_own(org, accounts):
    """A rep sees only the accounts they own, not a teammate's."""
    assert names(org.east_rep) == ["east_rep"]
    assert names(org.sub_rep) == ["sub_rep"]


def test_rep_sees_what_is_shared_with_them(org, accounts):
    """Sharing an account with a rep of another team makes it visible to that rep only."""
    accounts["east_rep"].shared_with.add(org.south_rep)
    assert names(org.south_rep) == ["east_rep", "south_rep"]
    assert names(org.south_mgr) == ["south_mgr", "south_rep"]


def test_shared_record_is_listed_once(org, accounts):
    """An account both owned by and shared with a user appears once, not twice."""
    accounts["east_rep"].shared_with.add(org.east_rep, org.east_rep2)
    assert names(org.east_rep) == ["east_rep"]
    assert Account.objects.visible_to(org.east_rep).count() == 1


def test_pool_record_is_admin_only(org, accounts):
    """An unowned (pool) account is visible to an admin and to nobody else."""
    everyone = User.objects.exclude(pk=org.admin.pk)
    assert [u.username for u in everyone if "pool" in names(u)] == []
    assert "pool" in names(org.admin)


@pytest.mark.parametrize("username", ["admin", "east_mgr", "east_rep"])
def test_deactivated_user_sees_nothing(org, accounts, username):
    """A deactivated user sees no account, whatever their role."""
    user = getattr(org, username)
    accounts["east_rep"].shared_with.add(user)
    user.is_active = False
    user.save()
    assert names(User.objects.get(pk=user.pk)) == []


def test_anonymous_sees_nothing(org, accounts):
    """Anonymous users and a missing user see no account."""
    assert names(AnonymousUser()) == []
    assert names(None) == []


def test_contacts_follow_their_account(org, accounts):
    """A contact is visible exactly to those who can see its account."""
    create_contact(accounts["east_rep"], actor=org.east_rep, name="Wang")
    create_contact(accounts["south_rep"], actor=org.south_rep, name="Zhou")
    create_contact(accounts["pool"], actor=org.admin, name="Pool contact")
    accounts["south_rep"].shared_with.add(org.east_rep2)
    assert names(org.east_rep, Contact) == ["Wang"]
    assert names(org.east_rep2, Contact) == ["Zhou"]
    assert names(org.east_mgr, Contact) == ["Wang"]
    assert names(org.south_mgr, Contact) == ["Zhou"]
    assert names(org.admin, Contact) == ["Pool contact", "Wang", "Zhou"]
    assert names(AnonymousUser(), Contact) == []


def test_moving_a_team_moves_its_manager_scope(org, accounts):
    """When east_sub moves under south, south_mgr gains and east_mgr loses its accounts."""
    org.east_sub.parent = org.south
    org.east_sub.save()
    east_mgr = User.objects.get(pk=org.east_mgr.pk)
    south_mgr = User.objects.get(pk=org.south_mgr.pk)
    assert names(east_mgr) == ["east_mgr", "east_rep", "east_rep2"]
    assert names(south_mgr) == ["south_mgr", "south_rep", "sub_rep"]


class TestColleagues:
    """``User.objects.visible_to``: whom a user may look up."""

    def usernames(self, user):
        return sorted(User.objects.visible_to(user).values_list("username", flat=True))

    def test_admin_sees_everyone(self, org):
        """An admin may look up every user."""
        assert self.usernames(org.admin) == sorted(User.objects.values_list("username", flat=True))

    def test_manager_sees_subtree_and_self(self, org):
        """A manager may look up everyone in their subtree, and themself."""
        assert self.usernames(org.east_mgr) == ["east_mgr", "east_rep", "east_rep2", "sub_rep"]

    def test_rep_sees_own_team(self, org):
        """A rep may look up their own team's members (to share with them), no one else."""
        assert self.usernames(org.east_rep) == ["east_mgr", "east_rep", "east_rep2"]
        assert self.usernames(org.sub_rep) == ["sub_rep"]

    def test_deactivated_sees_no_one(self, org):
        """A deactivated user may look up nobody."""
        org.east_mgr.is_active = False
        assert self.usernames(org.east_mgr) == []


def test_sees_agrees_with_visible_to_and_skips_the_query_for_own_records(
    org, accounts, django_assert_num_queries
):
    """core.models.sees(user, obj) answers exactly what visible_to(user) holds, for
    every user (deactivated and anonymous included), every account and a contact of each
    (its account cached or not, shared or not); a user's own account, and a contact
    whose own account is at hand, take no query."""
    from loudou.core.models import sees

    accounts["south_rep"].shared_with.add(org.east_rep)
    contacts = [
        create_contact(actor=org.admin, account=a, name=f"c{a.pk}") for a in accounts.values()
    ]
    users = [*(getattr(org, n) for n in ("admin", "east_mgr", "east_rep", "east_rep2", "sub_rep",
                                         "south_mgr", "south_rep")), AnonymousUser()]  # fmt: skip
    gone = create_user("gone", role=Role.REP, team=org.east)
    gone.is_active = False
    users.append(gone)
    for user in users:
        for model, rows in ((Account, list(accounts.values())), (Contact, contacts)):
            seen = set(model.objects.visible_to(user).values_list("pk", flat=True))
            for row in rows:
                fresh = model.objects.get(pk=row.pk)  # a contact without its account cached
                assert sees(user, fresh) == (row.pk in seen), (user, row)
                assert sees(user, row) == (row.pk in seen), (user, row)
    rep = org.east_rep
    own_contact = Contact.objects.select_related("account").get(account=accounts["east_rep"])
    with django_assert_num_queries(0):
        assert sees(rep, accounts["east_rep"])
        assert sees(rep, own_contact)
