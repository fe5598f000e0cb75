"""What the overview, the cluster page and the status API show: each
cluster's size against its bounds, its nodes' collection health, the newest
sample of every counter on every node, and its triggers' breach progress.

Reads the database (a handful of queries per cluster) and memcached (one
``get_many`` for all latest samples, one per trigger for its breach state).
memcached being down is shown as such, never as zeros.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from apps.control.choices import NodeState
from apps.control.models import Cluster, Node, Trigger
from apps.control.trigger_status import TriggerStatus, trigger_status
from apps.monitoring import series as series_svc
from apps.monitoring.choices import breaches
from apps.monitoring.counters import config_error
from apps.monitoring.health import NodeHealth
from apps.web.summary import NodeTally, Tallied, node_tally


@dataclass
class LatestValue:
    value: float | None
    stamp: datetime | None
    breaching: bool = False
    stale: bool = False  # older than STALE_AFTER_INTERVALS intervals: rounds were missed


@dataclass
class CounterRow:
    kind: series_svc.CounterKind
    counter: Any
    latest: dict[int, LatestValue]  # node id -> newest sample
    error: str = ""  # a stored number out of range: the counter is shown, not read

    @property
    def key(self) -> str:
        return f"{self.kind.name}-{self.counter.pk}"


@dataclass
class TriggerRow:
    trigger: Trigger
    status: TriggerStatus | None
    error: str = ""

    @property
    def state(self) -> str:
        t, s = self.trigger, self.status
        if not t.enabled:
            return "disabled"
        if s is not None and s.never_fires:
            return "can never fire"
        if s is None or s.store_error:
            return "no data"
        if s.cooldown_left_s > 0:
            return "cooling down"
        if s.progress:
            return "breaching"
        if all(x.no_data for x in s.series) and s.series:
            return "no data"
        return "ok"


@dataclass
class ClusterStatus(Tallied):
    """A cluster with some of its nodes in full (``nodes``: all of them, or a
    page); the counts in the header (``tally``) are always cluster-wide."""

    cluster: Cluster
    nodes: list[Node]
    health: dict[int, NodeHealth]
    counters: list[CounterRow]
    triggers: list[TriggerRow]
    store_error: str = ""
    at: datetime = field(default_factory=timezone.now)
    tally: NodeTally = field(default_factory=NodeTally)


def node_health(nodes: list[Node], counters: list[tuple[series_svc.CounterKind, Any]] = ()
                ) -> dict[int, NodeHealth]:
    """Collection health (apps.monitoring.health) summed up per node from its
    endpoints (SSH, each JVM) and series; ``counters`` name the failing ones."""
    from apps.monitoring.health import get_health

    report = get_health([n.pk for n in nodes])
    names = {kind.series(c, n.pk): c.name for kind, c in counters for n in nodes}
    return {node.pk: NodeHealth.of(report[node.pk], paused=not node.collection_enabled
                                   or node.state != NodeState.RUNNING, names=names) for node in nodes}


def _latest(counters: list[tuple[series_svc.CounterKind, Any]], nodes: list[Node], store, now: datetime
            ) -> tuple[list[CounterRow], str]:
    errors = {(kind.name, c.pk): config_error(c) for kind, c in counters}
    pairs = [(kind.series(c, n.pk), c.interval_s) for kind, c in counters for n in nodes
             if not errors[(kind.name, c.pk)]]
    error = ""
    try:
        latest = series_svc.latest_samples(pairs, now=now, store=store)
    except series_svc.store_errors() as exc:
        latest, error = {}, f"sample store unavailable: {exc}"
    rows = []
    for kind, counter in counters:
        cells = {}
        for node in nodes:
            hit = latest.get(kind.series(counter, node.pk))
            if hit is None:
                cells[node.pk] = LatestValue(None, None)
            else:
                stamp, value = hit
                stale = (now - stamp).total_seconds() > series_svc.STALE_AFTER_INTERVALS * counter.interval_s
                cells[node.pk] = LatestValue(value, stamp, breaches(value, counter.comparison, counter.threshold),
                                             stale)
        rows.append(CounterRow(kind, counter, cells, errors[(kind.name, counter.pk)]))
    return rows, error


def trigger_row(trigger: Trigger, *, store=None, now: datetime | None = None) -> TriggerRow:
    try:
        return TriggerRow(trigger, trigger_status(trigger, store=store or series_svc.default_store(), now=now))
    except series_svc.store_errors() as exc:  # trigger_status reports these itself; be safe
        return TriggerRow(trigger, None, str(exc))


def trigger_rows(cluster: Cluster, store, now: datetime) -> list[TriggerRow]:
    return [trigger_row(t, store=store, now=now) for t in cluster.triggers.select_related("cluster").order_by("name")]


def cluster_status(cluster: Cluster, *, store=None, now: datetime | None = None,
                   nodes: list[Node] | None = None) -> ClusterStatus:
    """``nodes``: the nodes shown in full (default: every node not terminated)."""
    now = now or timezone.now()
    store = store or series_svc.default_store()
    if nodes is None:
        nodes = list(cluster.nodes.exclude(state=NodeState.TERMINATED).order_by("name"))
    counters = series_svc.counters_of_cluster(cluster.pk)
    rows, error = _latest(counters, nodes, store, now)
    return ClusterStatus(cluster, nodes, node_health(nodes, counters), rows, trigger_rows(cluster, store, now),
                         error, now, node_tally(cluster))
