from django.apps import AppConfig


class ActionsConfig(AppConfig):
    name = "apps.actions"
    verbose_name = "Actions"

    def ready(self) -> None:
        from . import kinds  # noqa: F401  (fills the registry)
        from .choices import ActionKindChoice
        from .registry import all_kinds

        missing = set(ActionKindChoice.values) - set(all_kinds())
        if missing:
            raise RuntimeError(f"action kinds without a class: {sorted(missing)}")
