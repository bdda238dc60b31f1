"""Partial owner/pool indexes on leads: a lead changing hands writes one entry in each
instead of moving a NULL entry too (the recycle sweep's UPDATE, claims, releases)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0004_recycle_accounts_lean_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="lead",
            name="lead_owner_status",
        ),
        migrations.RemoveIndex(
            model_name="lead",
            name="lead_pool_status",
        ),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(
                condition=models.Q(("owner__isnull", False)),
                fields=["owner", "status"],
                name="lead_owner_status",
            ),
        ),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(
                condition=models.Q(("pool__isnull", False)),
                fields=["pool", "status"],
                name="lead_pool_status",
            ),
        ),
    ]
