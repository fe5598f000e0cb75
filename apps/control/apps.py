from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ControlConfig(AppConfig):
    name = "apps.control"
    verbose_name = "Control"

    def ready(self) -> None:
        from . import counting, roles

        counting.connect()

        # Models added by later migrations get their permissions only after
        # migrate; re-syncing the role groups then keeps "admins" complete.
        post_migrate.connect(roles.sync_role_groups_signal, sender=self)
