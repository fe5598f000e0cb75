from django.apps import AppConfig


class JMXConfig(AppConfig):
    # The label "jmx" makes JMXCounter's table "jmx_jmxcounter", the seed's
    # memcached key prefix.
    name = "apps.monitoring.jmx"
    label = "jmx"
    verbose_name = "JMX counters"

    def ready(self) -> None:
        # Connects the worker_process_init handler that starts a JVM in each
        # Celery pool process; importing it starts no JVM.
        from apps.monitoring import sources

        from . import jvmruntime  # noqa: F401
        from .source import JMXSource

        sources.register(JMXSource())
