"""/metrics' view of collection health per counter and per node, the same
states the console shows (apps.monitoring.health.NodeHealth): a node with
one unreadable counter is "degraded", not "failing", and the counter that
fails is named by its own series.

  pyscaler_nodes_by_health{cluster,health}                              nodes per state
  pyscaler_collection_series_consecutive_failures{cluster,node,counter,kind,jvm}
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from apps.monitoring import sources

STATES = ("ok", "degraded", "failing", "unknown", "paused")


def health_metrics(counter_labels: list[str]) -> Iterator[Metric]:
    from apps.control.choices import NodeState
    from apps.control.models import Node
    from apps.monitoring.models import CollectionHealth
    from apps.web.status import node_health

    nodes = list(Node.objects.exclude(state=NodeState.TERMINATED).select_related("cluster"))
    by_cluster = defaultdict(list)
    for node in nodes:
        by_cluster[node.cluster_id].append(node)
    counters = [(kind, c) for kind in sources.all() for c in kind.counters()]
    shown = node_health(nodes, counters)

    states = GaugeMetricFamily("pyscaler_nodes_by_health",
                               "Nodes by collection health (degraded: some counters fail, others collect).",
                               labels=["cluster", "health"])
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATES, 0))
    for node in nodes:
        counts[node.cluster.name][shown[node.pk].state] += 1
    for cluster, by_state in sorted(counts.items()):
        for state, n in by_state.items():
            states.add_metric([cluster, state], n)
    yield states

    failures = GaugeMetricFamily("pyscaler_collection_series_consecutive_failures",
                                 "Failed reads in a row of one counter on one node (0: its last read worked).",
                                 labels=counter_labels)
    rows = CollectionHealth.objects.filter(counter_id__gt=0).values_list(
        "kind", "node_id", "jvm_id", "counter_id", "consecutive_failures")
    known = {(kind, node, jvm or None, counter): n for kind, node, jvm, counter, n in rows}
    for kind, counter in counters:
        for node in by_cluster.get(kind.cluster_id(counter), ()):
            ref = kind.series(counter, node.pk)
            n = known.get((ref.kind, ref.node_id, ref.jvm_id, ref.counter_id))
            if n is not None:
                failures.add_metric([node.cluster.name, node.name, counter.name, kind.name,
                                     kind.endpoint_name(counter) or ""], n)
    yield failures
