# Covering indexes for the funnel reports (analytics, issue 4).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0006_stage_totals_covering_index"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="opportunity",
            name="pipeline_op_pipelin_422540_idx",
        ),
        migrations.AddIndex(
            model_name="opportunity",
            index=models.Index(
                fields=["pipeline", "furthest_stage", "status", "owner"], name="opp_funnel_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="opportunity",
            index=models.Index(
                fields=["pipeline", "status", "closed_at", "amount"], name="opp_won_period_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="stagechange",
            index=models.Index(
                condition=models.Q(("stay_seconds__isnull", False)),
                fields=["from_stage", "stay_seconds"],
                name="change_stay_idx",
            ),
        ),
    ]
