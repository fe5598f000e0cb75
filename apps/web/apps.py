from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "apps.web"
    verbose_name = "Web"

    def ready(self) -> None:
        # Registers the secrets check (placeholders and short values refused
        # when DEBUG is off): the web layer is what signs sessions and serves /metrics.
        from pyscaler import secret_checks  # noqa: F401
