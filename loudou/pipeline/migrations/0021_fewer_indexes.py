"""Fewer indexes on the deals and their stage history (issue 7: each index costs every
deal save and a bulk import's rebuild): the single-column indexes whose column leads a
composite index, and those of keys no query looks up.

Only the indexes are dropped. Django's AlterField would rebuild both whole tables on
SQLite (a copy of every row for each field); DROP INDEX is instant on both databases."""

import copy

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

# (model, field) whose own single-column index goes
FIELDS = [
    ("opportunity", "created_at"),
    ("opportunity", "created_by"),
    ("opportunity", "furthest_stage"),
    ("opportunity", "lost_reason"),
    ("opportunity", "owner"),
    ("opportunity", "pipeline"),
    ("opportunity", "stage"),
    ("opportunity", "status"),
    ("stagechange", "changed_at"),
    ("stagechange", "changed_by"),
    ("stagechange", "from_stage"),
    ("stagechange", "opportunity"),
    ("stagechange", "to_stage"),
]


def drop(apps, schema_editor):
    """Drop every plain index on exactly that one column, whatever its name (Django
    named them by a hash; PostgreSQL has a second, text-pattern one on status)."""
    connection = schema_editor.connection
    for model_name, field_name in FIELDS:
        model = apps.get_model("pipeline", model_name)
        column = model._meta.get_field(field_name).column
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
        for name, info in constraints.items():
            if (info["index"] and info["columns"] == [column] and not info["unique"]
                    and not info["primary_key"]):
                schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def restore(apps, schema_editor):
    """Put the single-column indexes back under the names Django gives them."""
    for model_name, field_name in FIELDS:
        model = apps.get_model("pipeline", model_name)
        field = copy.copy(model._meta.get_field(field_name))
        field.db_index = True
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))
        # PostgreSQL's text-pattern twin of an indexed text column (status)
        like = getattr(schema_editor, "_create_like_index_sql", lambda *_: None)(model, field)
        if like is not None:
            schema_editor.execute(like)


class Migration(migrations.Migration):

    dependencies = [
        ('pipeline', '0020_won_counts'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop, restore)],
            state_operations=[
                migrations.AlterField(
                    model_name='opportunity',
                    name='created_at',
                    field=models.DateTimeField(auto_now_add=True, verbose_name='created'),
                ),
                migrations.AlterField(
                    model_name='opportunity',
                    name='created_by',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='created by'),
                ),
                migrations.AlterField(
                    model_name='opportunity',
                    name='furthest_stage',
                    field=models.ForeignKey(db_index=False, editable=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='pipeline.stage'),
                ),
                migrations.AlterField(
                    model_name='opportunity',
                    name='lost_reason',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='pipeline.lostreason', verbose_name='lost reason'),
                ),
                migrations.AlterField(
                    model_name='opportunity',
                    name='owner',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='owner'),
                ),
                migrations.AlterField(
                    model_name='opportunity',
                    name='pipeline',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='opportunities', to='pipeline.pipeline', verbose_name='pipeline'),
                ),
                migrations.AlterField(
                    model_name='opportunity',
                    name='stage',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='opportunities', to='pipeline.stage', verbose_name='stage'),
                ),
                migrations.AlterField(
                    model_name='opportunity',
                    name='status',
                    field=models.CharField(choices=[('open', 'Open'), ('won', 'Won'), ('lost', 'Lost')], default='open', max_length=5, verbose_name='status'),
                ),
                migrations.AlterField(
                    model_name='stagechange',
                    name='changed_at',
                    field=models.DateTimeField(default=django.utils.timezone.now),
                ),
                migrations.AlterField(
                    model_name='stagechange',
                    name='changed_by',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='stagechange',
                    name='from_stage',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='pipeline.stage'),
                ),
                migrations.AlterField(
                    model_name='stagechange',
                    name='opportunity',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='stage_changes', to='pipeline.opportunity'),
                ),
                migrations.AlterField(
                    model_name='stagechange',
                    name='to_stage',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='pipeline.stage'),
                ),
            ],
        ),
    ]
