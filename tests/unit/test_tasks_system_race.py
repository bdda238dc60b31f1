"""tasks.services.create_system_tasks when records vanish under it: the follow-up rule
sweep reads the breached records, then builds the task rows; a record deleted in
between (by another request) must not fail the whole batch — neither a KeyError on the
missing contact or opportunity nor a foreign-key violation at commit — its row is
skipped and the others are created."""

from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import connection

from loudou.customers.services import create_account, create_contact
from loudou.leads.services import create_lead
from loudou.sales import testing as make
from loudou.tasks.models import Task
from loudou.tasks.services import create_system_tasks

DUE = datetime(2025, 9, 29, 14, tzinfo=ZoneInfo("Asia/Shanghai"))


def row(key, owner, **links):
    return {"title": key, "owner_id": owner.pk, "key": key, "kind": "call", "due_at": DUE,
            "source": "rule", **links}  # fmt: skip


def test_rows_of_deleted_records_are_skipped_the_others_created(org):
    """Five rows: an account, a contact, an opportunity and a lead that are deleted after
    the rows were built, and a lead and a contact that stay. Only the two rows whose
    records still exist become tasks (the contact's task on the contact's account), and
    no foreign key is left dangling."""
    rep = org.east_rep
    gone_account = create_account(actor=rep, name="已删除客户")
    kept_account = create_account(actor=rep, name="保留客户")
    gone_contact = create_contact(kept_account, actor=rep, name="李四")
    kept_contact = create_contact(kept_account, actor=rep, name="王五")
    gone_opp = make.opportunity(rep, acct=create_account(actor=rep, name="商机客户"))
    gone_lead, _dups = create_lead(actor=rep, owner=rep, name="赵六", company="已删除")
    kept_lead, _dups = create_lead(actor=rep, owner=rep, name="钱七", company="保留")
    rows = [
        row("account", rep, account_id=gone_account.pk),
        row("contact", rep, contact_id=gone_contact.pk),
        row("opportunity", rep, opportunity_id=gone_opp.pk),
        row("lead", rep, lead_id=gone_lead.pk),
        row("kept-lead", rep, lead_id=kept_lead.pk),
        row("kept-contact", rep, contact_id=kept_contact.pk),
    ]
    # deleted between the sweep reading them and the insert
    gone_opp.delete()
    gone_contact.delete()
    gone_lead.delete()
    gone_account.delete()

    assert create_system_tasks(rows) == 2
    connection.check_constraints()  # what the commit would check
    tasks = {t.key: t for t in Task.objects.all()}
    assert set(tasks) == {"kept-lead", "kept-contact"}
    assert tasks["kept-contact"].account_id == kept_account.pk
    assert list(tasks["kept-lead"].assignees.values_list("pk", flat=True)) == [rep.pk]


def test_a_vanished_owner_skips_the_row(org):
    """A row whose owner was deleted meanwhile is skipped too (the owner is the one
    assignee)."""
    leaver = org.east_rep2
    rows = [row("mine", org.east_rep), row("theirs", leaver)]
    leaver.delete()
    assert create_system_tasks(rows) == 1
    connection.check_constraints()
    assert list(Task.objects.values_list("key", flat=True)) == ["mine"]
