"""A collection round as the collect task runs it: dispatch claims the due
stamps, batches of nodes are collected over real SSH and JMX, samples land in
two real memcached servers under the seed's keys, every sample and error in
the sample log, outcomes in per-node health."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pymemcache.client.base import Client

from apps.control.models import Cluster
from apps.monitoring import collection
from apps.monitoring.health import get_health
from apps.monitoring.jmx.models import JVM, JMXCounter
from apps.monitoring.samples import floor_stamp, format_stamp
from apps.monitoring.collection import NodeWork
from apps.monitoring.ssh.models import SSHCounter
from devservers.util import free_port
from tests.factories import make_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def round_settings(settings, tmp_path, memcached_clean, sshd_node, sshd_nodes):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("".join(Path(s.known_hosts_path).read_text() for s in (sshd_node, *sshd_nodes)))
    settings.SSH_KNOWN_HOSTS = str(known_hosts)
    settings.SSH_HOST_KEY_POLICY = "reject"
    settings.SSH_CONNECT_TIMEOUT_S = 2
    settings.MEMCACHED_SERVERS = memcached_clean
    settings.SAMPLE_LOG_DIR = tmp_path / "samples"
    collection._store.cache_clear()
    collection._sample_log.cache_clear()
    yield settings
    collection._store.cache_clear()
    collection._sample_log.cache_clear()


def _node(cluster, name, server, address=None, port=None):
    overrides = {"address": address or server.host, "ssh_port": port or server.port}
    return make_node(cluster, server, name, **overrides)


def _read(servers: list[str], key: str, wait_s: float = 1.0):
    """The key's value on whichever server holds it. Samples are written with
    noreply, so another connection may look a moment before memcached has
    processed the write: look again for up to wait_s."""
    deadline = time.monotonic() + wait_s
    while True:
        for server in servers:
            host, port = server.rsplit(":", 1)
            value = Client((host, int(port)), connect_timeout=1, timeout=1).get(key)
            if value is not None:
                return value.decode()
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def test_a_round_stores_every_nodes_samples_under_the_seed_keys(round_settings, sshd_node, sshd_nodes,
                                                                 jmx_jvm, memcached_clean):
    cluster = Cluster.objects.create(name="web")
    n0 = _node(cluster, "n0", sshd_node)  # 127.0.0.1: also runs the JVM
    n1 = _node(cluster, "n1", sshd_nodes[0])
    n2 = _node(cluster, "n2", sshd_nodes[1])
    dead = _node(cluster, "dead", sshd_node, address="127.0.0.9", port=free_port("127.0.0.9"))
    answer = SSHCounter.objects.create(cluster=cluster, name="answer", command="echo 42", threshold=100,
                                       interval_s=10)
    load = SSHCounter.objects.create(cluster=cluster, name="load", command="cut -d' ' -f1 /proc/loadavg",
                                     threshold=100, interval_s=10)
    text = SSHCounter.objects.create(cluster=cluster, name="text", command="echo not-a-number",
                                     threshold=1, interval_s=10)
    jvm = JVM.objects.create(cluster=cluster, name="demo", jmx_port=jmx_jvm.port)
    value = JMXCounter.objects.create(jvm=jvm, name="value", mbean="pyscaler.test:type=Demo",
                                      attribute="Value", threshold=100, interval_s=10)
    jmx_jvm.set("Value", 7.5)

    now = datetime.now(timezone.utc)
    batches: list = []
    sent = collection.dispatch_round(now, lambda work, at, expires: batches.append((work, at, expires)))
    assert sent == 1 and batches[0][2] == 10  # 4 nodes fit one batch; stale after one interval
    # The same stamp is claimed once: a second tick (or a second beat) sends nothing.
    assert collection.dispatch_round(now + timedelta(seconds=1), lambda *a: batches.append(a)) in (0, 1)
    if len(batches) == 2:  # the tick crossed into the next stamp
        assert floor_stamp(now + timedelta(seconds=1), 10) != floor_stamp(now, 10)

    plan, at, _ = batches[0]
    report = collection.collect_message(plan, datetime.fromisoformat(at))

    stamp = format_stamp(floor_stamp(datetime.fromisoformat(at), 10))
    for node in (n0, n1, n2):
        assert _read(memcached_clean, f"ssh_sshcounter.{node.id}.{answer.id}.{stamp}") == "42"
        assert float(_read(memcached_clean, f"ssh_sshcounter.{node.id}.{load.id}.{stamp}")) >= 0
        assert _read(memcached_clean, f"ssh_sshcounter.{node.id}.{text.id}.{stamp}") is None
    assert _read(memcached_clean, f"jmx_jmxcounter.{n0.id}.{jvm.id}.{value.id}.{stamp}") == "7.5"
    assert _read(memcached_clean, f"ssh_sshcounter.{dead.id}.{answer.id}.{stamp}") is None
    # 3 good nodes × 2 numeric counters + the JVM on n0; errors: "text" × 3, the dead node's
    # 3 counters, and the JVM counter on the three nodes where no JVM listens.
    assert report.samples == 3 * 2 + 1
    assert report.stored == report.samples
    assert report.errors == 3 + 3 + 3

    # Every sample and every error is in the sample log.
    records = [json.loads(line) for f in (round_settings.SAMPLE_LOG_DIR).glob("*") for line in
               f.read_text().splitlines()]
    assert len(records) == report.samples + report.errors
    text_errors = [r for r in records if r.get("counter") == text.id and "error" in r]
    assert len(text_errors) == 4  # three nodes' output, and the dead node
    assert sum("not-a-number" in json.dumps(r) for r in text_errors) == 3

    # Health shows the dead node failing and the others collecting.
    health = get_health([n0.id, n1.id, dead.id])
    assert health[dead.id].failing
    assert not health[n1.id].failing or health[n1.id].last_error is not None  # "text" errs per counter


def test_admin_changes_apply_at_the_next_stamp_without_restarting_anything(round_settings, sshd_nodes):
    cluster = Cluster.objects.create(name="web")
    n1 = _node(cluster, "n1", sshd_nodes[0])
    counter = SSHCounter.objects.create(cluster=cluster, name="answer", command="echo 1", threshold=9,
                                        interval_s=5)
    t0 = floor_stamp(datetime.now(timezone.utc), 5)
    plans: list = []
    collection.dispatch_round(t0, lambda work, at, expires: plans.append(work))
    assert [(n["id"], n["ssh"], n["jmx"]) for n in plans[-1]["nodes"]] == [(n1.id, [counter.id], [])]
    assert [c["command"] for c in plans[-1]["ssh_counters"]] == ["echo 1"]

    # Disabled in admin: the next stamp dispatches nothing for it.
    counter.enabled = False
    counter.save()
    plans.clear()
    collection.dispatch_round(t0 + timedelta(seconds=5), lambda work, at, expires: plans.append(work))
    assert plans == []

    # Re-enabled, and a new node added: both are in the next stamp's plan.
    counter.enabled = True
    counter.save()
    n2 = _node(cluster, "n2", sshd_nodes[1])
    collection.dispatch_round(t0 + timedelta(seconds=10), lambda work, at, expires: plans.append(work))
    assert {n["id"] for n in plans[-1]["nodes"]} == {n1.id, n2.id}

    # Collection switched off for a node: it leaves the plan.
    n2.collection_enabled = False
    n2.save()
    plans.clear()
    collection.dispatch_round(t0 + timedelta(seconds=15), lambda work, at, expires: plans.append(work))
    assert [n["id"] for n in plans[-1]["nodes"]] == [n1.id]

    # A changed command is in the next stamp's plan: nothing is cached between ticks.
    counter.command = "echo 2"
    counter.save()
    collection.dispatch_round(t0 + timedelta(seconds=20), lambda work, at, expires: plans.append(work))
    assert [c["command"] for c in plans[-1]["ssh_counters"]] == ["echo 2"]


def test_memcached_down_still_logs_samples_and_raises_nothing(round_settings, sshd_nodes, tmp_path):
    round_settings.MEMCACHED_SERVERS = [f"127.0.0.1:{free_port()}"]  # nothing listens there
    collection._store.cache_clear()
    cluster = Cluster.objects.create(name="web")
    n1 = _node(cluster, "n1", sshd_nodes[0])
    counter = SSHCounter.objects.create(cluster=cluster, name="answer", command="echo 5", threshold=9,
                                        interval_s=5)
    report = collection.collect_batch([NodeWork(n1.id, {"ssh": [counter.id]})], datetime.now(timezone.utc))
    assert report.samples == 1 and report.stored == 0
    lines = [json.loads(l) for f in round_settings.SAMPLE_LOG_DIR.glob("*") for l in f.read_text().splitlines()]
    assert [r["value"] for r in lines if r.get("counter") == counter.id] == [5]
