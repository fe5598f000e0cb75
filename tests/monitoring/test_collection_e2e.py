"""End to end: a real Celery beat and worker on the real broker collect from two
sshd nodes and one JVM for a few intervals; the samples appear in memcached
under the seed's keys, and in the sample log."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pymemcache.client.base import Client

from apps.control.models import Cluster, Node
from apps.monitoring.jmx.models import JVM, JMXCounter
from apps.monitoring.samples import SeriesRef
from apps.monitoring.ssh.models import SSHCounter
from apps.monitoring.store import SampleStore

pytestmark = pytest.mark.slow
INTERVAL = 2


def test_beat_and_worker_collect_ssh_and_jmx_into_memcached(make_celery_worker, celery_beat, sshd_node, sshd_nodes,
                                                             jmx_jvm, memcached_servers, tmp_path):
    cluster = Cluster.objects.create(name="e2e")
    nodes = [
        Node.objects.create(cluster=cluster, name=f"n{i}", address=s.host, ssh_port=s.port, ssh_user=s.user,
                            ssh_key_path=str(s.client_key_path))
        for i, s in enumerate((sshd_node, sshd_nodes[0]))
    ]
    answer = SSHCounter.objects.create(cluster=cluster, name="answer", command="echo 42", threshold=100,
                                       interval_s=INTERVAL)
    jvm = JVM.objects.create(cluster=cluster, name="demo", jmx_port=jmx_jvm.port)
    value = JMXCounter.objects.create(jvm=jvm, name="value", mbean="pyscaler.test:type=Demo",
                                      attribute="Value", threshold=100, interval_s=INTERVAL)
    jmx_jvm.set("Value", 3.25)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(Path(sshd_node.known_hosts_path).read_text()
                           + Path(sshd_nodes[0].known_hosts_path).read_text())

    worker = make_celery_worker(isolated=True, env={
        "SSH_KNOWN_HOSTS": str(known_hosts), "COLLECT_TICK_S": "0.5", "EVALUATE_TICK_S": "0",
    })
    started = datetime.now(timezone.utc)
    beat = celery_beat(worker)

    store = SampleStore(memcached_servers, retention_s=600)
    ssh_series = [SeriesRef("ssh", n.id, answer.id) for n in nodes]
    jmx_series = SeriesRef("jmx", nodes[0].id, value.id, jvm_id=jvm.id)

    def collected() -> dict:
        now = datetime.now(timezone.utc)
        found = {}
        for ref in (*ssh_series, jmx_series):
            found[ref] = [(s, v) for s, v in store.read_series(ref, INTERVAL, started, now) if v is not None]
        return found

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = collected()
        if all(len(points) >= 3 for points in found.values()):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"samples after 90 s: { {str(k): len(v) for k, v in collected().items()} }\n"
                    f"worker log:\n{worker.log_tail()}\nbeat log:\n{beat.log_tail(2000)}")

    for ref in ssh_series:
        assert {v for _, v in found[ref]} == {42.0}
    assert {v for _, v in found[jmx_series]} == {3.25}
    # One sample per stamp, on the interval grid.
    stamps = [s for s, _ in found[ssh_series[0]]]
    assert all(s.timestamp() % INTERVAL == 0 for s in stamps)
    assert all(b - a >= timedelta(seconds=INTERVAL) for a, b in zip(stamps, stamps[1:]))

    # The exact seed keys, read with a plain memcached client.
    stamp_text = stamps[0].strftime("%Y%m%d%H%M%S")
    key = f"ssh_sshcounter.{nodes[0].id}.{answer.id}.{stamp_text}"
    raw = [Client((h, int(p)), timeout=1).get(key) for h, p in (s.rsplit(":", 1) for s in memcached_servers)]
    assert [v for v in raw if v is not None] == [b"42"]

    # The sample log of the worker host has the same samples.
    log_dir = Path(worker.env["SAMPLE_LOG_DIR"])
    records = [json.loads(line) for f in log_dir.glob("*") for line in f.read_text().splitlines()]
    assert any(r.get("kind") == "jmx" and r.get("value") == 3.25 for r in records)
    assert sum(1 for r in records if r.get("kind") == "ssh" and r.get("value") == 42) >= 6
