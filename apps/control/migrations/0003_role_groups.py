"""Create the "admins" and "operators" groups with their permissions.

Permissions are normally created after migrate; they are created here first so
the groups are complete on a fresh database. apps.control's post_migrate hook
re-syncs the groups when later migrations add models.
"""
from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_role_groups(apps, schema_editor):
    from apps.control.roles import sync_role_groups

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_role_groups(apps=apps, using=schema_editor.connection.alias)


def remove_role_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name__in=["admins", "operators"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("control", "0002_initial"),
        ("actions", "0001_initial"),
        ("ssh", "0001_initial"),
        ("jmx", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_role_groups, remove_role_groups)]
