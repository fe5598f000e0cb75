"""One collection round for a batch of nodes: what the `collect` task runs.

Nodes of a batch are collected in parallel threads (SSH and JMX waits are
network-bound and every wait is bounded by its own timeout), then all samples
go to memcached in one batched write, every sample and error to the sample
log, and the outcome to per-node health. Nothing here raises because one node,
one JVM or memcached failed: that is recorded and the rest goes on.
"""
from __future__ import annotations

import functools
import logging
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from apps.monitoring.samples import CollectionError, Sample
from apps.monitoring.scheduling import NodeWork

log = logging.getLogger(__name__)

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    """A long-lived pool per process (created after the worker forks), so
    threads — and the JVM attachments jpype makes for them — are reused."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=settings.COLLECT_THREADS, thread_name_prefix="collect")
        return _pool


@functools.cache
def _store():
    from apps.monitoring.store import SampleStore

    return SampleStore.from_settings()


@functools.cache
def _sample_log():
    from apps.monitoring.samplelog import SampleLog

    return SampleLog.from_settings()


@dataclass
class BatchReport:
    samples: int
    errors: int
    stored: int

    def as_dict(self) -> dict:
        return {"samples": self.samples, "errors": self.errors, "stored": self.stored}


def _collect_node(node, ssh_counters, jmx_by_jvm, at: datetime) -> list:
    from apps.monitoring.jmx.collector import collect_jvm
    from apps.monitoring.ssh.collector import collect_node

    results: list = []
    try:
        if ssh_counters:
            results.extend(collect_node(node, ssh_counters, at))
        for jvm, counters in jmx_by_jvm.items():
            results.extend(collect_jvm(node, jvm, counters, at))
    except Exception as exc:  # noqa: BLE001 - a bug must not cost the other nodes their samples
        log.exception("collection of node %s failed unexpectedly", node)
        results.append(CollectionError(node_id=node.id, message=f"internal error: {exc}"))
    return results


def collect_batch(work: list[NodeWork], at: datetime) -> BatchReport:
    from apps.control.models import Node
    from apps.monitoring.jmx.models import JMXCounter
    from apps.monitoring.ssh.models import SSHCounter

    nodes = Node.objects.select_related("cluster").in_bulk([w.node_id for w in work])
    ssh = SSHCounter.objects.in_bulk({cid for w in work for cid in w.ssh_counter_ids})
    jmx = JMXCounter.objects.select_related("jvm").in_bulk({cid for w in work for cid in w.jmx_counter_ids})

    jobs = []
    for item in work:
        node = nodes.get(item.node_id)
        if node is None:
            continue  # deleted since the dispatch
        ssh_counters = [ssh[c] for c in item.ssh_counter_ids if c in ssh]
        jmx_by_jvm: dict = defaultdict(list)
        for cid in item.jmx_counter_ids:
            if cid in jmx:
                jmx_by_jvm[jmx[cid].jvm].append(jmx[cid])
        jobs.append((node, ssh_counters, dict(jmx_by_jvm)))

    if len(jobs) == 1:
        outcomes = [_collect_node(*jobs[0], at)]
    else:
        outcomes = list(_executor().map(lambda job: _collect_node(*job, at), jobs))
    results = [r for outcome in outcomes for r in outcome]
    return record(results)


def record(results: list) -> BatchReport:
    """Store, log and account for one round's results."""
    from apps.monitoring import health

    samples = [r for r in results if isinstance(r, Sample)]
    errors = [r for r in results if isinstance(r, CollectionError)]
    stored = _store().put_many(samples)
    try:
        _sample_log().write(results)
    except OSError:
        log.exception("cannot append to the sample log")
    try:
        health.record_results(results)
    except Exception:  # noqa: BLE001 - health is best effort; samples are already stored
        log.exception("cannot record collection health")
    return BatchReport(samples=len(samples), errors=len(errors), stored=stored)


def dispatch_round(now: datetime, enqueue) -> int:
    """Claim the due stamps and enqueue one collect task per batch of nodes.
    ``enqueue(work_dicts, at_iso, expires_s)`` sends a task (a test passes its
    own to run batches inline). Returns how many batches were sent."""
    from apps.monitoring.scheduling import batches, claim_due_intervals, enabled_intervals, plan_work

    due = claim_due_intervals(now, enabled_intervals(), _store())
    work = plan_work(due)
    sent = 0
    for batch in batches(work, settings.COLLECT_BATCH_SIZE):
        # A batch still queued after its shortest interval would only produce
        # a stale stamp: let the broker drop it instead.
        expires = min(due) if due else None
        enqueue([vars(w) for w in batch], now.isoformat(), expires)
        sent += 1
    return sent
