"""A prepared data set for the worklist tests: one record (or a few) per band of DOMAIN
§7 for ``east_rep``, each with a known place in the order, plus records of other people
that must not show. ``EXPECTED`` is the order the list must have."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from loudou.activities.services import log_activity
from loudou.customers.models import Account
from loudou.customers.services import create_account
from loudou.leads.models import Lead
from loudou.leads.services import create_lead
from loudou.pipeline import services as pipeline_services
from loudou.rules.models import Breach, FollowUpRule
from loudou.sales import services as sales_services
from loudou.sales.testing import pipeline
from loudou.tasks.services import create_task

# (band, kind, title) in the order the worklist must list them.
EXPECTED = [
    ("due", "breach", "Contact every 7 days"),  # about an account whose deals are open
    ("due", "task", "Prepare the weekly report"),  # no record, due yesterday
    ("due", "task", "Help with the tender"),  # assigned to me on a colleague's deal
    ("orders", "account", "Won Two"),  # a task due today on it
    ("orders", "contract", "Small order"),  # order in hand, paid in full
    ("orders", "account", "Won One"),  # customer never contacted
    ("unpaid", "contract", "Contract 20 days late"),
    ("unpaid", "contract", "Contract 5 days late"),
    ("unpaid", "contract", "Contract due in 10 days"),
    ("closing", "opportunity", "A-stage deal"),  # open breach: first
    ("closing", "opportunity", "Big B deal closing soon"),  # larger weighted amount
    ("inquiries", "lead", "Lead two days old"),  # never contacted, waiting longest
    ("inquiries", "opportunity", "Fresh D deal"),  # never contacted, newer
    ("inquiries", "opportunity", "Quiet C deal"),  # last contact 20 days ago
    ("inquiries", "lead", "Lead called today"),
    ("development", "lead", "Old lead never called"),
    ("development", "lead", "Old lead called a month ago"),
    ("development", "account", "Cold prospect"),  # last contact 10 days ago
]


def _ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)


def _log(actor, when, **subject):
    return log_activity(actor, kind="call", outcome="reached", occurred_at=when, **subject)


def _lead(owner, name, days_old):
    lead, _dupes = create_lead(actor=owner, owner=owner, name=name, mobile="13900000000")
    Lead.objects.filter(pk=lead.pk).update(created_at=_ago(days=days_old))
    lead.refresh_from_db()
    return lead


def _contract(owner, account, title, *, amount, due_in_days, today):
    opp = pipeline_services.create_opportunity(
        actor=owner, pipeline=pipeline(), account=account, name=title, amount=Decimal(amount)
    )
    opp = pipeline_services.win_opportunity(opp, actor=owner, when=_ago(days=30))
    return sales_services.create_contract_from_opportunity(
        opp, actor=owner, title=title,
        plans=[{"due_date": today + timedelta(days=due_in_days), "amount": Decimal(amount)}],
    )  # fmt: skip


def build(org) -> dict:
    """Create the data set; returns handles on the records by name."""
    rep, other = org.east_rep, org.east_rep2
    today = timezone.localdate()
    pipe = pipeline()
    stages = {s.code: s for s in pipe.open_stages()}
    rule = FollowUpRule.objects.create(
        name="Contact every 7 days", applies_to="account", requirement="contact_every", amount=7
    )
    made = {}

    # 1. orders and customer care
    won_one = create_account(actor=rep, name="Won One")
    won_two = create_account(actor=rep, name="Won Two")
    for account in (won_one, won_two):
        opp = pipeline_services.create_opportunity(
            actor=rep, pipeline=pipe, account=account, name=f"{account.name} deal"
        )
        pipeline_services.win_opportunity(opp, actor=rep, when=_ago(days=60))
    _log(rep, _ago(hours=2), account=won_two)
    made["won_two_task"] = create_task(
        rep, title="Call Won Two about the renewal", account=won_two, due_at=_ago(minutes=30)
    )
    buyer = create_account(actor=rep, name="Small buyer")
    _log(rep, _ago(hours=3), account=buyer)  # a customer (signed order) contacted today
    order = sales_services.create_order(
        actor=rep, account=buyer, title="Small order", amount=Decimal("5000"),
        sign_date=today - timedelta(days=3),
    )  # fmt: skip
    sales_services.record_payment(order, actor=rep, amount=Decimal("5000"), paid_on=today)
    made["order"] = order

    # 2. signed but unpaid (all on Won Two, which was contacted today)
    made["late20"] = _contract(
        rep, won_two, "Contract 20 days late", amount="100000", due_in_days=-20, today=today
    )
    made["late5"] = _contract(
        rep, won_two, "Contract 5 days late", amount="200000", due_in_days=-5, today=today
    )
    made["due10"] = _contract(
        rep, won_two, "Contract due in 10 days", amount="80000", due_in_days=10, today=today
    )

    # 3. about to order, 4. recent inquiries (deals of one prospect)
    prospect = create_account(actor=rep, name="Prospect Co")

    def deal(name, stage, amount, **fields):
        return pipeline_services.create_opportunity(
            actor=rep, pipeline=pipe, account=prospect, name=name, stage=stages[stage],
            amount=Decimal(amount), **fields,
        )  # fmt: skip

    made["a_deal"] = deal("A-stage deal", "A", "100000")  # weighted 80,000
    made["b_deal"] = deal(
        "Big B deal closing soon", "B", "300000", expected_close_date=today + timedelta(days=10)
    )  # weighted 150,000
    made["fresh_d"] = deal(
        "Fresh D deal", "D", "20000", expected_close_date=today + timedelta(days=5),
        when=_ago(hours=1),
    )  # fmt: skip
    made["quiet_c"] = deal("Quiet C deal", "C", "50000", when=_ago(days=30))
    _log(rep, _ago(days=20), opportunity=made["quiet_c"])
    Breach.objects.create(
        rule=rule, owner=rep, opportunity=made["a_deal"], account=prospect,
        due_at=_ago(days=1), key="t-a-deal",
    )  # fmt: skip
    create_task(
        rep, title="Not due yet", opportunity=made["b_deal"], due_at=_ago(days=-2)
    )  # tomorrow and after: not urgent
    made["lead_two_days"] = _lead(rep, "Lead two days old", 2)
    made["lead_called"] = _lead(rep, "Lead called today", 1)
    _log(rep, _ago(hours=1), lead=made["lead_called"])

    # 5. new development
    made["old_never"] = _lead(rep, "Old lead never called", 40)
    made["old_called"] = _lead(rep, "Old lead called a month ago", 60)
    _log(rep, _ago(days=30), lead=made["old_called"])
    cold = create_account(actor=rep, name="Cold prospect")
    _log(rep, _ago(days=10), account=cold)
    made["cold"] = cold

    # the due section
    Breach.objects.create(
        rule=rule, owner=rep, account=prospect, due_at=_ago(days=3), key="t-prospect"
    )
    made["report_task"] = create_task(rep, title="Prepare the weekly report", due_at=_ago(days=1))
    theirs_account = create_account(actor=other, name="Their account")
    theirs = pipeline_services.create_opportunity(
        actor=other, pipeline=pipe, account=theirs_account, name="Their deal", stage=stages["A"]
    )
    made["help_task"] = create_task(
        other, title="Help with the tender", opportunity=theirs, assignees=[rep],
        due_at=_ago(minutes=10),
    )  # fmt: skip

    # Other people's records that must never show on east_rep's list.
    _lead(other, "Colleague's lead", 1)
    Breach.objects.create(
        rule=rule, owner=other, account=theirs_account, due_at=_ago(days=2), key="t-theirs"
    )
    create_task(other, title="Colleague's own task", due_at=_ago(hours=1))
    made["rule"], made["prospect"], made["won_two"] = rule, prospect, won_two
    assert Account.objects.get(pk=won_two.pk).grade == "won"
    return made


def sequence(wl) -> list[tuple[str, str, str]]:
    """(band, kind, title) of every line, matching EXPECTED's titles (a contract's
    title, a record's name)."""
    rows = []
    for band in wl.sections:
        for item in band.items:
            obj = item.obj
            if item.kind == "breach":
                title = obj.rule.name
            elif item.kind == "lead":
                title = obj.name
            else:
                title = getattr(obj, "title", None) if item.kind != "account" else obj.name
                title = title or getattr(obj, "name", "")
            rows.append((band.key, item.kind, title))
    return rows


# --- tests ------------------------------------------------------------------------------

import pytest  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from loudou.tasks.models import Task  # noqa: E402
from loudou.worklist.queries import BAND_KEYS, BAND_LIMIT, viewable_users, worklist  # noqa: E402


@pytest.fixture
def data(org):
    return build(org)


def test_order_matches_domain(org, data):
    """The prepared data set is listed in DOMAIN §7's order: lone breaches and due tasks,
    then orders and care, unpaid, about to order, inquiries, new development — each band
    with its overdue records first and then its own order."""
    assert sequence(worklist(org.east_rep)) == EXPECTED


def test_sections_in_domain_order(org, data):
    """The sections come in the fixed order with their counts of records."""
    wl = worklist(org.east_rep)
    assert [band.key for band in wl.sections] == ["due", *BAND_KEYS]
    assert [band.count for band in wl.sections] == [3, 3, 3, 2, 4, 3]


def test_due_tasks_and_breaches_attach_to_their_record(org, data):
    """A breach or due task about a listed record is shown on that record's line and
    puts it first in its band; a task due later does not."""
    wl = worklist(org.east_rep)
    closing = next(b for b in wl.bands if b.key == "closing")
    first, second = closing.items
    assert [b.key for b in first.breaches] == ["t-a-deal"]
    assert first.urgent and not second.urgent
    assert second.tasks == []
    orders = next(b for b in wl.bands if b.key == "orders")
    assert [t.title for t in orders.items[0].tasks] == ["Call Won Two about the renewal"]


def test_overdue_first_within_band_beats_band_order(org, data):
    """A breach on the smallest deal of a band lifts it above a bigger one."""
    wl = worklist(org.east_rep)
    closing = next(b for b in wl.bands if b.key == "closing")
    assert closing.items[0].obj == data["a_deal"]
    Breach.objects.filter(key="t-a-deal").update(resolved_at=timezone.now())
    wl = worklist(org.east_rep)
    closing = next(b for b in wl.bands if b.key == "closing")
    assert [i.obj for i in closing.items] == [data["b_deal"], data["a_deal"]]


def test_reasons_say_why(org, data, english):
    """Each line says why it is there: money overdue and for how long, never contacted,
    the rule of a breach."""
    from django.utils import translation

    with translation.override("en"):
        wl = worklist(org.east_rep)
    reasons = {(item.kind, item.obj.pk): item.reason for band in wl.bands for item in band.items}
    assert reasons["contract", data["late20"].pk] == (
        "¥100,000 overdue 20 days · ¥100,000 outstanding"
    )
    assert reasons["lead", data["lead_two_days"].pk] == "New · Not contacted yet: waiting 2 days"
    breach = next(b for b in wl.bands if b.key == "closing").items[0].breaches[0]
    assert (breach.wl_rule, breach.wl_when) == ("Contact every 7 days", "overdue 1 day")


def test_rep_never_sees_others_items(org, data):
    """Another rep's leads, breaches and tasks never reach my list; a task they assigned
    to me does."""
    rows = sequence(worklist(org.east_rep))
    titles = {title for _band, _kind, title in rows}
    assert "Colleague's lead" not in titles
    assert "Colleague's own task" not in titles
    assert "Help with the tender" in titles
    their = {title for _b, _k, title in sequence(worklist(org.east_rep2))}
    assert their.isdisjoint({"Old lead never called", "Won One", "A-stage deal"})


def test_viewable_users_scope(org):
    """A rep reads only their own worklist; a manager their subtree's; an admin all."""
    assert list(viewable_users(org.east_rep)) == [org.east_rep]
    east = set(viewable_users(org.east_mgr))
    assert {org.east_rep, org.east_rep2, org.sub_rep, org.east_mgr} <= east
    assert org.south_rep not in east
    assert org.south_rep in set(viewable_users(org.admin))


def test_done_task_leaves_the_list(org, data):
    """A task ticked done no longer shows."""
    from loudou.tasks.services import complete_task

    complete_task(data["report_task"], actor=org.east_rep)
    titles = [t for _b, _k, t in sequence(worklist(org.east_rep))]
    assert "Prepare the weekly report" not in titles


def test_band_limit_keeps_every_urgent_record(org, data):
    """A band shows at most BAND_LIMIT records, but never hides an overdue one: with
    more leads than the limit, a breached lead at the bottom of the order still shows
    first, and the count covers them all."""
    rep = org.east_rep
    for n in range(BAND_LIMIT + 3):
        _lead(rep, f"Extra old lead {n}", 30 + n)
    last = _lead(rep, "Breached but recently called", 20)
    _log(rep, _ago(minutes=5), lead=last)
    Breach.objects.create(
        rule=data["rule"], owner=rep, lead=last, due_at=_ago(hours=2), key="t-last"
    )
    band = next(b for b in worklist(rep).bands if b.key == "development")
    assert band.count == 3 + BAND_LIMIT + 3 + 1
    assert len(band.items) == BAND_LIMIT
    assert band.items[0].obj == last


def _queries(user) -> int:
    with CaptureQueriesContext(connection) as ctx:
        worklist(user)
    return len(ctx.captured_queries)


def test_query_count_does_not_grow(org, data):
    """The worklist costs the same few queries for a handful of records as for many
    more of every kind."""
    rep = org.east_rep
    before = _queries(rep)
    pipe = pipeline()
    stage = pipe.open_stages().first()
    for n in range(15):
        account = create_account(actor=rep, name=f"More {n}")
        opp = pipeline_services.create_opportunity(
            actor=rep, pipeline=pipe, account=account, name=f"More deal {n}", stage=stage
        )
        _lead(rep, f"More lead {n}", n)
        create_task(rep, title=f"More task {n}", opportunity=opp, due_at=_ago(hours=n))
        Breach.objects.create(
            rule=data["rule"], owner=rep, lead=None, account=account, due_at=_ago(days=1),
            key=f"t-more-{n}",
        )  # fmt: skip
    assert Task.objects.filter(owner=rep).count() > 15
    after = _queries(rep)
    assert after == before
    assert after <= 14
