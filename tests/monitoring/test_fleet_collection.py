"""More than 400 nodes collected by one process, as one Celery worker child
collects them: PyScaler's dispatch and collect path against a fleet of real
sshd (devservers/fleet.py), two rounds, connections kept between them.

Each node costs the collecting process about three descriptors (the socket
and the pipe behind the channel's fileno()), so 410 nodes take descriptors
past 1023, where select() fails with "filedescriptor out of range in
select()" (issue 11: two thirds of a 1,000-node fleet failed every round).
The test checks that it really got there, so it keeps guarding the waits
(apps/monitoring/ssh/readiness.py) whatever else changes.
"""
from __future__ import annotations

import importlib
import json
import os
import resource
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.conf import settings

from apps.control.models import Cluster
from apps.monitoring import collection
from apps.monitoring.health import get_health
from apps.monitoring.samples import floor_stamp, format_stamp
from apps.monitoring.ssh import connection
from apps.monitoring.ssh.models import SSHCounter
from apps.monitoring.store import SampleStore
from tests.factories import make_node

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

NODES = 410
INTERVAL_S = 10
#: A batch per this many nodes, each collected by this many threads (one
#: worker child runs its batches one after another, like Celery's prefork pool).
BATCH_SIZE = 50
THREADS = 50
#: select()'s limit: descriptors from FD_SETSIZE (1024) up are out of its range.
FD_SETSIZE = 1024

round_module = importlib.import_module("apps.monitoring.collection.round")


def _raise_descriptor_limit(needed: int) -> None:
    """A default soft limit of 1024 would stop the test before select() does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.fail(f"this test needs {needed} descriptors; the hard limit (ulimit -Hn) is {hard}",
                    pytrace=False)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _socket_fds() -> list[int]:
    fds = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                fds.append(int(name))
        except OSError:  # closed since listed
            pass
    return fds


@pytest.fixture
def fleet_settings(settings, tmp_path, memcached_clean, make_fleet, monkeypatch):
    _raise_descriptor_limit(4 * NODES + 512)
    fleet = make_fleet(NODES)
    settings.SSH_KNOWN_HOSTS = str(fleet.known_hosts_path)
    settings.SSH_HOST_KEY_POLICY = "reject"
    # Generous bounds: the test proves every node is collected, not speed on a
    # busy two-core machine.
    settings.SSH_CONNECT_TIMEOUT_S = 30
    settings.SSH_COMMAND_TIMEOUT_S = 30
    settings.MEMCACHED_SERVERS = memcached_clean
    settings.SAMPLE_LOG_DIR = tmp_path / "samples"
    settings.COLLECT_BATCH_SIZE = BATCH_SIZE
    settings.COLLECT_THREADS = THREADS
    monkeypatch.setattr(round_module, "_pool", None)  # a pool of THREADS for this test
    collection._store.cache_clear()
    collection._sample_log.cache_clear()
    yield fleet
    connection.pool.close_all()
    if round_module._pool is not None:
        round_module._pool.shutdown()
    collection._store.cache_clear()
    collection._sample_log.cache_clear()


def _round(now: datetime) -> tuple[int, int, int]:
    """Dispatch and collect one round in this process; (samples, errors, batches)."""
    messages: list = []
    collection.dispatch_round(now, lambda message, at, expires: messages.append((message, at)))
    samples = errors = 0
    for message, at in messages:
        report = collection.collect_message(message, datetime.fromisoformat(at))
        samples += report.samples
        errors += report.errors
    return samples, errors, len(messages)


def _stored(store: SampleStore, keys: list[str], wait_s: float = 2.0) -> dict[str, str]:
    """The keys' values. Samples are written with noreply, on the collector's
    own connections: look again for a moment until memcached processed them."""
    deadline = time.monotonic() + wait_s
    while True:
        stored = store.get_many(keys)
        if len(stored) == len(keys) or time.monotonic() > deadline:
            return stored
        time.sleep(0.05)


def _first_errors(log_dir, limit: int = 3) -> list[str]:
    records = [json.loads(line) for f in log_dir.glob("*") for line in f.read_text().splitlines()]
    return [r["error"] for r in records if "error" in r][:limit]


def test_one_process_collects_more_than_400_nodes(fleet_settings):
    fleet = fleet_settings
    cluster = Cluster.objects.create(name="fleet")
    nodes = [make_node(cluster, name=f"node{i:04d}", address=address, ssh_port=fleet.port, ssh_user=fleet.user,
                       ssh_key_path=str(fleet.client_key_path))
             for i, address in enumerate(fleet.addresses)]
    counters = [
        SSHCounter.objects.create(cluster=cluster, name="answer", command="echo 42", threshold=100,
                                  interval_s=INTERVAL_S),
        SSHCounter.objects.create(cluster=cluster, name="load", command="cut -d' ' -f1 /proc/loadavg",
                                  threshold=100, interval_s=INTERVAL_S),
    ]
    store = SampleStore.from_settings()
    start = datetime.now(timezone.utc)
    opened_before = connection.pool.opened
    highest_fd = 0
    for number in range(2):
        now = start + timedelta(seconds=number * INTERVAL_S)
        began = time.monotonic()
        samples, errors, batches = _round(now)
        took = time.monotonic() - began
        sockets = _socket_fds()
        highest_fd = max(highest_fd, *sockets)
        print(f"round {number + 1}: {samples} samples, {errors} errors from {NODES} nodes in {took:.1f} s; "
              f"{len(sockets)} sockets open, the highest descriptor {max(sockets)}")
        assert errors == 0, (f"round {number + 1}: {errors} errors in {took:.1f} s, e.g. "
                             f"{_first_errors(Path(settings.SAMPLE_LOG_DIR))}")
        assert batches == -(-NODES // BATCH_SIZE)
        assert samples == NODES * len(counters)
        stamp = format_stamp(floor_stamp(now, INTERVAL_S))
        keys = [f"ssh_sshcounter.{node.id}.{counter.id}.{stamp}" for node in nodes for counter in counters]
        stored = _stored(store, keys)
        assert sorted(set(keys) - set(stored)) == [], "samples missing from memcached"
        assert {stored[k] for k in keys[::2]} == {"42"}
    # The second round reused every connection: all 410 were open at once.
    assert connection.pool.opened - opened_before == NODES
    assert highest_fd >= FD_SETSIZE, f"the highest socket descriptor was {highest_fd}: select()'s limit not crossed"
    health = get_health([node.id for node in nodes])
    assert not [node.name for node in nodes if health[node.id].failing]
