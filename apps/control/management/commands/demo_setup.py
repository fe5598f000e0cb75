"""Load the demo configuration `make run` shows: one cluster whose node is this
machine through the demo sshd, with a load counter, a JVM heap counter, and a
trigger that e-mails when the load crosses a threshold. Idempotent: running
it again updates the same rows."""
from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.actions import demo
from apps.control.models import (
    Cluster, Node, PolicyAction, PolicyCounter, ScalingPolicy, Trigger, TriggerAction)
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
        parser.add_argument("--ec2-ami", default="", help="with --ec2-subnet: the demo autoscales on EC2 "
                                                         "(make run's local emulator)")
        parser.add_argument("--ec2-subnet", default="")
        parser.add_argument("--load-target", type=float, default=1.0,
                            help="the demo policy's target for the average load")

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
        if opts["ec2_ami"] and opts["ec2_subnet"]:
            autoscale(cluster, load, opts)
            self.stdout.write(f"demo policy demo-size: average load1 at {opts['load_target']}, 1 to 3 "
                              "nodes (scale out: DeployEc2Node -> LocalScript -> e-mail; scale in: "
                              "RemoveEc2Node -> e-mail)")


def autoscale(cluster: Cluster, load: SSHCounter, opts: dict) -> ScalingPolicy:
    """The demo's EC2 settings and its target-tracking policy on the node load
    (idempotent). Quick on purpose: short warm-up, windows and cooldowns."""
    cluster.ec2_ami, cluster.ec2_subnet_id = opts["ec2_ami"], opts["ec2_subnet"]
    cluster.ec2_instance_type = "t3.micro"
    cluster.min_size, cluster.max_size, cluster.max_step_size = 1, 3, 1
    cluster.save()
    policy, _ = ScalingPolicy.objects.update_or_create(
        cluster=cluster, name="demo-size",
        defaults={"kind": "target", "enabled": True, "tolerance_pct": 10, "warmup_s": 30, "max_step": 1,
                  "scale_out_window_s": 0, "scale_in_window_s": 30, "scale_out_cooldown_s": 0,
                  "scale_in_cooldown_s": 30,
                  "description": "Keeps the average load1 of the demo nodes at its target (make load)."})
    PolicyCounter.objects.update_or_create(
        policy=policy, role="metric", source=PolicyCounter.kind_of(load), counter_id=load.pk,
        defaults={"target": opts["load_target"]})
    scale_out, scale_in = demo.scaling_chains(cluster, opts["mail_to"])
    PolicyAction.objects.filter(policy=policy).delete()
    for direction, chain in (("out", scale_out), ("in", scale_in)):
        for position, action in enumerate(chain, start=1):
            PolicyAction.objects.create(policy=policy, direction=direction, position=position, action=action)
    return policy
