"""Fill stay_seconds for history written before the column existed: the stay in a stage
is the time from the change that entered it to the change that left it."""

from django.db import migrations


def backfill(apps, schema_editor):
    StageChange = apps.get_model("pipeline", "StageChange")
    rows = StageChange.objects.order_by("opportunity_id", "changed_at", "pk").values_list(
        "pk", "opportunity_id", "kind", "changed_at", "from_stage__kind"
    )
    previous = None
    updates = []
    for pk, opp_id, kind, changed_at, from_kind in rows.iterator():
        if (
            previous is not None
            and previous[0] == opp_id
            and kind in {"moved", "won", "lost"}
            and from_kind == "open"
        ):
            stay = max(int((changed_at - previous[1]).total_seconds()), 0)
            updates.append(StageChange(pk=pk, stay_seconds=stay))
        previous = (opp_id, changed_at)
    StageChange.objects.bulk_update(updates, ["stay_seconds"], batch_size=2000)


def clear(apps, schema_editor):
    apps.get_model("pipeline", "StageChange").objects.update(stay_seconds=None)


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0003_stagechange_stay_seconds")]
    operations = [migrations.RunPython(backfill, clear)]
