"""Node affinity end to end: real beat, a control worker running the
dispatcher, two collect workers of one process each (--concurrency 1) and a
fleet of simulated nodes (devservers/fleet.py). Every node is collected over
exactly one SSH connection, held by the one process rendezvous hashing names,
tick after tick; a worker stopped hands its nodes to the other within the
documented bound, and started again takes them back (the other closes the
connections it no longer uses).

Who holds which node's connection is read from /proc: the ESTABLISHED TCP
sockets of each worker process to the fleet's port.
"""
from __future__ import annotations

import os
import socket
import struct
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from apps.control.models import Cluster
from apps.monitoring.collection import affinity
from apps.monitoring.samples import SeriesRef
from apps.monitoring.ssh.models import SSHCounter
from apps.monitoring.store import SampleStore
from tests.factories import make_node

pytestmark = pytest.mark.slow

NODES = 24
INTERVAL = 2
TTL = 2
#: Documented bounds (README, "How collection is spread"), one more stamp
#: allowed for a busy two-core test machine: a collect worker stopped cleanly
#: costs each of its nodes at most one stamp (the round in flight), a killed
#: one ceil(COLLECT_CONSUMER_TTL_S / interval) + 1.
MAX_MISSED_STOPPED = 1 + 1
MAX_MISSED_KILLED = -(-TTL // INTERVAL) + 1 + 1


def _sockets(pid: int) -> set[int]:
    inodes = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for name in names:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


def _established(port: int) -> dict[int, tuple[str, int]]:
    """socket inode -> (remote address, local port) of ESTABLISHED IPv4
    connections to ``port``."""
    found = {}
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
            address, remote_port = remote.split(":")
            if state == "01" and int(remote_port, 16) == port:
                found[inode] = (socket.inet_ntoa(struct.pack("<I", int(address, 16))), int(local.split(":")[1], 16))
    return found


def _holders(workers, port: int) -> dict[str, set[tuple[str, int]]]:
    """address -> {(worker name, local port)} of every connection to it."""
    connections = _established(port)
    held: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for worker in workers:
        if not worker.running:
            continue
        for pid in worker.pool_pids():
            for inode in _sockets(pid) & connections.keys():
                address, local_port = connections[inode]
                held[address].add((worker.name, local_port))
    return held


def _logs(workers) -> str:
    return "\n".join(f"{w.name} log:\n{w.log_tail(15)}" for w in workers)


def _wait_for(expected: dict[str, str], workers, port: int, timeout: float) -> dict[str, set]:
    """Until every address is held by exactly its expected worker, once."""
    deadline = time.monotonic() + timeout
    while True:
        held = _holders(workers, port)
        if {a: {w for w, _ in h} for a, h in held.items() if h} == {a: {w} for a, w in expected.items()} \
                and all(len(h) == 1 for h in held.values()):
            return held
        if time.monotonic() > deadline:
            wrong = {a: sorted(held.get(a, ())) for a, w in expected.items()
                     if {x for x, _ in held.get(a, ())} != {w} or len(held.get(a, ())) != 1}
            pytest.fail(f"after {timeout:.0f} s, nodes not held by exactly their worker: {wrong}\n"
                        + _logs(workers))
        time.sleep(0.25)


def test_each_node_stays_on_one_process_and_moves_when_a_worker_stops(make_fleet, make_memcached,
                                                                      make_celery_worker, celery_beat):
    fleet = make_fleet(NODES)
    memcached = make_memcached()
    cluster = Cluster.objects.create(name="affinity")
    nodes = [make_node(cluster, name=f"node{i:02d}", address=address, ssh_port=fleet.port, ssh_user=fleet.user,
                       ssh_key_path=str(fleet.client_key_path)) for i, address in enumerate(fleet.addresses)]
    counter = SSHCounter.objects.create(cluster=cluster, name="answer", command="echo 42", threshold=100,
                                        interval_s=INTERVAL)
    env = {"SSH_KNOWN_HOSTS": str(fleet.known_hosts_path), "SSH_HOST_KEY_POLICY": "reject",
           "MEMCACHED_SERVERS": memcached.address, "COLLECT_TICK_S": "0.5", "EVALUATE_TICK_S": "0",
           "COLLECT_HEARTBEAT_S": "0.5", "COLLECT_CONSUMER_TTL_S": str(TTL), "SSH_IDLE_CLOSE_S": "3"}
    control = make_celery_worker(name="control", queues=("control",), concurrency=1, isolated=True, env=env)
    one = make_celery_worker(name="collect1", queues=("collect",), concurrency=1, isolated=True, env=env)
    two = make_celery_worker(name="collect2", queues=("collect",), concurrency=1, isolated=True, env=env)
    workers = (one, two)
    names = {w.nodename: w.name for w in workers}
    expected = {n.address: names[affinity.owner(n.id, names)] for n in nodes}
    assert set(expected.values()) == {"collect1", "collect2"}
    celery_beat(control)

    # Every node on its own process, over one connection that stays.
    held = _wait_for(expected, workers, fleet.port, timeout=60)
    began = datetime.now(timezone.utc)
    time.sleep(3 * INTERVAL)
    again = _wait_for(expected, workers, fleet.port, timeout=1)
    assert again == held, f"nodes reconnected or moved: {({a: (held[a], again[a]) for a in held if held[a] != again[a]})}"

    # Stopped (warm shutdown): its nodes move to the other worker.
    # (It withdraws when the stop begins; the stop itself waits for the round
    # in flight.)
    two.stop()
    _wait_for(dict.fromkeys(expected, "collect1"), workers, fleet.port, timeout=2 * INTERVAL + 1)
    time.sleep(2 * INTERVAL)

    # Started again: they come back, and the first worker lets go of them.
    two.start()
    _wait_for(expected, workers, fleet.port, timeout=20 + 2 * INTERVAL)
    time.sleep(2 * INTERVAL)
    store = SampleStore([memcached.address], retention_s=600)
    killed_at = datetime.now(timezone.utc)
    _assert_missed(store, nodes, counter, began, killed_at - timedelta(seconds=INTERVAL), MAX_MISSED_STOPPED,
                   workers)

    # Killed (the host died): its heartbeat lapses and its nodes move.
    killing = time.monotonic()
    two.kill()
    _wait_for(dict.fromkeys(expected, "collect1"), workers, fleet.port, timeout=20)
    moved_in = time.monotonic() - killing
    assert moved_in <= TTL + 2 * INTERVAL + 1, f"nodes moved after {moved_in:.1f} s\n{_logs(workers)}"
    time.sleep(3 * INTERVAL)
    _assert_missed(store, nodes, counter, killed_at, datetime.now(timezone.utc) - timedelta(seconds=2 * INTERVAL),
                   MAX_MISSED_KILLED, workers)


def _assert_missed(store, nodes, counter, start, end, bound: int, workers) -> None:
    missed = {}
    for node in nodes:
        points = store.read_series(SeriesRef("ssh", node.id, counter.id), INTERVAL, start, end)
        missed[node.address] = sum(1 for _, value in points if value is None)
    assert max(missed.values()) <= bound, f"stamps missed between {start} and {end}: {missed}\n{_logs(workers)}"
