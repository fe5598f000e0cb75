"""A fleet-sized cluster for the console and API tests and bench/console.py:
N nodes x C SSH counters in the database (bulk_create) and one newest sample
per series in the real memcached, a few nodes failing, a few breaching.

Values are chosen so every figure is known: node i (1-based) of counter c
holds ``i + c / 100`` (so min, median, p95 and max follow from N), and
counter c's threshold is ``>= N - BREACHING + 1 + c / 100``: the last
``BREACHING`` nodes breach every counter.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from apps.control.models import Cluster, Node, Trigger
from apps.monitoring.samples import CollectionError, Sample, SeriesRef, floor_stamp
from apps.monitoring.ssh.models import SSHCounter

INTERVAL = 30
BREACHING = 7
FAILING = 3


@dataclass
class Fleet:
    cluster: Cluster
    nodes: list[Node]
    counters: list[SSHCounter]
    trigger: Trigger
    stamp: datetime


def make_fleet(name: str = "fleet", nodes: int = 1000, counters: int = 10) -> Fleet:
    cluster = Cluster.objects.create(name=name, min_size=1, max_size=nodes + 10,
                                     description=f"{nodes} simulated nodes")
    Node.objects.bulk_create(
        Node(cluster=cluster, name=f"{name}-{i:04d}", address=f"127.1.{i // 250}.{i % 250 + 1}")
        for i in range(1, nodes + 1))
    rows = list(Node.objects.filter(cluster=cluster).order_by("name"))
    SSHCounter.objects.bulk_create(
        SSHCounter(cluster=cluster, name=f"c{c:02d}", command="cat /proc/loadavg", interval_s=INTERVAL,
                   threshold=nodes - BREACHING + 1 + c / 100, comparison=">=", unit="load")
        for c in range(counters))
    made = list(SSHCounter.objects.filter(cluster=cluster).order_by("name"))
    trigger = Trigger.objects.create(cluster=cluster, name=f"{name}-hot", timing_minutes=5, cooldown_s=600,
                                     dry_run=True)
    trigger.ssh_counters.set(made[:2])
    return Fleet(cluster, rows, made, trigger, floor_stamp(timezone.now(), INTERVAL) - timedelta(seconds=INTERVAL))


def fill_samples(fleet: Fleet) -> None:
    """The newest round of every series, through collection.record (the
    sample store and the health records, as a collect worker writes them);
    the first ``FAILING`` nodes have no samples and an SSH error."""
    from apps.monitoring import collection

    results: list = []
    for i, node in enumerate(fleet.nodes, start=1):
        if i <= FAILING:
            results.append(CollectionError(node_id=node.pk, message="ssh: connection refused", at=fleet.stamp))
            continue
        for c, counter in enumerate(fleet.counters):
            results.append(Sample(SeriesRef("ssh", node.pk, counter.pk), fleet.stamp, value_of(i, c)))
    collection.record(results)


def value_of(index: int, counter_index: int) -> float:
    return index + counter_index / 100


def fill_history(fleet: Fleet, rounds: int = 30) -> None:
    """``rounds`` past rounds of every series straight into the sample store
    (graphs need a history): a wave shared by all nodes, spread by node, the
    last nodes highest; the first ``FAILING`` nodes have none."""
    import math

    from apps.monitoring.store import SampleStore

    samples = []
    for k in range(rounds):
        stamp = fleet.stamp - timedelta(seconds=k * INTERVAL)
        wave = 10 * math.sin(k / 3)
        for i, node in enumerate(fleet.nodes[FAILING:], start=FAILING + 1):
            for c, counter in enumerate(fleet.counters):
                samples.append(Sample(SeriesRef("ssh", node.pk, counter.pk), stamp,
                                      round(value_of(i, c) + wave * (i % 7) / 7, 2)))
    SampleStore.from_settings().put_many(samples)
