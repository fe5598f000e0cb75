from django.apps import AppConfig


class SSHConfig(AppConfig):
    # The label "ssh" makes SSHCounter's table "ssh_sshcounter", the seed's
    # memcached key prefix.
    name = "apps.monitoring.ssh"
    label = "ssh"
    verbose_name = "SSH counters"

    def ready(self) -> None:
        from apps.monitoring import sources

        from .source import SSHSource

        sources.register(SSHSource())
