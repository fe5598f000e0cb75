from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "apps.history"
    verbose_name = "History"

    def ready(self) -> None:
        # Collection hands each round's samples to the feed (monitoring never
        # imports history: apps.monitoring.sinks is the hook).
        from django.conf import settings

        from apps.history import feed
        from apps.monitoring import sinks

        if settings.HISTORY_ENABLED:
            sinks.register("history", feed.enqueue_samples)
