"""The two role groups: "admins" may do everything; "operators" may view all
configuration, fire triggers and actions and manage nodes from the console,
but never edit configuration."""
from __future__ import annotations

from django.apps import apps as global_apps

ADMINS = "admins"
OPERATORS = "operators"
#: PyScaler's own apps; every counter source's app is added (pyscaler_apps).
PYSCALER_APPS = ("monitoring", "control", "actions")
# Custom permissions (declared in model Meta) that operators hold besides view_*.
OPERATOR_CODENAMES = ("fire_trigger", "manage_nodes")


def pyscaler_apps() -> tuple[str, ...]:
    from apps.monitoring import sources

    return (*PYSCALER_APPS, *dict.fromkeys(s.model_label.partition(".")[0] for s in sources.all()))


def sync_role_groups(apps=global_apps, using: str = "default") -> None:
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admins, _ = Group.objects.using(using).get_or_create(name=ADMINS)
    admins.permissions.set(Permission.objects.using(using).all())
    operators, _ = Group.objects.using(using).get_or_create(name=OPERATORS)
    view = Permission.objects.using(using).filter(
        content_type__app_label__in=pyscaler_apps(), codename__startswith="view_"
    )
    extra = Permission.objects.using(using).filter(
        content_type__app_label__in=pyscaler_apps(), codename__in=OPERATOR_CODENAMES
    )
    operators.permissions.set(list(view) + list(extra))


def sync_role_groups_signal(sender, using="default", apps=global_apps, **kwargs) -> None:
    from django.db import router

    # Only where the auth tables live (not on a history-only database).
    if router.allow_migrate(using, "auth"):
        sync_role_groups(apps=apps, using=using)
