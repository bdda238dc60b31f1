"""The "payment overdue" requirement (issue 8: overdue receivables feed the follow-up
rules), and its default rule on databases whose default rules 0002 installed before it
existed (a new database gets it from 0002)."""

from importlib import import_module

from django.db import migrations, models
from django.db.models import Max


def forwards(apps, schema_editor):
    FollowUpRule = apps.get_model("rules", "FollowUpRule")
    rule = import_module("loudou.rules.migrations.0002_default_rules").PAYMENT_OVERDUE
    if not FollowUpRule.objects.exists():
        return  # 0002 installs it with the others
    if FollowUpRule.objects.filter(requirement=rule["requirement"]).exists():
        return
    top = FollowUpRule.objects.aggregate(top=Max("position"))["top"] or 0
    FollowUpRule.objects.create(position=top + 10, **rule)


def backwards(apps, schema_editor):
    FollowUpRule = apps.get_model("rules", "FollowUpRule")
    FollowUpRule.objects.filter(requirement="payment_overdue").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("rules", "0003_sweep_checks"),
    ]

    operations = [
        migrations.AlterField(
            model_name="followuprule",
            name="requirement",
            field=models.CharField(
                choices=[
                    ("first_contact", "First contact within N hours"),
                    ("contact_every", "A contact every N days"),
                    ("contacts_before_lost", "At least N contacts before closing as lost"),
                    ("task_on_outcome", "Tasks when an activity has an outcome"),
                    ("stale", "Days in stage under the stage's limit"),
                    ("revisit", "Revisit interval of the account's class"),
                    ("greeting", "Greeting on an important day"),
                    ("payment_overdue", "Instalments paid on time (N days' grace)"),
                ],
                max_length=24,
                verbose_name="requirement",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
