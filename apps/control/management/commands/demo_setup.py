"""Load the demo configuration `make run` shows: one cluster whose node is this
machine through the demo sshd, with a load counter, a JVM heap counter, and a
trigger that e-mails when the load crosses a threshold. Idempotent: running
it again updates the same rows."""
from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.actions import demo
from apps.control.models import Cluster, Node, Trigger, TriggerAction
from apps.monitoring.jmx.models import JVM, JMXCounter
from apps.monitoring.ssh.models import SSHCounter


class Command(BaseCommand):
    help = "Create or update the demo cluster (node = this machine through the demo sshd)."

    def add_arguments(self, parser):
        parser.add_argument("--ssh-host", default="127.0.0.1")
        parser.add_argument("--ssh-port", type=int, required=True)
        parser.add_argument("--ssh-user", required=True)
        parser.add_argument("--ssh-key", required=True, help="absolute path of the demo client key")
        parser.add_argument("--jmx-port", type=int, default=None, help="port of the demo JVM, if any")
        parser.add_argument("--load-threshold", type=float, default=1.0)
        parser.add_argument("--interval", type=int, default=10, help="collection interval in seconds")
        parser.add_argument("--mail-to", default="ops@example.com")

    @transaction.atomic
    def handle(self, *args, **opts):
        cluster, _ = Cluster.objects.update_or_create(
            name="demo",
            defaults={
                "description": "This machine, reached through the demo sshd started by `make run`.",
                "min_size": 1, "max_size": 3, "ssh_user": opts["ssh_user"], "ssh_port": opts["ssh_port"],
                "ssh_key_path": opts["ssh_key"],
            },
        )
        Node.objects.update_or_create(
            name="demo-node-1",
            defaults={"cluster": cluster, "address": opts["ssh_host"], "state": "running",
                      "collection_enabled": True, "protected": True},
        )
        load, _ = SSHCounter.objects.update_or_create(
            cluster=cluster, name="load1",
            defaults={"command": "cut -d' ' -f1 /proc/loadavg", "threshold": opts["load_threshold"],
                      "comparison": ">=", "interval_s": opts["interval"], "unit": "load"},
        )
        SSHCounter.objects.update_or_create(
            cluster=cluster, name="mem_available_mb",
            defaults={"command": "awk '/MemAvailable/ {print int($2/1024)}' /proc/meminfo",
                      "threshold": 256, "comparison": "<", "interval_s": opts["interval"], "unit": "MB"},
        )
        if opts["jmx_port"]:
            jvm, _ = JVM.objects.update_or_create(
                cluster=cluster, name="demo-jvm", defaults={"jmx_port": opts["jmx_port"]}
            )
            JMXCounter.objects.update_or_create(
                jvm=jvm, name="heap_used",
                defaults={"mbean": "java.lang:type=Memory", "attribute": "HeapMemoryUsage",
                          "composite_key": "used", "threshold": 512 * 1024 * 1024, "comparison": ">=",
                          "interval_s": opts["interval"], "unit": "bytes"},
            )
        mail = demo.notify_ops(cluster, opts["mail_to"])
        trigger, _ = Trigger.objects.update_or_create(
            cluster=cluster, name="demo-high-load",
            defaults={"timing_minutes": 1, "cooldown_s": 300, "aggregation": "any",
                      "missing_data": "ignore", "enabled": True},
        )
        trigger.ssh_counters.set([load])
        TriggerAction.objects.update_or_create(trigger=trigger, position=1, defaults={"action": mail})
        self.stdout.write(f"demo cluster ready: node demo-node-1 at {opts['ssh_host']}:{opts['ssh_port']}, "
                          f"trigger demo-high-load (load1 >= {opts['load_threshold']} for 1 min -> e-mail)")
