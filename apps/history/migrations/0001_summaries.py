from django.db import migrations, models

# The summary tables: on PostgreSQL partitioned by range of ``bucket``
# (apps.history.partitions adds and drops the partitions); elsewhere plain
# tables. The state is the same either way.
SUMMARY_MODELS = ("MinuteSummary", "HourSummary")


def create_summary_tables(apps, schema_editor):
    for name in SUMMARY_MODELS:
        model = apps.get_model("history", name)
        if schema_editor.connection.vendor != "postgresql":
            schema_editor.create_model(model)
            continue
        sql, params = schema_editor.table_sql(model)
        schema_editor.execute(f"{sql} PARTITION BY RANGE ({schema_editor.quote_name('bucket')})", params or None)
        for index in model._meta.indexes:
            schema_editor.add_index(model, index)


def drop_summary_tables(apps, schema_editor):
    for name in SUMMARY_MODELS:
        schema_editor.delete_model(apps.get_model("history", name))


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='AppliedBatch',
            fields=[
                ('batch_id', models.CharField(max_length=64, primary_key=True, serialize=False)),
                ('applied_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('samples', models.PositiveIntegerField()),
            ],
        ),
        migrations.CreateModel(
            name='ImportedLog',
            fields=[
                ('identity', models.CharField(max_length=64, primary_key=True, serialize=False)),
                ('name', models.CharField(max_length=255)),
                ('lines', models.BigIntegerField(default=0)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='HourSummary',
                    fields=[
                        ('pk', models.CompositePrimaryKey('kind', 'node_id', 'endpoint_id', 'counter_id', 'bucket', blank=True, editable=False, primary_key=True, serialize=False)),
                        ('kind', models.CharField(max_length=20)),
                        ('node_id', models.BigIntegerField()),
                        ('endpoint_id', models.BigIntegerField()),
                        ('counter_id', models.BigIntegerField()),
                        ('bucket', models.DateTimeField(help_text='Start of the period (UTC).')),
                        ('cluster_id', models.BigIntegerField()),
                        ('count', models.BigIntegerField()),
                        ('min', models.FloatField()),
                        ('max', models.FloatField()),
                        ('sum', models.FloatField()),
                        ('sumsq', models.FloatField()),
                        ('last', models.FloatField()),
                        ('last_stamp', models.DateTimeField()),
                    ],
                    options={
                        'indexes': [models.Index(fields=['cluster_id', 'bucket'], name='history_hour_cluster_idx')],
                    },
                ),
                migrations.CreateModel(
                    name='MinuteSummary',
                    fields=[
                        ('pk', models.CompositePrimaryKey('kind', 'node_id', 'endpoint_id', 'counter_id', 'bucket', blank=True, editable=False, primary_key=True, serialize=False)),
                        ('kind', models.CharField(max_length=20)),
                        ('node_id', models.BigIntegerField()),
                        ('endpoint_id', models.BigIntegerField()),
                        ('counter_id', models.BigIntegerField()),
                        ('bucket', models.DateTimeField(help_text='Start of the period (UTC).')),
                        ('cluster_id', models.BigIntegerField()),
                        ('count', models.BigIntegerField()),
                        ('min', models.FloatField()),
                        ('max', models.FloatField()),
                        ('sum', models.FloatField()),
                        ('sumsq', models.FloatField()),
                        ('last', models.FloatField()),
                        ('last_stamp', models.DateTimeField()),
                    ],
                    options={
                        'indexes': [models.Index(fields=['cluster_id', 'bucket'], name='history_minute_cluster_idx')],
                    },
                ),
            ],
        ),
        # After the state operation, so the RunPython sees the models; not
        # atomic by itself (MySQL/MariaDB cannot roll DDL back).
        migrations.RunPython(create_summary_tables, drop_summary_tables, atomic=False),
    ]
