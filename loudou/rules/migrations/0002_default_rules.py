"""The sources' follow-up rules (DOMAIN §6) and a working week, as starting data.

``forwards`` installs them only when there are none (the demo calls it again on a
flushed database); ``backwards`` removes exactly these rules by their Chinese names.
"""

from datetime import time

from django.db import migrations

GRADE_CADENCE = [
    # grade, days, zh, en — DOMAIN §4 (our choice of N, docs/rules.md)
    ("D", 7, "D级客户每7天联系一次", "Grade D: a contact every 7 days"),
    ("C", 14, "C级客户每14天联系一次", "Grade C: a contact every 14 days"),
    ("B", 7, "B级客户每7天联系一次", "Grade B: a contact every 7 days"),
    ("A", 3, "A级客户每3天联系一次", "Grade A: a contact every 3 days"),
    ("won", 30, "成交客户每月至少联系一次", "Won customers: at least a contact a month"),
]

# Issue 8: overdue receivables feed the follow-up rules.
PAYMENT_OVERDUE = dict(
    name="回款逾期提醒", name_en="Payment overdue", applies_to="account",
    requirement="payment_overdue", amount=0, remind_owner=True, tell_manager=True,
)  # fmt: skip

RULES = [
    dict(name="新线索5小时内首次联系", name_en="New lead contacted within 5 hours",
         applies_to="lead", requirement="first_contact", amount=5, use_working_hours=True,
         remind_owner=True, tell_manager=True),
    # Shipped switched off: switched on, it refuses to close as lost every deal imported
    # or entered without its history of contacts (docs/rules.md); the demo switches it on.
    dict(name="丢单前至少联系7次", name_en="At least 7 contacts before closing as lost",
         applies_to="opportunity", requirement="contacts_before_lost", amount=7,
         remind_owner=False, is_active=False),
    dict(name="电话未接通：加微信并发邮件",
         name_en="Phone not answered: add on WeChat and send an e-mail",
         applies_to="any", requirement="task_on_outcome", amount=1, use_working_hours=True,
         remind_owner=False, create_task=True,
         conditions={"activity_kinds": ["call"], "outcomes": ["not_reached"],
                     "task_kinds": ["wechat", "email"]}),
    *[
        dict(name=zh, name_en=en, applies_to="account", requirement="contact_every",
             amount=days, conditions={"grades": [grade]}, remind_owner=True)
        for grade, days, zh, en in GRADE_CADENCE
    ],
    dict(name="按回访周期回访（20/40/60/80天）",
         name_en="Revisit within the account's interval (20/40/60/80 days)",
         applies_to="account", requirement="revisit", remind_owner=True, create_task=True),
    dict(name="商机停滞超过阶段期限", name_en="Opportunity stale in its stage",
         applies_to="opportunity", requirement="stale", remind_owner=True, tell_manager=True),
    dict(name="客户生日问候（提前3天）", name_en="Birthday greeting (3 days ahead)",
         applies_to="account", requirement="greeting", amount=3, remind_owner=False,
         create_task=True, conditions={"occasions": ["birthday"]}),
    dict(name="公司周年问候（提前7天）", name_en="Company anniversary greeting (7 days ahead)",
         applies_to="account", requirement="greeting", amount=7, remind_owner=False,
         create_task=True, conditions={"occasions": ["anniversary"]}),
    # added with 0004 (which installs it on databases that already had these rules)
    PAYMENT_OVERDUE,
]  # fmt: skip

WEEK = [(day, start, end) for day in range(5)
        for start, end in ((time(9), time(12)), (time(13), time(18)))]  # fmt: skip


def forwards(apps, schema_editor):
    FollowUpRule = apps.get_model("rules", "FollowUpRule")
    WorkingPeriod = apps.get_model("rules", "WorkingPeriod")
    if not FollowUpRule.objects.exists():
        for position, data in enumerate(RULES, start=1):
            FollowUpRule.objects.create(position=position * 10, **data)
    if not WorkingPeriod.objects.exists():
        WorkingPeriod.objects.bulk_create(
            [WorkingPeriod(weekday=d, start=s, end=e) for d, s, e in WEEK]
        )


def backwards(apps, schema_editor):
    FollowUpRule = apps.get_model("rules", "FollowUpRule")
    WorkingPeriod = apps.get_model("rules", "WorkingPeriod")
    FollowUpRule.objects.filter(name__in=[r["name"] for r in RULES]).delete()
    WorkingPeriod.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("rules", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
