"""Node affinity without workers: rendezvous hashing (apps/monitoring/
collection/affinity.py), the heartbeat registry on real memcached
(consumers.py), and the dispatcher routing each node's batch to its worker's
queue, with the per-process cap and its /metrics gauge."""
from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timezone

import pytest

from apps.control.models import Cluster
from apps.monitoring import collection
from apps.monitoring.collection import affinity
from apps.monitoring.collection.consumers import Consumer, Heartbeat, live_consumers, namespace
from apps.monitoring.ssh.models import SSHCounter
from apps.monitoring.store import SampleStore
from apps.web.metrics import render_metrics
from tests.factories import make_node

NODES = range(1, 2001)
WORKERS = [f"collect{i}@host{i % 2}" for i in range(4)]


def _owners(consumers: list[str]) -> dict[int, str]:
    return {node: affinity.owner(node, consumers) for node in NODES}


def test_a_node_has_one_owner_whatever_the_order_of_workers() -> None:
    owners = _owners(WORKERS)
    assert owners == _owners(list(reversed(WORKERS)))
    assert owners == _owners(WORKERS)  # no state between calls
    share = Counter(owners.values())
    assert set(share) == set(WORKERS)
    assert all(abs(count - len(NODES) / 4) < 0.15 * len(NODES) / 4 for count in share.values()), share


def test_a_joining_worker_takes_only_its_share() -> None:
    before = _owners(WORKERS)
    after = _owners([*WORKERS, "collect4@host0"])
    moved = {node for node in NODES if before[node] != after[node]}
    assert all(after[node] == "collect4@host0" for node in moved)
    assert 0.15 < len(moved) / len(NODES) < 0.25  # about 1/5


def test_a_leaving_worker_moves_only_its_own_nodes_spread_over_the_rest() -> None:
    before = _owners(WORKERS)
    gone = WORKERS[1]
    after = _owners([w for w in WORKERS if w != gone])
    moved = {node for node in NODES if before[node] != after[node]}
    assert moved == {node for node in NODES if before[node] == gone}
    assert len(Counter(after[node] for node in moved)) == 3


def test_no_worker_takes_more_than_its_capacity_and_the_rest_is_counted() -> None:
    result = affinity.assign(range(1, 41), {"a": 10, "b": 10, "c": 10})
    assert sorted(len(nodes) for nodes in result.nodes.values()) == [10, 10, 10]
    assert len(result.unassigned) == 10
    assert set(range(1, 41)) == {n for nodes in result.nodes.values() for n in nodes} | set(result.unassigned)
    # With room for all, the cap changes nothing: every node on its first choice.
    roomy = affinity.assign(range(1, 41), {"a": 100, "b": 100, "c": 100})
    assert not roomy.unassigned
    assert all(affinity.owner(n, "abc") == name for name, nodes in roomy.nodes.items() for n in nodes)


def test_the_registry_namespace_is_the_broker_vhost() -> None:
    assert namespace("amqp://u:p@rabbit:5672//") == "/"
    assert namespace("amqp://u:p@broker.example:5672//") == "/"
    assert namespace("amqp://guest@127.0.0.1:5672/pyscaler-test-x") == "pyscaler-test-x"


def test_heartbeats_advertise_withdraw_and_expire(memcached_clean) -> None:
    store = SampleStore(memcached_clean, retention_s=600)
    one = Heartbeat(Consumer("w1@h", 1), "vh", lambda: store, period_s=60, ttl_s=1)
    two = Heartbeat(Consumer("w2@h", 2), "vh", lambda: store, period_s=60, ttl_s=30)
    other = Heartbeat(Consumer("w3@h", 1), "other-vhost", lambda: store, period_s=60, ttl_s=30)
    assert one.beat() and two.beat() and other.beat()
    assert one.slot != two.slot
    assert live_consumers(store, "vh") == [Consumer("w1@h", 1), Consumer("w2@h", 2)]
    assert two.beat() and two.slot is not None  # renewing keeps the slot
    two.withdraw()
    assert live_consumers(store, "vh") == [Consumer("w1@h", 1)]
    deadline = time.monotonic() + 5
    while live_consumers(store, "vh") and time.monotonic() < deadline:
        time.sleep(0.2)  # w1 stopped renewing: its entry lapses after its TTL
    assert live_consumers(store, "vh") == []
    assert live_consumers(store, "other-vhost") == [Consumer("w3@h", 1)]


def test_an_unreachable_registry_reads_as_none() -> None:
    from devservers.util import free_port

    store = SampleStore([f"127.0.0.1:{free_port()}"], retention_s=600, timeout_s=0.2)
    assert live_consumers(store, "/") is None


@pytest.fixture
def dispatch_world(settings, memcached_clean):
    settings.MEMCACHED_SERVERS = memcached_clean
    collection._store.cache_clear()
    cluster = Cluster.objects.create(name="affinity")
    nodes = [make_node(cluster, name=f"n{i:02d}", address=f"127.1.0.{i + 1}") for i in range(30)]
    SSHCounter.objects.create(cluster=cluster, name="answer", command="echo 42", threshold=100, interval_s=5)
    yield nodes
    collection._store.cache_clear()


def _dispatch(now: datetime, consumers) -> list[tuple[str | None, list[int]]]:
    sent: list = []
    collection.dispatch_round(now, lambda message, at, expires, *queue: sent.append(
        (queue[0] if queue else None, [row["id"] for row in message["nodes"]])), consumers)
    return sent


@pytest.mark.django_db
def test_each_node_goes_to_its_workers_queue_every_tick(dispatch_world) -> None:
    consumers = [Consumer("a@h", 1), Consumer("b@h", 2)]
    first = _dispatch(datetime(2026, 1, 1, 0, 0, 0, tzinfo=timezone.utc), consumers)
    second = _dispatch(datetime(2026, 1, 1, 0, 0, 5, tzinfo=timezone.utc), consumers)
    queues = {queue for queue, _ in first}
    assert queues == {"collect.a@h", "collect.b@h"}
    assert len([q for q, _ in first if q == "collect.b@h"]) == 2  # one batch per process
    where = {node: queue for queue, ids in first for node in ids}
    assert len(where) == 30 and sum(len(ids) for _, ids in first) == 30
    assert where == {node: queue for queue, ids in second for node in ids}
    assert all(queue == f"collect.{affinity.owner(node, ['a@h', 'b@h'])}" for node, queue in where.items())
    # Without a registry: small batches on the shared queue, as before.
    shared = _dispatch(datetime(2026, 1, 1, 0, 0, 10, tzinfo=timezone.utc), None)
    assert {queue for queue, _ in shared} == {None} and len(shared) == 3


@pytest.mark.django_db
def test_nodes_beyond_capacity_are_logged_and_shown_in_metrics(dispatch_world, settings, caplog) -> None:
    settings.COLLECT_MAX_NODES_PER_PROCESS = 8
    sent = _dispatch(datetime(2026, 1, 1, 0, 0, 0, tzinfo=timezone.utc), [Consumer("a@h", 1), Consumer("b@h", 2)])
    assert sum(len(ids) for _, ids in sent) == 24
    assert "6 of 30 due node(s) unassigned" in caplog.text
    store = SampleStore(settings.MEMCACHED_SERVERS, retention_s=600)
    assert collection.unassigned_nodes(store) == 6
    text = render_metrics(store=store).decode()
    assert "pyscaler_collection_unassigned_nodes 6.0" in text
    settings.COLLECT_MAX_NODES_PER_PROCESS = 300
    _dispatch(datetime(2026, 1, 1, 0, 0, 5, tzinfo=timezone.utc), [Consumer("a@h", 1)])
    assert collection.unassigned_nodes(store) == 0


@pytest.mark.django_db
def test_the_registry_is_read_only_when_something_is_due(dispatch_world) -> None:
    reads: list[int] = []

    def consumers():
        reads.append(1)
        return [Consumer("a@h", 1)]

    now = datetime(2026, 1, 1, 0, 0, 0, tzinfo=timezone.utc)
    assert _dispatch(now, consumers) and len(reads) == 1
    assert _dispatch(now, consumers) == [] and len(reads) == 1  # the stamp is claimed: nothing due
