"""The dispatcher's work list: which counters are due on which node.

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

import logging
from dataclasses import dataclass, field
from datetime import datetime

from apps.monitoring import sources
from apps.monitoring.counters import config_error, interval_sound, report_once
from apps.monitoring.samples import floor_stamp, format_stamp

# Fallback claims when memcached is unreachable: (interval, stamp) pairs.
_LOCAL_CLAIMS: dict[int, datetime] = {}
# How a message from a dispatcher older than collect messages named a
# source's counter ids in each node's work (``<kind>_counter_ids``).
_LEGACY_SUFFIX = "_counter_ids"

log = logging.getLogger(__name__)


@dataclass
class NodeWork:
    """One node's due counters in one round: counter ids by source kind."""

    node_id: int
    counters: dict[str, list[int]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(self.counters.values())

    @classmethod
    def from_legacy(cls, item: dict) -> NodeWork:
        """The work item of a message queued by a dispatcher from before
        collect messages (node and counter ids only)."""
        counters = {name.removesuffix(_LEGACY_SUFFIX): list(ids) for name, ids in item.items()
                    if name.endswith(_LEGACY_SUFFIX)}
        return cls(item["node_id"], counters)


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


def due_work(due_intervals: set[int]) -> list[NodeWork]:
    """Every collection-enabled running node with its due, enabled counters
    (one query per source, one for the nodes)."""
    from apps.control.choices import NodeState
    from apps.control.models import Node

    if not due_intervals:
        return []
    due = {source.kind: source.due_by_cluster(due_intervals) for source in sources.all()}
    clusters = {cluster_id for by_cluster in due.values() for cluster_id in by_cluster}
    work = []
    for node_id, cluster_id in Node.objects.filter(
        cluster_id__in=clusters, collection_enabled=True, state=NodeState.RUNNING
    ).values_list("id", "cluster_id").order_by("id"):
        item = NodeWork(node_id, {
            kind: list(by_cluster.get(cluster_id, ())) for kind, by_cluster in due.items()})
        if not item.empty:
            work.append(item)
    return work


def enabled_intervals() -> set[int]:
    """The intervals of enabled counters, less those out of range: a counter
    stored with one (admin refuses it; an UPDATE does not) is skipped and
    logged once, and the others are collected as usual."""
    intervals: set[int] = set()
    for source in sources.all():
        found = source.enabled_intervals()
        bad = {interval for interval in found if not interval_sound(interval)}
        if bad:
            for counter in source.model.objects.filter(enabled=True, interval_s__in=bad):
                report_once(log, "the collection dispatcher", counter, config_error(counter))
        intervals |= found - bad
    return intervals


def batches(work: list[NodeWork], size: int) -> list[list[NodeWork]]:
    """Small batches of nodes: one task each, so more worker hosts means more
    collection capacity, and one slow node delays only its batch."""
    return [work[i:i + size] for i in range(0, len(work), size)]
