from django.db import migrations, models


class Migration(migrations.Migration):
    """The per-owner index also carries kind, purpose and duration, so the per-owner
    statistics (queries.py) read the index only."""

    dependencies = [
        ("activities", "0002_newest_first_index"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="activity", name="activity_owner_when_idx"),
        migrations.AddIndex(
            model_name="activity",
            index=models.Index(
                fields=["owner", "occurred_at", "kind", "purpose", "duration_minutes"],
                name="activity_owner_when_idx",
            ),
        ),
    ]
