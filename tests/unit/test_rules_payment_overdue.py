"""The "payment overdue" follow-up rule with a controlled clock (issue 8: overdue
receivables feed the follow-up rules): an account is in breach while a payment-plan line
of one of its signed contracts is past its due date (plus the rule's days of grace) and
not fully paid; the receivable arithmetic is loudou.sales' (partial payments, over-
payments, refunds), and the next sweep settles the breach once nothing is overdue."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from loudou.core.exceptions import ValidationFailed
from loudou.customers.services import create_account, update_account
from loudou.notifications.models import Notification
from loudou.rules import services
from loudou.rules.engine import EVALUATORS, Context, resolve
from loudou.rules.models import Breach, FollowUpRule, Requirement, SweepRun
from loudou.rules.sweep import sweep
from loudou.sales import services as sales
from loudou.sales import testing as make
from loudou.tasks.models import Task

TZ = ZoneInfo("Asia/Shanghai")


def at(y, m, d, h=0, mi=0):
    return datetime(y, m, d, h, mi, tzinfo=TZ)


SIGNED = date(2025, 9, 1)
DUE = date(2025, 9, 20)  # the first instalment's due date
OVERDUE_FROM = at(2025, 9, 21)  # the start of the first day it is overdue


@pytest.fixture
def rule(org):
    """The shipped "payment overdue" rule, alone (every other rule switched off)."""
    rule = FollowUpRule.objects.get(requirement=Requirement.PAYMENT_OVERDUE)
    FollowUpRule.objects.exclude(pk=rule.pk).update(is_active=False)
    return rule


def new_contract(owner, name="恒信科技", amount="100000", plans=None):
    """A contract of ``owner`` signed on 1 September 2025: 30 000 due on 20 September,
    70 000 on 20 October (unless ``plans`` says otherwise)."""
    account = create_account(actor=owner, name=name)
    if plans is None:
        plans = [{"due_date": DUE, "amount": Decimal("30000")},
                 {"due_date": date(2025, 10, 20), "amount": Decimal("70000")}]  # fmt: skip
    return make.contract(owner, amount=amount, sign_date=SIGNED, plans=plans, acct=account)


def pay(contract, amount, paid_on=date(2025, 9, 25), plan=None):
    payment, _created = sales.record_payment(
        contract, actor=contract.owner, amount=Decimal(amount), paid_on=paid_on, plan=plan
    )
    return payment


def told() -> set[str]:
    rows = Notification.objects.filter(kind="rule_breach")
    return set(rows.values_list("user__username", flat=True))


def test_breach_appears_the_day_after_the_due_date_not_before(org, rule):
    """Unpaid on its due date (20 September) the line is not overdue yet at 23:59 that
    day; at 00:00 on the 21st (Shanghai time) the account breaches the rule: due then,
    the clock started on the due date, owned by the account's owner, and the owner and
    their manager are told."""
    contract = new_contract(org.east_rep)
    sweep(at(2025, 9, 20, 23, 59))
    assert not Breach.objects.exists()
    sweep(OVERDUE_FROM)
    breach = Breach.objects.get()
    assert (breach.rule, breach.account, breach.owner) == (rule, contract.account, org.east_rep)
    assert breach.due_at == OVERDUE_FROM
    assert breach.basis_at == at(2025, 9, 20)
    assert told() == {"east_rep", "east_mgr"}


def test_no_breach_within_the_grace(org, rule):
    """With five days' grace the line is overdue only from 26 September: nothing at the
    end of the 25th, a breach due at the start of the 26th."""
    FollowUpRule.objects.filter(pk=rule.pk).update(amount=5)
    new_contract(org.east_rep)
    sweep(at(2025, 9, 25, 23, 59))
    assert not Breach.objects.exists()
    sweep(at(2025, 9, 26, 8))
    assert Breach.objects.get().due_at == at(2025, 9, 26)


def test_a_paid_instalment_is_no_breach(org, rule):
    """The first instalment paid in full before its due date: nothing overdue, nothing
    found."""
    contract = new_contract(org.east_rep)
    pay(contract, "30000", paid_on=date(2025, 9, 19))
    sweep(at(2025, 9, 29, 14))
    assert not Breach.objects.exists()


def test_partial_payment_leaves_it_open_full_payment_settles_at_the_next_sweep(org, rule):
    """Half of the overdue instalment paid: still overdue, the breach stays open. The rest
    paid: the breach stays open until the next sweep — an incremental one — settles it
    as met at that sweep's moment."""
    contract = new_contract(org.east_rep)
    sweep(at(2025, 9, 29, 14))
    breach = Breach.objects.get()
    pay(contract, "15000")
    sweep(at(2025, 9, 29, 14, 5))
    breach.refresh_from_db()
    assert breach.is_open
    pay(contract, "15000")  # unlinked: sales allocates it to the oldest line
    breach.refresh_from_db()
    assert breach.is_open
    run = sweep(at(2025, 9, 29, 14, 10))
    assert run.mode == SweepRun.Mode.INCREMENTAL
    breach.refresh_from_db()
    assert (breach.resolution, breach.resolved_at) == ("met", at(2025, 9, 29, 14, 10))
    assert Breach.objects.count() == 1


def test_over_payment_covers_the_next_instalment(org, rule):
    """Sales' allocation decides what is covered: 40 000 paid against the first line
    (30 000) leaves 10 000 for the second, so with 60 000 more before its due date no
    line is overdue on 21 October; with 50 000 only, the second line is."""
    covered = new_contract(org.east_rep, name="全额")
    short = new_contract(org.east_rep2, name="差一点")
    for contract, rest in ((covered, "60000"), (short, "50000")):
        pay(contract, "40000", paid_on=date(2025, 9, 18), plan=contract.plans.first())
        pay(contract, rest, paid_on=date(2025, 10, 15))
    sweep(at(2025, 10, 21, 9))
    breach = Breach.objects.get()
    assert breach.account == short.account
    assert breach.basis_at == at(2025, 10, 20)


def test_a_refund_makes_it_overdue_again(org, rule):
    """Paid and settled, then 10 000 refunded (a negative payment): the first line is
    uncovered again and the next sweep opens a new breach (a key of its own) next to the
    settled one."""
    contract = new_contract(org.east_rep)
    sweep(at(2025, 9, 29, 14))
    pay(contract, "30000")
    sweep(at(2025, 9, 29, 14, 5))
    settled = Breach.objects.get()
    assert settled.resolution == "met"
    pay(contract, "-10000", paid_on=date(2025, 9, 29))
    sweep(at(2025, 9, 29, 14, 10))
    reopened = Breach.objects.open().get()
    assert reopened.pk != settled.pk
    assert (reopened.account, reopened.basis_at) == (contract.account, at(2025, 9, 20))
    settled.refresh_from_db()
    assert settled.resolution == "met"


def test_plan_changes_are_seen_by_the_next_sweep(org, rule):
    """A plan line added with a past due date makes the account overdue at the next
    (incremental) sweep; deleting it settles the breach as met at the one after; a
    cancelled contract owes nothing either."""
    contract = new_contract(org.east_rep, plans=[])
    sweep(at(2025, 9, 29, 14))
    assert not Breach.objects.exists()
    plan = sales.add_plan(contract, actor=org.east_rep, due_date=DUE, amount=Decimal("5000"))
    sweep(at(2025, 9, 29, 14, 5))
    breach = Breach.objects.get()
    sales.delete_plan(plan, actor=org.east_rep)
    sweep(at(2025, 9, 29, 14, 10))
    breach.refresh_from_db()
    assert breach.resolution == "met"

    other = new_contract(org.east_rep2, name="取消")
    sweep(at(2025, 9, 29, 14, 15))
    late = Breach.objects.open().get()
    sales.cancel_contract(other, actor=org.east_rep2)
    sweep(at(2025, 9, 29, 14, 20))
    late.refresh_from_db()
    assert late.resolution == "met"


def test_sweeping_twice_changes_nothing(org, rule):
    """The same sweep twice, and a later one, store one breach and tell each person
    once."""
    new_contract(org.east_rep)
    sweep(at(2025, 9, 29, 14))
    sweep(at(2025, 9, 29, 14))
    sweep(at(2025, 9, 29, 15), full=True)
    assert Breach.objects.count() == 1
    assert Notification.objects.filter(kind="rule_breach").count() == 2


def test_conditions_narrow_the_accounts(org, rule):
    """A rule for grade A accounts only finds the grade A account's overdue line, and
    settles its breach as "no longer applies" once the account is another grade."""
    FollowUpRule.objects.filter(pk=rule.pk).update(conditions={"grades": ["A"]})
    graded = new_contract(org.east_rep, name="甲级")
    new_contract(org.east_rep, name="无级")
    type(graded.account).objects.filter(pk=graded.account_id).update(grade="A")
    sweep(at(2025, 9, 29, 14))
    breach = Breach.objects.get()
    assert breach.account_id == graded.account_id
    type(graded.account).objects.filter(pk=graded.account_id).update(grade="B")
    sweep(at(2025, 9, 29, 14, 5), full=True)
    breach.refresh_from_db()
    assert breach.resolution == "out_of_scope"
    assert not Breach.objects.open().exists()


def test_new_owner_settles_the_old_breach_and_gets_their_own(org, rule):
    """The account given to east_rep2: the old owner's breach is settled as "owner
    changed" and the next sweep finds the account overdue for its new owner."""
    contract = new_contract(org.east_rep)
    sweep(at(2025, 9, 29, 14))
    old = Breach.objects.get()
    update_account(contract.account, actor=org.admin, owner=org.east_rep2)
    sweep(at(2025, 9, 29, 14, 5))
    old.refresh_from_db()
    assert old.resolution == "owner_changed"
    assert Breach.objects.open().get().owner == org.east_rep2


def test_breach_creates_a_call_task(org, rule, english):
    """A rule that creates tasks gives the owner a call task naming the account and the
    due date, once."""
    FollowUpRule.objects.filter(pk=rule.pk).update(create_task=True)
    contract = new_contract(org.east_rep)
    sweep(at(2025, 9, 29, 14))
    sweep(at(2025, 9, 29, 14, 5), full=True)
    task = Task.objects.get()
    assert (task.owner, task.kind, task.account_id) == (org.east_rep, "call", contract.account_id)
    assert task.title == f"Chase the overdue payment: {contract.account} (due 2025-09-20)"


def test_evaluator_queries_do_not_grow_with_the_accounts(org, rule, django_assert_max_num_queries):
    """Storing the breaches of two overdue accounts and settling them takes as many
    queries as for six."""
    from loudou.rules.calendar import load_calendar

    def run(n, now):
        for i in range(n):
            new_contract(org.east_rep, name=f"客户{now.minute}-{i}")
        ctx = Context(now=now, calendar=load_calendar())
        run = SweepRun.objects.create(now=now, mode="full")
        evaluator = EVALUATORS[rule.requirement]
        with django_assert_max_num_queries(100) as counted:
            stored = evaluator.store(rule, ctx, run)
            Breach.objects.open().update(basis_at=at(2025, 9, 1))  # fake a later state
            resolve(rule, ctx)
        return stored, len(counted.captured_queries)

    few = run(2, at(2025, 9, 29, 14, 1))
    many = run(6, at(2025, 9, 29, 14, 2))
    assert (few[0], many[0]) == (2, 6)
    assert few[1] == many[1]


def test_grace_is_checked_and_return_to_pool_refused(org):
    """N is the days of grace: 0 when left out, at most 365; a late payer is not
    returned to the pool."""
    made = services.create_rule(
        actor=org.admin, name="回款", applies_to="account", requirement="payment_overdue"
    )
    assert made.amount == 0
    with pytest.raises(ValidationFailed) as too_long:
        services.create_rule(
            actor=org.admin, name="回款", applies_to="account", requirement="payment_overdue",
            amount=366,
        )  # fmt: skip
    assert too_long.value.field == "amount"
    with pytest.raises(ValidationFailed) as pool:
        services.create_rule(
            actor=org.admin, name="回款", applies_to="account", requirement="payment_overdue",
            return_to_pool=True,
        )  # fmt: skip
    assert pool.value.field == "return_to_pool"
    with pytest.raises(ValidationFailed) as lead:
        services.create_rule(
            actor=org.admin, name="回款", applies_to="lead", requirement="payment_overdue"
        )
    assert lead.value.field == "applies_to"
