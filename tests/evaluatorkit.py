"""Shared set-up of the evaluator tests: configuration rows, samples written
to the real memcached under the real keys, and a clock on the stamp grid."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from apps.control.breach import DEFAULT_GRACE_S
from apps.control.evaluator import Evaluator
from apps.control.models import Cluster, Execution, Node, Trigger
from apps.monitoring.jmx.models import JVM, JMXCounter
from apps.monitoring.samples import Sample, SeriesRef
from apps.monitoring.ssh.models import SSHCounter

# On every interval's grid (a whole hour).
T0 = datetime(2030, 1, 7, 12, 0, 0, tzinfo=timezone.utc)


def make_cluster(name: str = "web", nodes: int = 2) -> tuple[Cluster, list[Node]]:
    cluster = Cluster.objects.create(name=name, max_size=20)
    made = [Node.objects.create(cluster=cluster, name=f"{name}-{i}", address=f"127.0.0.{i}")
            for i in range(1, nodes + 1)]
    return cluster, made


def ssh_counter(cluster: Cluster, name: str = "load1", *, threshold: float = 1.0, comparison: str = ">=",
                interval_s: int = 60) -> SSHCounter:
    return SSHCounter.objects.create(cluster=cluster, name=name, command="cut -d' ' -f1 /proc/loadavg",
                                     threshold=threshold, comparison=comparison, interval_s=interval_s)


def jmx_counter(cluster: Cluster, name: str = "heap", *, threshold: float = 1.0, interval_s: int = 60) -> JMXCounter:
    jvm, _ = JVM.objects.get_or_create(cluster=cluster, name="app", defaults={"jmx_port": 9010})
    return JMXCounter.objects.create(jvm=jvm, name=name, mbean="java.lang:type=Memory",
                                     attribute="HeapMemoryUsage", composite_key="used",
                                     threshold=threshold, interval_s=interval_s)


def make_trigger(cluster: Cluster, counters, name: str = "scale-out", **fields) -> Trigger:
    fields.setdefault("timing_minutes", 0)
    fields.setdefault("cooldown_s", 300)
    trigger = Trigger.objects.create(cluster=cluster, name=name, **fields)
    for counter in counters:
        (trigger.jmx_counters if isinstance(counter, JMXCounter) else trigger.ssh_counters).add(counter)
    return trigger


def series(node: Node, counter) -> SeriesRef:
    if isinstance(counter, JMXCounter):
        return SeriesRef("jmx", node.pk, counter.pk, counter.jvm_id)
    return SeriesRef("ssh", node.pk, counter.pk)


def stamp(k: int, interval_s: int = 60) -> datetime:
    return T0 + timedelta(seconds=k * interval_s)


def at(k: int, seconds: float = DEFAULT_GRACE_S + 1, interval_s: int = 60) -> datetime:
    """A moment ``seconds`` into stamp ``k``'s interval; by default just after
    the previous stamp settled (so a sample absent there counts as missing)."""
    return stamp(k, interval_s) + timedelta(seconds=seconds)


def put(store, node: Node, counter, k: int, value: float) -> None:
    """A sample of stamp ``k``, written the way collection writes it."""
    store.put_many([Sample(series(node, counter), stamp(k, counter.interval_s), float(value))])


def firings(trigger: Trigger) -> list[Execution]:
    return list(Execution.objects.filter(trigger=trigger).order_by("pk"))


def evaluator(store) -> Evaluator:
    """An evaluator wired to the real fire_trigger (the default)."""
    return Evaluator(store=store)
