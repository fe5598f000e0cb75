from django.apps import AppConfig


class ConstantConfig(AppConfig):
    name = "tests.monitoring.constant"
    label = "constant"
    verbose_name = "Constant counters (tests only)"

    def ready(self) -> None:
        from apps.monitoring import sources

        from .source import ConstantSource

        sources.register(ConstantSource())
