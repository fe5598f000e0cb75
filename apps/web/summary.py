"""Cluster figures whose size does not grow with the cluster: how many nodes
are up, degraded and failing, and per counter the spread of the nodes'
newest values (min, median, p95, max), how many breach, and the worst few.

The overview shows these instead of a column per node (issue 11: at 1,000
nodes that table was 865 KiB and took a second). Node states are counted in
one grouped query over the health records, with the rules of
``NodeHealth.of`` (apps.monitoring.health), so the counts agree with the
per-node badges of the cluster page; newest values come from one batched
read (``series.newest_values``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Case, IntegerField, Max, Q, Value, When
from django.utils import timezone

from apps.control.choices import NodeState
from apps.control.models import Cluster, Node
from apps.monitoring import series as series_svc
from apps.monitoring.choices import breaches
from apps.monitoring.counters import config_error

#: Worst breaching nodes named per counter.
TOP_BREACHING = 3


@dataclass
class NodeTally:
    """Cluster-wide node counts (whatever page of nodes is shown)."""

    total: int = 0  # not terminated
    size: int = 0  # running
    up: int = 0  # ok or degraded
    degraded: int = 0
    failing: int = 0


class Tallied:
    """What the overview and cluster page header show, from ``self.tally``."""

    tally: NodeTally
    cluster: Cluster

    @property
    def size(self) -> int:
        return self.tally.size

    @property
    def nodes_up(self) -> int:
        """Nodes collecting now: a degraded node (some counters failing) is up."""
        return self.tally.up

    @property
    def nodes_degraded(self) -> int:
        return self.tally.degraded

    @property
    def nodes_failing(self) -> int:
        return self.tally.failing

    @property
    def node_count(self) -> int:
        return self.tally.total

    @property
    def size_state(self) -> str:
        c = self.cluster
        if self.size < c.min_size:
            return "below min"
        if self.size > c.max_size:
            return "above max"
        return "within bounds"


def _flag(condition: Q) -> Max:
    return Max(Case(When(condition, then=Value(1)), default=Value(0), output_field=IntegerField()))


def health_state(paused: bool, failing: bool, collecting: bool, seen: bool) -> str:
    """NodeHealth.of's state from the three facts it looks at."""
    if paused:
        return "paused"
    if failing:
        return "degraded" if collecting else "failing"
    return "ok" if seen else "unknown"


def node_tally(cluster: Cluster) -> NodeTally:
    """Two queries whatever the number of nodes."""
    from apps.monitoring.models import CollectionHealth

    nodes = list(Node.objects.filter(cluster=cluster).exclude(state=NodeState.TERMINATED)
                 .values_list("pk", "state", "collection_enabled"))
    flags = {row["node_id"]: row for row in CollectionHealth.objects.filter(node__cluster=cluster)
             .values("node_id").annotate(
                 failing=_flag(Q(consecutive_failures__gt=0)),
                 collecting=_flag(Q(counter_id__gt=0, consecutive_failures=0, last_success_at__isnull=False)),
                 seen=_flag(Q(last_success_at__isnull=False)))}
    tally = NodeTally(total=len(nodes))
    for pk, state, enabled in nodes:
        tally.size += state == NodeState.RUNNING
        f = flags.get(pk, {})
        shown = health_state(not enabled or state != NodeState.RUNNING, bool(f.get("failing")),
                             bool(f.get("collecting")), bool(f.get("seen")))
        tally.up += shown in ("ok", "degraded")
        tally.degraded += shown == "degraded"
        tally.failing += shown == "failing"
    return tally


@dataclass
class CounterSummary:
    kind: series_svc.CounterKind
    counter: Any
    error: str = ""  # a stored number out of range: the counter is shown, not read
    nodes: int = 0  # nodes with a newest sample
    min: float | None = None
    median: float | None = None
    p95: float | None = None
    max: float | None = None
    breaching: int = 0
    top: list[tuple[int, str, float]] = field(default_factory=list)  # (node id, name, value), worst first

    @property
    def key(self) -> str:
        return f"{self.kind.name}-{self.counter.pk}"


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest rank: a value some node really has, never an interpolation."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarise(kind, counter, values: dict[int, tuple[datetime, float]], names: dict[int, str],
              error: str = "") -> CounterSummary:
    summary = CounterSummary(kind, counter, error)
    if error or not values:
        return summary
    ordered = sorted(v for _, v in values.values())
    summary.nodes = len(ordered)
    summary.min, summary.max = ordered[0], ordered[-1]
    summary.median, summary.p95 = percentile(ordered, 0.5), percentile(ordered, 0.95)
    hits = [(node, v) for node, (_, v) in values.items() if breaches(v, counter.comparison, counter.threshold)]
    summary.breaching = len(hits)
    high_is_bad = counter.comparison.startswith(">")
    hits.sort(key=lambda hit: (-hit[1] if high_is_bad else hit[1], names.get(hit[0], "")))
    summary.top = [(node, names.get(node, str(node)), v) for node, v in hits[:TOP_BREACHING]]
    return summary


def counter_summaries(counters, names: dict[int, str], store, now: datetime
                      ) -> tuple[list[CounterSummary], str]:
    """Each counter summarised over the nodes in ``names``; a store that
    cannot be read is named, never shown as zeros."""
    errors = {(kind.name, c.pk): config_error(c) for kind, c in counters}
    readable = [(kind, c) for kind, c in counters if not errors[(kind.name, c.pk)]]
    try:
        newest = series_svc.newest_values(readable, list(names), now=now, store=store) if readable else {}
        problem = ""
    except series_svc.store_errors() as exc:
        newest, problem = {}, f"sample store unavailable: {exc}"
    return [summarise(kind, c, newest.get((kind.name, c.pk), {}), names, errors[(kind.name, c.pk)])
            for kind, c in counters], problem


@dataclass
class ClusterSummary(Tallied):
    cluster: Cluster
    tally: NodeTally
    counters: list[CounterSummary]
    triggers: list
    store_error: str = ""
    at: datetime = field(default_factory=timezone.now)


def node_names(cluster: Cluster) -> dict[int, str]:
    return dict(Node.objects.filter(cluster=cluster).exclude(state=NodeState.TERMINATED)
                .order_by("name").values_list("pk", "name"))


def cluster_summary(cluster: Cluster, *, store=None, now: datetime | None = None) -> ClusterSummary:
    from apps.web.status import trigger_rows

    now = now or timezone.now()
    store = store or series_svc.default_store()
    counters = series_svc.counters_of_cluster(cluster.pk)
    summaries, problem = counter_summaries(counters, node_names(cluster), store, now)
    return ClusterSummary(cluster, node_tally(cluster), summaries, trigger_rows(cluster, store, now), problem, now)


def overview(*, store=None, now: datetime | None = None) -> list[ClusterSummary]:
    now = now or timezone.now()
    store = store or series_svc.default_store()
    return [cluster_summary(c, store=store, now=now) for c in Cluster.objects.order_by("name")]
