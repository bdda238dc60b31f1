"""Fewer index entries per lead row version (the recycle sweep's backlog on PostgreSQL).

PostgreSQL writes a moved lead (recycled, claimed, released) as a new row version with an
entry in every index of the table; at 1,000,000 leads the sweep's UPDATE spent most of
its time there. So:

- the links most leads leave empty (product interest, creator, converted account,
  contact, opportunity) are indexed where they are set only (partial indexes, both
  databases; their look-ups ask for a value, which the partial index answers);
- PostgreSQL only: the ``varchar_pattern_ops`` (``_like``) twins of the duplicate keys'
  indexes go — they serve ``LIKE 'prefix%'`` only, which nothing asks of these keys
  (duplicates are exact matches, the lead search's ``contains`` cannot use them);
- PostgreSQL only: the lead table keeps 10 % of each page free (fill factor 90), so that
  marking a lead (the sweep's warning, an edit of an unindexed field) can be a HOT update
  on the same page, with no index entry at all. It applies to pages written from now on.

The old indexes are dropped by name (the names Django gave them in 0001, the same on
both databases): altering ``db_index`` through Django would rebuild the table on SQLite.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

PARTIAL = (
    ("product_interest", "lead_product_interest", "leads_lead_product_interest_id_cfb512e1"),
    ("created_by", "lead_created_by", "leads_lead_created_by_id_bd2e8097"),
    ("converted_account", "lead_conv_account", "leads_lead_converted_account_id_8aa5ddf6"),
    ("converted_contact", "lead_conv_contact", "leads_lead_converted_contact_id_ec7f0840"),
    (
        "converted_opportunity",
        "lead_conv_opportunity",
        "leads_lead_converted_opportunity_id_923e0297",
    ),
)
LIKE = ("mobile_key_c798037a", "email_key_0380345a", "company_key_3541200b")


def forwards(apps, schema_editor):
    execute = schema_editor.execute
    for field, _name, old in PARTIAL:
        execute(f'DROP INDEX IF EXISTS "{old}"')
    if schema_editor.connection.vendor == "postgresql":
        for index in LIKE:
            execute(f'DROP INDEX IF EXISTS "leads_lead_{index}_like"')
        execute('ALTER TABLE "leads_lead" SET (fillfactor = 90)')


def backwards(apps, schema_editor):
    execute = schema_editor.execute
    for field, _name, old in PARTIAL:
        execute(f'CREATE INDEX "{old}" ON "leads_lead" ("{field}_id")')
    if schema_editor.connection.vendor == "postgresql":
        for index in LIKE:
            column = index.rsplit("_", 1)[0]
            execute(
                f'CREATE INDEX "leads_lead_{index}_like" ON "leads_lead" '
                f'("{column}" varchar_pattern_ops)'
            )
        execute('ALTER TABLE "leads_lead" RESET (fillfactor)')


def fk(to, on_delete, verbose_name, related_name="leads"):
    return models.ForeignKey(
        blank=True,
        db_index=False,
        null=True,
        on_delete=on_delete,
        related_name=related_name,
        to=to,
        verbose_name=verbose_name,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0005_lead_owner_pool_partial_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="lead",
                    name="product_interest",
                    field=fk(
                        "pipeline.productline",
                        django.db.models.deletion.PROTECT,
                        "product interest",
                    ),
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="created_by",
                    field=fk(
                        settings.AUTH_USER_MODEL,
                        django.db.models.deletion.SET_NULL,
                        "created by",
                        related_name="+",
                    ),
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="converted_account",
                    field=fk(
                        "customers.account",
                        django.db.models.deletion.SET_NULL,
                        "converted into account",
                    ),
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="converted_contact",
                    field=fk(
                        "customers.contact",
                        django.db.models.deletion.SET_NULL,
                        "converted into contact",
                    ),
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="converted_opportunity",
                    field=fk(
                        "pipeline.opportunity",
                        django.db.models.deletion.SET_NULL,
                        "converted into opportunity",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
        *(
            migrations.AddIndex(
                model_name="lead",
                index=models.Index(
                    condition=models.Q((f"{field}__isnull", False)), fields=[field], name=name
                ),
            )
            for field, name, _old in PARTIAL
        ),
    ]
