"""Logging, changing and deleting activities: links filled from the subject, default
purposes, refusals that change nothing, who may change what, and who sees what."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loudou.activities import services
from loudou.activities.models import Activity
from loudou.core.exceptions import Conflict, NotPermitted, ValidationFailed
from loudou.customers.services import create_account, create_contact
from loudou.leads.services import create_lead
from loudou.pipeline import services as pipeline_services

pytestmark = pytest.mark.django_db


# --- helpers (imported by the other test_activities_* modules) ------------------------


class Subjects:
    """An account with a contact and an open opportunity, and a lead, all owned by one
    rep."""


def make_subjects(owner, pipeline=None) -> Subjects:
    s = Subjects()
    s.pipeline = pipeline or pipeline_services.create_pipeline_from_template(
        "dcba", checklist_mode="advisory"
    )
    s.account = create_account(actor=owner, name="华东机械")
    s.contact = create_contact(s.account, actor=owner, name="王经理")
    s.opp = pipeline_services.create_opportunity(
        actor=owner, pipeline=s.pipeline, name="年度采购", account=s.account,
        amount=Decimal("10000"),
    )  # fmt: skip
    s.lead, _dups = create_lead(actor=owner, owner=owner, name="李先生", company="新客户")
    return s


def call(actor, **kwargs):
    kwargs.setdefault("kind", "call")
    kwargs.setdefault("outcome", "reached")
    return services.log_activity(actor, **kwargs)


@pytest.fixture
def rep_subjects(org):
    return make_subjects(org.east_rep)


# --- logging and links -------------------------------------------------------------------


def test_log_on_contact_fills_its_account(org, rep_subjects):
    """An activity logged on a contact is linked to the contact's account too."""
    a = call(org.east_rep, contact=rep_subjects.contact)
    a.refresh_from_db()
    assert (a.contact_id, a.account_id, a.opportunity_id, a.lead_id) == (
        rep_subjects.contact.pk, rep_subjects.account.pk, None, None,
    )  # fmt: skip
    assert a.owner == org.east_rep and a.created_by == org.east_rep


def test_log_on_opportunity_fills_its_account(org, rep_subjects):
    """An activity logged on an opportunity is linked to the opportunity's account."""
    a = call(org.east_rep, opportunity=rep_subjects.opp)
    assert (a.opportunity_id, a.account_id) == (rep_subjects.opp.pk, rep_subjects.account.pk)


def test_log_on_lead_and_account(org, rep_subjects):
    """A lead or an account alone is a subject; nothing else is filled."""
    on_lead = call(org.east_rep, lead=rep_subjects.lead)
    on_account = call(org.east_rep, account=rep_subjects.account)
    assert (on_lead.lead_id, on_lead.account_id) == (rep_subjects.lead.pk, None)
    assert (on_account.account_id, on_account.lead_id, on_account.opportunity_id) == (
        rep_subjects.account.pk, None, None,
    )  # fmt: skip


def test_log_defaults_when_to_now_and_keeps_fields(org, rep_subjects):
    """Without a time the activity happened now; the given fields are stored, and
    naming what was given ticks "gave something"."""
    before = timezone.now()
    a = call(
        org.east_rep, account=rep_subjects.account, kind="visit", outcome="visited",
        duration_minutes=45, notes="  谈了价格  ", gave_what="产品手册",
    )  # fmt: skip
    a.refresh_from_db()
    assert before <= a.occurred_at <= timezone.now()
    assert (a.kind, a.outcome, a.duration_minutes, a.notes) == ("visit", "visited", 45, "谈了价格")
    assert (a.gave_something, a.gave_what) == (True, "产品手册")


# --- purposes ------------------------------------------------------------------------------


def test_purpose_follow_up_on_open_opportunity(org, rep_subjects):
    """An activity on an open opportunity is a follow-up."""
    assert call(org.east_rep, opportunity=rep_subjects.opp).purpose == "follow_up"


def test_purpose_prospecting_on_lead_and_unwon_account(org, rep_subjects):
    """On a lead, or on an account that was never won, an activity is prospecting."""
    assert call(org.east_rep, lead=rep_subjects.lead).purpose == "prospecting"
    assert call(org.east_rep, account=rep_subjects.account).purpose == "prospecting"


def test_purpose_service_on_won_account_and_closed_opportunity(org, rep_subjects):
    """Once the account has a won deal, an activity on it (or on the won deal) is
    service."""
    won = pipeline_services.win_opportunity(rep_subjects.opp, actor=org.east_rep)
    assert call(org.east_rep, account=rep_subjects.account).purpose == "service"
    assert call(org.east_rep, opportunity=won).purpose == "service"


def test_purpose_given_wins(org, rep_subjects):
    """A purpose the user chooses overrides the default."""
    a = call(org.east_rep, opportunity=rep_subjects.opp, purpose="service")
    assert a.purpose == "service"


# --- refusals -------------------------------------------------------------------------------


def refused(exc_type, actor, **kwargs):
    before = Activity.objects.count()
    with pytest.raises(exc_type) as info:
        call(actor, **kwargs)
    assert Activity.objects.count() == before
    return info.value


def test_no_subject_is_refused(org):
    """An activity about nothing is refused and nothing is saved."""
    assert refused(ValidationFailed, org.east_rep).code == "no_subject"


def test_own_subject_is_checked_without_a_query_and_refused_once_deactivated(
    org, rep_subjects, django_assert_num_queries
):
    """A rep's own account passes the visibility check with no query (the owner always
    sees it); the same rep once deactivated is refused like anyone who cannot see it."""
    rep = org.east_rep
    with django_assert_num_queries(0):
        links = services._resolve_links(rep, {"account": rep_subjects.account})
    assert links["account"] == rep_subjects.account
    rep.is_active = False
    with pytest.raises(ValidationFailed) as info:
        services._resolve_links(rep, {"account": rep_subjects.account})
    assert (info.value.field, info.value.code) == ("account", "unknown_subject")


def test_subject_out_of_scope_is_refused(org, rep_subjects):
    """A rep cannot log on another team's account or opportunity (422 on the field)."""
    err = refused(ValidationFailed, org.south_rep, account=rep_subjects.account)
    assert (err.field, err.code) == ("account", "unknown_subject")
    err = refused(ValidationFailed, org.south_rep, opportunity=rep_subjects.opp)
    assert err.field == "opportunity"


def test_contact_of_another_account_is_refused(org, rep_subjects):
    """A contact and an account that do not belong together are refused."""
    other = create_account(actor=org.east_rep, name="别家")
    err = refused(ValidationFailed, org.east_rep, account=other, contact=rep_subjects.contact)
    assert (err.field, err.code) == ("contact", "other_account")


def test_negative_duration_is_refused(org, rep_subjects):
    """A negative duration is refused on its field."""
    err = refused(ValidationFailed, org.east_rep, account=rep_subjects.account, duration_minutes=-5)
    assert err.field == "duration_minutes"


def test_outcome_required_except_research(org, rep_subjects):
    """A call needs an outcome; research (desk work) does not."""
    err = refused(ValidationFailed, org.east_rep, account=rep_subjects.account, outcome="")
    assert err.field == "outcome"
    assert call(org.east_rep, account=rep_subjects.account, kind="research", outcome="").pk


def test_future_time_is_refused(org, rep_subjects):
    """An activity cannot have happened tomorrow."""
    err = refused(
        ValidationFailed, org.east_rep, account=rep_subjects.account,
        occurred_at=timezone.now() + timedelta(days=1),
    )  # fmt: skip
    assert err.field == "occurred_at"


def test_unknown_kind_is_refused(org, rep_subjects):
    """A kind outside the choices is refused by validation."""
    from django.core.exceptions import ValidationError

    refused(ValidationError, org.east_rep, account=rep_subjects.account, kind="fax")


def test_manager_logs_for_own_rep_but_rep_not_for_others(org, rep_subjects):
    """A manager may log an activity a rep of their team did; a rep only their own."""
    a = call(org.east_mgr, account=rep_subjects.account, owner=org.east_rep)
    assert (a.owner, a.created_by) == (org.east_rep, org.east_mgr)
    err = refused(ValidationFailed, org.east_rep, account=rep_subjects.account, owner=org.east_rep2)
    assert err.field == "owner"


# --- changing and deleting -----------------------------------------------------------------


def test_update_bumps_version_and_refuses_stale(org, rep_subjects):
    """An edit bumps the version; an edit from the old version is a conflict that
    changes nothing."""
    a = call(org.east_rep, account=rep_subjects.account)
    updated = services.update_activity(a, actor=org.east_rep, version=1, notes="回电")
    assert (updated.version, updated.notes) == (2, "回电")
    with pytest.raises(Conflict):
        services.update_activity(a, actor=org.east_rep, version=1, notes="覆盖")
    assert Activity.objects.get(pk=a.pk).notes == "回电"


def test_update_relinks_to_opportunity_and_its_account(org, rep_subjects):
    """Moving an activity onto an opportunity relinks its account as well."""
    other = create_account(actor=org.east_rep, name="别家")
    a = call(org.east_rep, account=other)
    updated = services.update_activity(a, actor=org.east_rep, opportunity=rep_subjects.opp)
    assert (updated.opportunity_id, updated.account_id) == (
        rep_subjects.opp.pk, rep_subjects.account.pk,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [("east_rep", True), ("east_mgr", True), ("admin", True), ("east_rep2", False),
     ("south_mgr", False)],
)  # fmt: skip
def test_who_may_change(org, rep_subjects, actor, allowed):
    """Only the owner, a manager of the owner's team or an admin may change or delete;
    a teammate who sees the account is refused (403) and nothing changes."""
    rep_subjects.account.shared_with.add(org.east_rep2, org.south_mgr)
    a = call(org.east_rep, account=rep_subjects.account, notes="原文")
    user = getattr(org, actor)
    if allowed:
        services.update_activity(a, actor=user, notes="改过")
        assert Activity.objects.get(pk=a.pk).notes == "改过"
        services.delete_activity(a, actor=user)
        assert not Activity.objects.filter(pk=a.pk).exists()
    else:
        with pytest.raises(NotPermitted):
            services.update_activity(a, actor=user, notes="改过")
        with pytest.raises(NotPermitted):
            services.delete_activity(a, actor=user)
        assert Activity.objects.get(pk=a.pk).notes == "原文"


# --- visibility ------------------------------------------------------------------------------


def visible_ids(user):
    return set(Activity.objects.visible_to(user).values_list("pk", flat=True))


def test_visibility_follows_owner_and_subject(org, rep_subjects):
    """A rep sees their own activities; a manager those of their subtree; a rep of
    another team nothing — until the account is shared with them, then all of that
    account's activities (also ones logged by someone else)."""
    mine = call(org.east_rep, account=rep_subjects.account)
    on_opp = call(org.east_mgr, opportunity=rep_subjects.opp)
    assert visible_ids(org.east_rep) == {mine.pk, on_opp.pk}
    assert visible_ids(org.east_mgr) == {mine.pk, on_opp.pk}
    assert visible_ids(org.south_rep) == set()
    assert visible_ids(org.south_mgr) == set()
    rep_subjects.account.shared_with.add(org.south_rep)
    assert visible_ids(org.south_rep) == {mine.pk, on_opp.pk}
    assert visible_ids(org.admin) == {mine.pk, on_opp.pk}


def test_visibility_through_lead_and_sharing(org, rep_subjects):
    """An activity on a lead is seen by whoever sees the lead; one shared by name is
    seen by that person only."""
    on_lead = call(org.east_rep, lead=rep_subjects.lead)
    on_account = call(org.east_rep, account=rep_subjects.account)
    rep_subjects.lead.shared_with.add(org.south_rep)
    on_account.shared_with.add(org.east_rep2)
    assert visible_ids(org.south_rep) == {on_lead.pk}
    assert visible_ids(org.east_rep2) == {on_account.pk}
