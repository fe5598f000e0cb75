from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ConfigSyncConfig(AppConfig):
    name = "apps.configsync"
    label = "configsync"
    verbose_name = "Configuration as code"

    def ready(self) -> None:
        from apps.control import roles

        from . import sections

        sections.register_builtin()
        # This app's permissions are created after control's post_migrate
        # hook synced the role groups: sync them again so "admins" hold them.
        post_migrate.connect(roles.sync_role_groups_signal, sender=self)
