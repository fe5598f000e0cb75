from django.apps import AppConfig


class ConfigSyncConfig(AppConfig):
    name = "apps.configsync"
    label = "configsync"
    verbose_name = "Configuration as code"

    def ready(self) -> None:
        from . import sections

        sections.register_builtin()
