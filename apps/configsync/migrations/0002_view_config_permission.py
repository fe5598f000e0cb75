"""The permission ``control.view_config``: reading the whole configuration
(export, GET /api/v1/config, what a remote instance pulls).

It is a permission of the control app (the configuration is control's
clusters and what hangs off them) but is created here, on control's Cluster
content type, so that configuration as code adds no migration to control.
The "admins" group gets it (it holds every permission) and so does
"operators" (every view_ permission of PyScaler's apps: they may view all
configuration) when control's post_migrate hook re-syncs the groups."""
from django.db import migrations

CODENAME = "view_config"
NAME = "Can view and export the whole configuration"


def create_permission(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    db = schema_editor.connection.alias
    content_type, _ = ContentType.objects.using(db).get_or_create(app_label="control", model="cluster")
    Permission.objects.using(db).get_or_create(codename=CODENAME, content_type=content_type,
                                               defaults={"name": NAME})


def remove_permission(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.using(schema_editor.connection.alias).filter(
        codename=CODENAME, content_type__app_label="control").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("configsync", "0001_remote_instances_and_sync_records"),
        ("control", "0007_bounded_numbers"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_permission, remove_permission)]
