"""The plan a collect task carries: what the dispatcher puts in it, that it
survives Celery's JSON, and that the worker rebuilds rows without touching
the database (but reads any field the plan does not carry from it)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from apps.control.models import Cluster, Node
from apps.monitoring import collection, tasks
from apps.monitoring.jmx.models import JVM, JMXCounter
from apps.monitoring.collection import VERSION, MessageError, NodeWork, make_messages, restore
from apps.monitoring.collection.message import NODE_FIELDS
from apps.monitoring.ssh.connection import target_for
from apps.monitoring.ssh.models import SSHCounter

pytestmark = pytest.mark.django_db


@pytest.fixture
def config():
    web = Cluster.objects.create(name="web", ssh_user="ops", ssh_port=2222, ssh_key_path="/keys/web")
    db = Cluster.objects.create(name="db", ssh_password_ref="env:PYSCALER_SECRET_DB_PW")
    n1 = Node.objects.create(cluster=web, name="n1", address="127.0.0.2", ssh_port=22)
    n2 = Node.objects.create(cluster=web, name="n2", address="127.0.0.3", ssh_user="root")
    n3 = Node.objects.create(cluster=db, name="n3", address="127.0.0.4", ssh_key_path="/keys/n3")
    load = SSHCounter.objects.create(cluster=web, name="load", command="cut -d' ' -f1 /proc/loadavg",
                                     threshold=5, interval_s=10)
    disk = SSHCounter.objects.create(cluster=db, name="disk", command="df --output=pcent / | tail -1",
                                     threshold=90, interval_s=60)
    jvm = JVM.objects.create(cluster=web, name="tomcat", jmx_port=9010, username="monitor",
                             password_ref="env:PYSCALER_SECRET_JMX_PW")
    heap = JMXCounter.objects.create(jvm=jvm, name="heap", mbean="java.lang:type=Memory",
                                     attribute="HeapMemoryUsage", composite_key="used", threshold=1e9,
                                     interval_s=10)
    return {"web": web, "db": db, "n1": n1, "n2": n2, "n3": n3, "load": load, "disk": disk, "jvm": jvm,
            "heap": heap}


def test_each_batch_carries_only_its_own_rows(config, django_assert_num_queries) -> None:
    c = config
    batches = [[NodeWork(c["n1"].id, {"ssh": [c["load"].id], "jmx": [c["heap"].id]}),
                NodeWork(c["n2"].id, {"ssh": [c["load"].id]})],
               [NodeWork(c["n3"].id, {"ssh": [c["disk"].id]})]]
    with django_assert_num_queries(5):  # one query per model, for all batches of the tick
        web, db = make_messages(batches)
    assert [n["id"] for n in web["nodes"]] == [c["n1"].id, c["n2"].id]
    assert [row["name"] for row in web["clusters"]] == ["web"]
    assert [row["command"] for row in web["ssh_counters"]] == ["cut -d' ' -f1 /proc/loadavg"]  # once
    assert [(row["name"], row["jmx_port"]) for row in web["jvms"]] == [("tomcat", 9010)]
    assert [row["composite_key"] for row in web["jmx_counters"]] == ["used"]
    assert [row["name"] for row in db["clusters"]] == ["db"] and db["jvms"] == [] and db["jmx_counters"] == []
    assert web["version"] == db["version"] == VERSION
    assert json.loads(json.dumps(web)) == web  # Celery's JSON serializer carries it unchanged


def test_the_worker_rebuilds_the_rows_without_a_query(config, django_assert_num_queries) -> None:
    c = config
    [plan] = make_messages([[NodeWork(c["n1"].id, {"ssh": [c["load"].id], "jmx": [c["heap"].id]}),
                          NodeWork(c["n3"].id, {"ssh": [c["disk"].id]})]])
    plan = json.loads(json.dumps(plan))
    with django_assert_num_queries(0):
        jobs = restore(plan)
        (n1, ssh1, jmx1), (n3, ssh3, jmx3) = [(j.node, j.counters["ssh"], j.counters["jmx"])
                                              for j in jobs]
        assert (str(target_for(n1)), target_for(n1).key_path) == ("ops@127.0.0.2:22", "/keys/web")
        assert (target_for(n3).password_ref, target_for(n3).key_path) == ("env:PYSCALER_SECRET_DB_PW", "/keys/n3")
        assert [(s.id, s.command, s.interval_s) for s in ssh1] == [(c["load"].id, c["load"].command, 10)]
        [heap] = jmx1
        jvm = heap.jvm
        assert (jvm.id, jvm.jmx_port, jvm.username, jvm.password_ref) == (
            c["jvm"].id, 9010, "monitor", "env:PYSCALER_SECRET_JMX_PW")
        assert (heap.mbean, heap.attribute, heap.composite_key) == (
            "java.lang:type=Memory", "HeapMemoryUsage", "used")
        assert [s.command for s in ssh3] == [c["disk"].command] and jmx3 == []
    # A field the plan does not carry is deferred: read from the database, not defaulted.
    Node.objects.filter(id=c["n1"].id).update(collection_enabled=False)
    with django_assert_num_queries(1):
        assert n1.collection_enabled is False


def test_nodes_and_counters_deleted_since_planning_drop_out(config) -> None:
    c = config
    gone = SSHCounter.objects.create(cluster=c["web"], name="gone", command="echo 1", threshold=1,
                                     interval_s=10)
    gone_id = gone.id
    gone.delete()
    [plan] = make_messages([[NodeWork(c["n1"].id, {"ssh": [c["load"].id, gone_id]}),
                             NodeWork(99999, {"ssh": [c["load"].id]})]])
    assert [(n["id"], n["ssh"]) for n in plan["nodes"]] == [(c["n1"].id, [c["load"].id])]


def test_the_wire_layout_is_the_one_workers_before_the_registry_read(config) -> None:
    """Dispatchers and workers of both sides of an upgrade understand each
    other: the message keeps version 1's keys (a worker of before the registry
    reads ``ssh_counters``, ``jvms``, ``jmx_counters`` and each node's ``ssh``
    and ``jmx`` lists), and a message without a source's lists (a dispatcher
    that does not know that source) restores with no counters of it."""
    c = config
    [message] = make_messages([[NodeWork(c["n1"].id, {"ssh": [c["load"].id], "jmx": [c["heap"].id]})]])
    assert {"version", "clusters", "nodes", "ssh_counters", "jvms", "jmx_counters"} <= set(message)
    [node] = message["nodes"]
    assert (node["ssh"], node["jmx"]) == ([c["load"].id], [c["heap"].id])
    old = {key: message[key] for key in ("version", "clusters", "ssh_counters", "jvms", "jmx_counters")}
    old["nodes"] = [{k: n[k] for k in (*NODE_FIELDS, "ssh", "jmx")} for n in message["nodes"]]
    [job] = restore(old)
    assert [x.id for x in job.counters["ssh"]] == [c["load"].id]
    assert [x.id for x in job.counters["jmx"]] == [c["heap"].id]
    assert all(not counters for kind, counters in job.counters.items() if kind not in ("ssh", "jmx"))


@pytest.mark.parametrize("plan, message", [
    ({"version": VERSION + 1, "nodes": []}, f"collect message version {VERSION + 1} is not {VERSION}"),
    ("nodes", "collect message version 'str' is not"),
    ({"version": VERSION, "nodes": [{"id": 1}]}, "malformed collect message"),
])
def test_a_message_that_is_not_a_plan_is_refused_by_name(plan, message) -> None:
    with pytest.raises(MessageError, match=message):
        restore(plan)


def test_the_task_still_takes_the_ids_an_older_dispatcher_sent(config, settings, tmp_path, sshd_node,
                                                               memcached_clean) -> None:
    """Messages queued before an upgrade hold node and counter ids: the task
    (called directly, bypassing the broker) collects them all the same."""
    settings.SSH_KNOWN_HOSTS = str(Path(sshd_node.known_hosts_path))
    settings.SSH_HOST_KEY_POLICY = "reject"
    settings.MEMCACHED_SERVERS = memcached_clean
    settings.SAMPLE_LOG_DIR = tmp_path / "samples"
    collection._store.cache_clear()
    collection._sample_log.cache_clear()
    try:
        node = Node.objects.create(cluster=config["web"], name="real", address=sshd_node.host,
                                   ssh_port=sshd_node.port, ssh_user=sshd_node.user,
                                   ssh_key_path=str(sshd_node.client_key_path))
        answer = SSHCounter.objects.create(cluster=config["web"], name="answer", command="echo 42",
                                           threshold=100, interval_s=10)
        at = datetime.now(timezone.utc).isoformat()
        # The message layout of that older dispatcher, as it was queued.
        legacy = {"node_id": node.id, "ssh_counter_ids": [answer.id], "jmx_counter_ids": []}
        old = tasks.collect_task([legacy], at)
        [plan] = make_messages([[NodeWork(node.id, {"ssh": [answer.id], "jmx": []})]])
        new = tasks.collect_task(*tasks.collect_args(plan, at))  # as the dispatcher sends it: signed
        assert old == new == {"samples": 1, "errors": 0, "stored": 1}
    finally:
        collection._store.cache_clear()
        collection._sample_log.cache_clear()


def test_a_message_from_a_dispatcher_that_did_not_carry_a_field_yet_defers_it(config) -> None:
    """Upgrades: a JVM row without ``tls`` (carried since JMX over TLS came)
    restores, and the JVM's tls is read from the database when used."""
    c = config
    JVM.objects.filter(id=c["jvm"].id).update(tls=True)
    [message] = make_messages([[NodeWork(c["n1"].id, {"jmx": [c["heap"].id]})]])
    message = json.loads(json.dumps(message))
    rows = [table for name, table in message.items() if name != "nodes" and isinstance(table, list)
            and table and "jmx_port" in table[0]]
    assert rows, message  # the JVM rows are there ...
    for row in rows[0]:
        del row["tls"]  # ... as an older dispatcher wrote them
    [job] = restore(message)
    [heap] = job.counters["jmx"]
    assert heap.jvm.tls is True
