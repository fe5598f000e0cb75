"""SSH as a counter source: a shell command per counter, run on every node
of the counter's cluster over one pooled connection per node."""
from __future__ import annotations

from datetime import datetime

from apps.monitoring.sources import CounterSource

#: SSHCounter._meta.db_table: the seed's memcached key prefix.
KEY_PREFIX = "ssh_sshcounter"


class SSHSource(CounterSource):
    kind = "ssh"
    label = "SSH"
    model_label = "ssh.SSHCounter"
    key_prefix = KEY_PREFIX
    cluster_path = "cluster"
    trigger_accessor = "ssh_counters"
    # What collect_node and target_for read of a counter.
    message_fields = ("id", "cluster_id", "name", "command", "interval_s")

    def describe(self, counter) -> str:
        return counter.command

    def collect(self, node, counters: list, at: datetime) -> list:
        from .collector import collect_node

        return collect_node(node, counters, at)
