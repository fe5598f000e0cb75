"""JMX counter collection against real JVMs (Java's own JMX remote agent)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from apps.control.models import Cluster, Node
from apps.monitoring.jmx import connector, jvmruntime, trust
from apps.monitoring.jmx.collector import NotANumber, collect_jvm, to_float
from apps.monitoring.jmx.models import JMXCounter, JVM
from apps.monitoring.samples import CollectionError, Sample, floor_stamp
from devservers.jvm import DEMO_MBEAN, JmxJvm
from devservers.util import REPO_ROOT

NOW = datetime(2026, 11, 23, 10, 17, 42, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _fresh_connections():
    """Each test starts without connections left by another."""
    yield
    connector.close_all()


def _setup(port: int, counters: list[tuple[str, str, str]], *, username: str = "", password_ref: str = "",
           interval_s: int = 60) -> tuple[Node, JVM, list[JMXCounter]]:
    cluster = Cluster.objects.create(name=f"web{port}")
    node = Node.objects.create(cluster=cluster, name=f"node-{port}", address="127.0.0.1")
    jvm = JVM.objects.create(cluster=cluster, name="tomcat", jmx_port=port, username=username,
                             password_ref=password_ref)
    made = [
        JMXCounter.objects.create(jvm=jvm, name=f"c{i}", threshold=1.0, interval_s=interval_s,
                                  mbean=mbean, attribute=attribute, composite_key=key)
        for i, (mbean, attribute, key) in enumerate(counters)
    ]
    return node, jvm, made


def _by_name(results, counters):
    names = {c.id: c.name for c in counters}
    return {names[r.series.counter_id]: r for r in results}


DEMO = [
    (DEMO_MBEAN, "Value", ""),
    (DEMO_MBEAN, "Requests", ""),
    (DEMO_MBEAN, "Healthy", ""),
    (DEMO_MBEAN, "Pool", "used"),
    (DEMO_MBEAN, "Pool", "max"),
    ("java.lang:type=Memory", "HeapMemoryUsage", "used"),
    ("java.lang:type=Threading", "ThreadCount", ""),
]


def test_it_reads_numbers_booleans_and_composite_keys(db, jmx_jvm: JmxJvm, monkeypatch) -> None:
    node, jvm, counters = _setup(jmx_jvm.port, DEMO, interval_s=15)
    jmx_jvm.set("Value", 12.5)
    jmx_jvm.set("Requests", 41)
    jmx_jvm.set("Healthy", False)
    jmx_jvm.set("PoolUsed", 4)
    calls: list[tuple[str, tuple[str, ...]]] = []
    real_submit = connector.JmxConnection.submit_read

    def counting_submit(self, mbean, names):  # every getAttributes goes through here
        calls.append((mbean, names))
        return real_submit(self, mbean, names)

    monkeypatch.setattr(connector.JmxConnection, "submit_read", counting_submit)

    results = collect_jvm(node, jvm, counters, NOW)

    assert all(isinstance(r, Sample) for r in results), results
    got = _by_name(results, counters)
    assert [got[f"c{i}"].value for i in range(5)] == [12.5, 41.0, 0.0, 4.0, 10.0]
    assert got["c5"].value > 0  # heap used, bytes
    assert got["c6"].value >= 1  # live threads
    sample = got["c0"]
    assert sample.stamp == floor_stamp(NOW, 15) == datetime(2026, 11, 23, 10, 17, 30, tzinfo=timezone.utc)
    assert sample.key == f"jmx_jmxcounter.{node.id}.{jvm.id}.{counters[0].id}.20261123101730"
    # One getAttributes per MBean, each attribute asked once.
    assert sorted(calls) == sorted([
        (DEMO_MBEAN, ("Value", "Requests", "Healthy", "Pool")),
        ("java.lang:type=Memory", ("HeapMemoryUsage",)),
        ("java.lang:type=Threading", ("ThreadCount",)),
    ])

    jmx_jvm.set("Healthy", True)
    again = _by_name(collect_jvm(node, jvm, counters, NOW), counters)
    assert again["c2"].value == 1.0


def test_it_reuses_one_connection_per_jvm(db, jmx_jvm: JmxJvm) -> None:
    node, jvm, counters = _setup(jmx_jvm.port, DEMO[:1])
    collect_jvm(node, jvm, counters, NOW)
    first = connector._pool[connector.endpoint_for(node, jvm)]
    collect_jvm(node, jvm, counters, NOW)
    assert connector._pool[connector.endpoint_for(node, jvm)] is first


def test_a_missing_mbean_or_attribute_fails_only_its_counter(db, jmx_jvm: JmxJvm) -> None:
    node, jvm, counters = _setup(jmx_jvm.port, [
        (DEMO_MBEAN, "Value", ""),
        (DEMO_MBEAN, "NoSuchAttribute", ""),
        ("pyscaler.test:type=Missing", "Value", ""),
        (DEMO_MBEAN, "Label", ""),
        (DEMO_MBEAN, "Pool", ""),
        ("java.lang:type=Memory", "HeapMemoryUsage", "bogus"),
        ("java.lang:type=Memory", "HeapMemoryUsage", "committed"),
    ])
    jmx_jvm.set("Value", 3.25)
    got = _by_name(collect_jvm(node, jvm, counters, NOW), counters)

    assert isinstance(got["c0"], Sample) and got["c0"].value == 3.25
    assert isinstance(got["c6"], Sample) and got["c6"].value > 0
    errors = {name: r for name, r in got.items() if isinstance(r, CollectionError)}
    assert set(errors) == {"c1", "c2", "c3", "c4", "c5"}
    assert "No such attribute: NoSuchAttribute" in errors["c1"].message
    assert "MBean pyscaler.test:type=Missing not found" in errors["c2"].message
    assert "not a number: 'demo'" in errors["c3"].message
    assert "set composite_key to one of max, used" in errors["c4"].message
    assert "no key 'bogus'" in errors["c5"].message
    for error in errors.values():
        assert error.node_id == node.id and error.jvm_id == jvm.id
        assert error.series.jvm_id == jvm.id


def test_a_killed_jvm_fails_its_counters_quickly_then_collection_recovers(db, make_jvm) -> None:
    target = make_jvm()
    node, jvm, counters = _setup(target.port, DEMO[:3])
    target.set("Value", 5.0)
    assert all(isinstance(r, Sample) for r in collect_jvm(node, jvm, counters, NOW))

    target.kill()
    for _ in range(2):  # the broken connection, then a refused reconnect
        started = time.monotonic()
        results = collect_jvm(node, jvm, counters, NOW)
        assert time.monotonic() - started < 3
        assert len(results) == 3 and all(isinstance(r, CollectionError) for r in results)
        assert all("Connection refused" in r.message for r in results), results[0].message

    replacement = make_jvm(port=target.port)
    replacement.set("Value", 6.0)
    got = _by_name(collect_jvm(node, jvm, counters, NOW), counters)
    assert all(isinstance(r, Sample) for r in got.values()), got
    assert got["c0"].value == 6.0


def test_a_restarted_jvm_is_read_in_the_same_round(db, make_jvm) -> None:
    """A connection cached from the previous round died with its JVM; the JVM
    is back by now, so the sample must not be lost."""
    target = make_jvm()
    node, jvm, counters = _setup(target.port, DEMO[:1])
    assert isinstance(collect_jvm(node, jvm, counters, NOW)[0], Sample)
    target.kill()
    make_jvm(port=target.port).set("Value", 8.5)
    [result] = collect_jvm(node, jvm, counters, NOW)
    assert isinstance(result, Sample) and result.value == 8.5


def test_a_hung_jvm_costs_at_most_the_read_timeout(db, make_jvm, settings) -> None:
    settings.JMX_READ_TIMEOUT_S = read_timeout = 2.0
    target = make_jvm()
    node, jvm, counters = _setup(target.port, DEMO[:1] + DEMO[5:])
    assert all(isinstance(r, Sample) for r in collect_jvm(node, jvm, counters, NOW))
    target.pause()
    try:
        started = time.monotonic()
        results = collect_jvm(node, jvm, counters, NOW)
        elapsed = time.monotonic() - started
    finally:
        target.resume()
    assert all(isinstance(r, CollectionError) for r in results)
    assert "no answer within 2 s" in results[0].message
    assert read_timeout * 0.9 <= elapsed < read_timeout + 1.5
    # Resumed: the next round reconnects and reads again.
    assert all(isinstance(r, Sample) for r in collect_jvm(node, jvm, counters, NOW))


def test_a_jvm_nobody_listens_for_is_an_error_per_counter(db) -> None:
    from devservers.util import free_port

    node, jvm, counters = _setup(free_port(), DEMO[:2])
    results = collect_jvm(node, jvm, counters, NOW)
    assert [type(r) for r in results] == [CollectionError, CollectionError]
    assert "cannot connect to JMX at 127.0.0.1" in results[0].message


def test_credentials_from_a_secret_reference(db, make_jvm, monkeypatch, tmp_path, settings) -> None:
    target = make_jvm(credentials=("monitor", "pw-from-env-1"))
    node, jvm, counters = _setup(target.port, DEMO[:2], username="monitor",
                                 password_ref="env:PYSCALER_SECRET_TEST_JMX_PASSWORD")

    monkeypatch.setenv("PYSCALER_SECRET_TEST_JMX_PASSWORD", "pw-from-env-1")
    assert all(isinstance(r, Sample) for r in collect_jvm(node, jvm, counters, NOW))

    monkeypatch.setenv("PYSCALER_SECRET_TEST_JMX_PASSWORD", "wrong-password")
    wrong = collect_jvm(node, jvm, counters, NOW)
    assert all(isinstance(r, CollectionError) for r in wrong)
    assert "authentication" in wrong[0].message.lower()
    assert "wrong-password" not in wrong[0].message

    monkeypatch.delenv("PYSCALER_SECRET_TEST_JMX_PASSWORD")
    unset = collect_jvm(node, jvm, counters, NOW)
    assert "environment variable PYSCALER_SECRET_TEST_JMX_PASSWORD is not set" in unset[0].message

    secret = tmp_path / "jmx-password"
    secret.write_text("pw-from-env-1\n")
    settings.SECRET_REF_DIR = str(tmp_path)
    jvm.password_ref = f"file:{secret}"
    assert all(isinstance(r, Sample) for r in collect_jvm(node, jvm, counters, NOW))

    jvm.username, jvm.password_ref = "", ""  # no credentials at all
    refused = collect_jvm(node, jvm, counters, NOW)
    assert all(isinstance(r, CollectionError) for r in refused)


def test_it_reads_over_tls_trusting_only_recorded_certificates(db, settings, tmp_path, monkeypatch) -> None:
    """A JVM whose JMX connector and registry speak TLS (as the jvm_node role
    sets them up): read with TLS and the password once its certificate is in
    JMX_TRUST_DIR; refused before that, and refused in plain JMX."""
    settings.JMX_TRUST_DIR = tmp_path / "trust"
    monkeypatch.setenv("PYSCALER_SECRET_TLS_JMX", "tls-pw-1")
    with JmxJvm(credentials=("monitor", "tls-pw-1"), workdir=tmp_path / "jvm", tls=True) as target:
        node, jvm, counters = _setup(target.port, DEMO[:1], username="monitor",
                                     password_ref="env:PYSCALER_SECRET_TLS_JMX")
        jvm.tls = True
        jvm.save()
        untrusted = collect_jvm(node, jvm, counters, NOW)
        assert isinstance(untrusted[0], CollectionError)
        assert "no trusted JMX certificate" in untrusted[0].message

        other = JmxJvm(workdir=tmp_path / "other", tls=True)
        other._tls_options()  # a key pair of another JVM: trusting it does not trust this one
        trust.record_certificate(jvm, Node(id=999, name="elsewhere"), other.certificate_path.read_text())
        wrong = collect_jvm(node, jvm, counters, NOW)
        assert isinstance(wrong[0], CollectionError)
        assert "the JVM's certificate (CN=127.0.0.1, SHA-256 " in wrong[0].message
        assert "is not trusted by" in wrong[0].message, wrong[0].message

        path = trust.record_certificate(jvm, node, target.certificate_path.read_text())
        assert path.parent == settings.JMX_TRUST_DIR
        target.set("Value", 7.5)
        read = collect_jvm(node, jvm, counters, NOW)
        assert isinstance(read[0], Sample) and read[0].value == 7.5

        jvm.tls = False  # plain JMX to a TLS JVM
        plain = collect_jvm(node, jvm, counters, NOW)
        assert isinstance(plain[0], CollectionError)
        jvm.tls, jvm.password_ref, jvm.username = True, "", ""  # TLS but no password
        anonymous = collect_jvm(node, jvm, counters, NOW)
        assert isinstance(anonymous[0], CollectionError)
        assert "authentication" in anonymous[0].message.lower()


def test_record_certificate_takes_one_pem_certificate_per_jvm_and_node(db, settings, tmp_path) -> None:
    settings.JMX_TRUST_DIR = tmp_path / "trust"
    node, jvm, _ = _setup(1, [])
    with pytest.raises(trust.TrustError, match="not a PEM certificate"):
        trust.record_certificate(jvm, node, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    path = trust.record_certificate(jvm, node, "noise before\n" + pem + "\nnoise after")
    assert path.read_text() == pem + "\n" and oct(path.stat().st_mode & 0o777) == "0o644"
    again = trust.record_certificate(jvm, node, pem)  # the node re-configured: replaced, not added
    assert again == path and [p.name for p in settings.JMX_TRUST_DIR.iterdir()] == [path.name]


def test_it_refuses_counters_of_another_jvm(db, jmx_jvm: JmxJvm) -> None:
    node, jvm, counters = _setup(jmx_jvm.port, DEMO[:1])
    other = JVM.objects.create(cluster=jvm.cluster, name="other", jmx_port=jmx_jvm.port + 1)
    with pytest.raises(ValueError, match="belongs to JVM"):
        collect_jvm(node, other, counters, NOW)


# -- values ------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(True, 1.0), (False, 0.0), (3, 3.0), (2.5, 2.5)])
def test_to_float_takes_numbers_and_booleans(value, expected) -> None:
    assert to_float(value) == expected


@pytest.mark.parametrize(("value", "reason"), [
    (None, "null"), (math.nan, "not a finite number"), (math.inf, "not a finite number"), ("12", "not a number"),
])
def test_to_float_refuses_what_is_not_a_sample(value, reason) -> None:
    with pytest.raises(NotANumber, match=reason):
        to_float(value)


def test_to_float_reads_java_values() -> None:
    jvmruntime.ensure_started()
    import jpype

    assert to_float(jpype.JClass("java.math.BigDecimal")("1.25")) == 1.25
    assert to_float(jpype.JClass("java.lang.Boolean").TRUE) == 1.0
    assert to_float(jpype.JClass("java.lang.Long")(7)) == 7.0
    with pytest.raises(NotANumber, match="java.lang.String"):
        to_float(jpype.JString("x"))
    with pytest.raises(NotANumber, match="not a composite"):
        to_float(jpype.JClass("java.lang.Long")(7), "used")


# -- the JVM in worker processes -------------------------------------------------------


def test_a_jvm_inherited_through_fork_is_refused_not_used() -> None:
    jvmruntime.ensure_started()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must not touch the inherited JVM
        try:
            jvmruntime.ensure_started()
            message = "started"
        except jvmruntime.JvmUnavailable as exc:
            message = str(exc)
        os.write(write_end, message.encode())
        os._exit(0)
    os.close(write_end)
    message = os.read(read_end, 4096).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert "before this process" in message and "forked" in message


_POOL_PROCESS = r"""
import json, os, sys
from datetime import datetime, timezone
import django
django.setup()
import jpype
from celery.signals import worker_process_init
from apps.monitoring.jmx import jvmruntime
from apps.monitoring.jmx.collector import collect_jvm
from types import SimpleNamespace as NS

assert not jpype.isJVMStarted()  # the parent (the worker's main process) has none
pid = os.fork()
if pid == 0:
    worker_process_init.send(sender=None)  # what Celery's prefork pool sends after forking
    started = jvmruntime.started_here()
    node = NS(id=1, address="127.0.0.1")
    jvm = NS(id=2, jmx_port=int(sys.argv[1]), username="", password_ref="", name="demo")
    counter = NS(id=3, pk=3, jvm_id=2, mbean="pyscaler.test:type=Demo", attribute="Value",
                 composite_key="", interval_s=10)
    [result] = collect_jvm(node, jvm, [counter], datetime.now(timezone.utc))
    print(json.dumps({"started": started, "value": getattr(result, "value", None),
                      "error": getattr(result, "message", None)}), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print(json.dumps({"parent_started": jpype.isJVMStarted()}))
"""


def test_a_pool_process_starts_its_own_jvm_on_worker_process_init(jmx_jvm: JmxJvm) -> None:
    jmx_jvm.set("Value", 9.75)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pyscaler.settings", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", _POOL_PROCESS, str(jmx_jvm.port)], capture_output=True,
                          text=True, timeout=60, cwd=REPO_ROOT, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    child, parent = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert child == {"started": True, "value": 9.75, "error": None}
    assert parent == {"parent_started": False}


def test_the_collector_module_starts_no_jvm_at_import() -> None:
    code = "import django; django.setup(); import apps.monitoring.jmx.collector, jpype; print(jpype.isJVMStarted())"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pyscaler.settings", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=REPO_ROOT, env=env)
    assert done.stdout.strip() == "False", done.stderr[-2000:]



# -- finding libjvm ---------------------------------------------------------------------


def test_jvm_path_names_a_bad_setting(settings, monkeypatch, tmp_path) -> None:
    settings.JVM_PATH = str(tmp_path / "nope" / "libjvm.so")
    with pytest.raises(jvmruntime.JvmUnavailable, match="JVM_PATH=.*is not a file"):
        jvmruntime.jvm_path()
    settings.JVM_PATH = ""
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(jvmruntime.JvmUnavailable, match="JAVA_HOME=.*holds no lib/server/libjvm.so"):
        jvmruntime.jvm_path()


def test_jvm_path_follows_java_home(settings, monkeypatch) -> None:
    import jpype

    settings.JVM_PATH = ""
    libjvm = jpype.getDefaultJVMPath()
    java_home = libjvm.rsplit("/lib/server/", 1)[0]
    monkeypatch.setenv("JAVA_HOME", java_home)
    assert jvmruntime.jvm_path() == libjvm
