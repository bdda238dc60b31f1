"""Install the default lost reasons, so that a new installation can close deals as lost
before an admin has edited the list."""

from django.db import migrations

# A copy, not an import: a migration must not change when the app's constants do.
REASONS = [
    ("价格太高", "Price too high"),
    ("选择了竞争对手", "Chose a competitor"),
    ("没有预算", "No budget"),
    ("需求取消", "Need went away"),
    ("联系不上", "Could not reach them"),
    ("产品不满足需求", "Product does not fit"),
    ("其他", "Other"),
]


def install(apps, schema_editor):
    LostReason = apps.get_model("pipeline", "LostReason")
    if not LostReason.objects.exists():
        LostReason.objects.bulk_create(
            LostReason(name=zh, name_en=en, position=i) for i, (zh, en) in enumerate(REASONS)
        )


def remove(apps, schema_editor):
    LostReason = apps.get_model("pipeline", "LostReason")
    LostReason.objects.filter(name__in=[zh for zh, _en in REASONS]).delete()


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0004_backfill_stay_seconds")]
    operations = [migrations.RunPython(install, remove)]
