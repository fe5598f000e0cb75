"""One collection round for a batch of nodes: what the `collect` task runs,
and the dispatcher's tick that sends those tasks.

Nodes of a batch are collected in parallel threads (SSH and JMX waits are
network-bound and every wait is bounded by its own timeout), then all samples
go to memcached in one batched write, every sample and error to the sample
log, and the outcome to per-node health. Nothing here raises because one node,
one endpoint or memcached failed: that is recorded and the rest goes on.
"""
from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from apps.monitoring import sinks, sources
from apps.monitoring.samples import CollectionError, Sample

from . import affinity
from .consumers import Consumer
from .message import NodeJob, make_messages, restore
from .worklist import NodeWork, batches, claim_due_intervals, due_work, enabled_intervals

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


def _collect_job(job: NodeJob, at: datetime) -> list:
    results: list = []
    for kind, counters in job.counters.items():
        if not counters:
            continue
        try:
            results.extend(sources.get(kind).collect(job.node, counters, at))
        except Exception as exc:  # noqa: BLE001 - a bug must not cost the other nodes their samples
            log.exception("%s collection of node %s failed unexpectedly", kind, job.node)
            results.append(CollectionError(node_id=job.node.id, message=f"internal error: {exc}", kind=kind))
    return results


def collect_batch(work: list[NodeWork], at: datetime) -> BatchReport:
    """Collect nodes given by id (reads their rows first: a dispatcher sends
    collect_message a ready message instead)."""
    return collect_message(make_messages([work])[0], at)


def collect_message(message: dict, at: datetime) -> BatchReport:
    """Collect one batch as the dispatcher sent it (collection.message)."""
    jobs = restore(message)
    if len(jobs) == 1:
        outcomes = [_collect_job(jobs[0], at)]
    else:
        outcomes = list(_executor().map(lambda job: _collect_job(job, at), jobs))
    return record([r for outcome in outcomes for r in outcome])


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
    sinks.deliver(samples)
    try:
        health.record_results(results)
    except Exception:  # noqa: BLE001 - health is best effort; samples are already stored
        log.exception("cannot record collection health")
    return BatchReport(samples=len(samples), errors=len(errors), stored=stored)


def dispatch_round(now: datetime, enqueue, consumers: list[Consumer] | Callable | None = None) -> int:
    """Claim the due stamps and enqueue one collect task per batch of nodes,
    each carrying its message. ``enqueue(message, at_iso, expires_s)`` sends a
    task (a test passes its own to run batches inline) to the shared queue;
    with live ``consumers`` (collection.consumers) each node's batch goes to
    its own worker's queue instead: ``enqueue(message, at_iso, expires_s,
    queue)``. ``consumers`` may be a function returning them, then called
    only when something is due. Returns how many batches were sent."""
    due = claim_due_intervals(now, enabled_intervals(), _store())
    work = due_work(due)
    # A batch still queued after its shortest interval would only produce
    # a stale stamp: let the broker drop it instead.
    expires = min(due) if due else None
    sent = 0
    if callable(consumers):
        consumers = consumers() if work else None
    routed = _routed(work, consumers)
    for (queue, _), message in zip(routed, make_messages([batch for _, batch in routed])):
        if message["nodes"]:
            enqueue(message, now.isoformat(), expires, *([queue] if queue else []))
            sent += 1
    _log_tick(now, sent, len(work))
    return sent


def _routed(work: list[NodeWork], consumers: list[Consumer] | None) -> list[tuple[str | None, list[NodeWork]]]:
    """(queue, batch) pairs: small batches on the shared queue without
    consumers; with them, each worker's nodes in one batch per process."""
    if not consumers:
        return [(None, batch) for batch in batches(work, settings.COLLECT_BATCH_SIZE)]
    if not work:
        return []
    per_process = int(settings.COLLECT_MAX_NODES_PER_PROCESS)
    by_id = {item.node_id: item for item in work}
    result = affinity.assign(by_id, {c.name: c.processes * per_process for c in consumers})
    _report_unassigned(result.unassigned, len(work))
    routed = []
    for consumer in consumers:
        items = [by_id[node_id] for node_id in result.nodes[consumer.name]]
        if items:
            size = -(-len(items) // consumer.processes)
            routed.extend((consumer.queue, batch) for batch in batches(items, size))
    return routed


#: The dispatcher's count of nodes no worker had room for (/metrics reads it).
UNASSIGNED_KEY = "pyscaler:collection:unassigned"


def _report_unassigned(unassigned: list[int], total: int) -> None:
    if unassigned:
        log.error("collection: %d of %d due node(s) unassigned: every live collect worker has its "
                  "COLLECT_MAX_NODES_PER_PROCESS (%d) per process; start more worker processes",
                  len(unassigned), total, settings.COLLECT_MAX_NODES_PER_PROCESS)
    try:
        _store().set_many({UNASSIGNED_KEY: len(unassigned)}, expire=UNASSIGNED_TTL_S)
    except Exception:  # noqa: BLE001 - the gauge is best effort; the log line above stays
        log.debug("cannot record the unassigned node count", exc_info=True)


#: The count is rewritten at every dispatch: a stale one expires.
UNASSIGNED_TTL_S = 3600


def unassigned_nodes(store) -> int:
    """The last dispatch's count of nodes left uncollected for want of
    worker capacity (0 when unknown)."""
    try:
        text = store.get_many([UNASSIGNED_KEY]).get(UNASSIGNED_KEY, "0")
    except Exception:  # noqa: BLE001 - /metrics reports the store's state elsewhere
        return 0
    return int(text) if text.isdigit() else 0


#: A send after this long without one (or the first of a process) is logged at
#: INFO; the sends of a busy dispatcher, every interval, are DEBUG.
IDLE_BEFORE_INFO_S = 600.0
_last_sent: list[datetime] = []


def _log_tick(now: datetime, sent: int, nodes: int) -> None:
    if not sent:
        log.debug("collection: nothing due at %s", now.isoformat())
        return
    before = _last_sent[-1] if _last_sent else None
    idle_s = None if before is None else (now - before).total_seconds()
    if idle_s is None or idle_s >= IDLE_BEFORE_INFO_S:
        after = "first dispatch of this process" if idle_s is None else f"after {idle_s:.0f} s without work"
        log.info("collection: dispatching %d batch(es) for %d node(s) (%s)", sent, nodes, after)
    else:
        log.debug("collection: dispatching %d batch(es) for %d node(s)", sent, nodes)
    _last_sent[:] = [now]
