"""Which collection work is due, and how it is cut into tasks.

Beat runs one small dispatcher every COLLECT_TICK_S; it reads the
configuration from the database on every tick, so a counter, node or cluster
added, changed or disabled in admin takes effect at the next tick without
restarting beat. A counter is due once per stamp of its interval: the
dispatcher claims "interval I, stamp S" with an atomic memcached ``add`` so
that two beats (or a late tick) never dispatch a stamp twice; if memcached is
down it falls back to a per-process memory, and a duplicate dispatch is
harmless anyway (same stamp, same key).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from apps.monitoring.samples import floor_stamp, format_stamp

# Fallback claims when memcached is unreachable: (interval, stamp) pairs.
_LOCAL_CLAIMS: dict[int, datetime] = {}


@dataclass
class NodeWork:
    """One node's due counters in one round."""

    node_id: int
    ssh_counter_ids: list[int] = field(default_factory=list)
    jmx_counter_ids: list[int] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.ssh_counter_ids or self.jmx_counter_ids)


def claim_due_intervals(now: datetime, intervals: set[int], store) -> set[int]:
    """The intervals whose current stamp no dispatcher has claimed yet."""
    due = set()
    for interval in sorted(intervals):
        stamp = floor_stamp(now, interval)
        key = f"pyscaler:dispatch:{interval}:{format_stamp(stamp)}"
        claimed = None
        if store is not None:
            try:
                claimed = store.add(key, "1", expire=max(2 * interval, 10))
            except Exception:  # noqa: BLE001 - memcached down: fall back below
                claimed = None
        if claimed is None:
            claimed = _LOCAL_CLAIMS.get(interval) != stamp
            _LOCAL_CLAIMS[interval] = stamp
        if claimed:
            due.add(interval)
    return due


def plan_work(due_intervals: set[int]) -> list[NodeWork]:
    """Every collection-enabled running node with its due, enabled counters."""
    from apps.control.choices import NodeState
    from apps.control.models import Node
    from apps.monitoring.jmx.models import JMXCounter
    from apps.monitoring.ssh.models import SSHCounter

    if not due_intervals:
        return []
    ssh_by_cluster: dict[int, list[int]] = defaultdict(list)
    for cid, cluster_id in SSHCounter.objects.filter(
        enabled=True, interval_s__in=due_intervals
    ).values_list("id", "cluster_id"):
        ssh_by_cluster[cluster_id].append(cid)
    jmx_by_cluster: dict[int, list[int]] = defaultdict(list)
    for cid, cluster_id in JMXCounter.objects.filter(
        enabled=True, interval_s__in=due_intervals
    ).values_list("id", "jvm__cluster_id"):
        jmx_by_cluster[cluster_id].append(cid)
    clusters = set(ssh_by_cluster) | set(jmx_by_cluster)
    work = []
    for node_id, cluster_id in Node.objects.filter(
        cluster_id__in=clusters, collection_enabled=True, state=NodeState.RUNNING
    ).values_list("id", "cluster_id").order_by("id"):
        item = NodeWork(node_id, list(ssh_by_cluster[cluster_id]), list(jmx_by_cluster[cluster_id]))
        if not item.empty:
            work.append(item)
    return work


def enabled_intervals() -> set[int]:
    from apps.monitoring.jmx.models import JMXCounter
    from apps.monitoring.ssh.models import SSHCounter

    return set(SSHCounter.objects.filter(enabled=True).values_list("interval_s", flat=True)) | set(
        JMXCounter.objects.filter(enabled=True).values_list("interval_s", flat=True)
    )


def batches(work: list[NodeWork], size: int) -> list[list[NodeWork]]:
    """Small batches of nodes: one task each, so more worker hosts means more
    collection capacity, and one slow node delays only its batch."""
    return [work[i:i + size] for i in range(0, len(work), size)]
