"""Per-node collection health: exact consecutive failures, last success and
last error per endpoint and per series, and writes only when something
changed (or a heartbeat is due)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from apps.control.models import Cluster, Node
from apps.monitoring import health
from apps.monitoring.models import CollectionHealth
from apps.monitoring.samples import CollectionError, Sample, SeriesRef

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def nodes() -> list[Node]:
    cluster = Cluster.objects.create(name="health")
    return [Node.objects.create(cluster=cluster, name=f"h{i}", address=f"127.0.0.{i + 2}") for i in range(2)]


def sample(node: Node, counter_id: int, at: datetime, kind: str = "ssh", jvm_id: int | None = None) -> Sample:
    return Sample(SeriesRef(kind, node.id, counter_id, jvm_id), at, 1.0, collected_at=at)


def error(node: Node, counter_id: int | None, at: datetime, message: str = "boom", **kw) -> CollectionError:
    series = SeriesRef(kw.pop("kind", "ssh"), node.id, counter_id, kw.get("jvm_id")) if counter_id else None
    return CollectionError(node_id=node.id, message=message, series=series, at=at, **kw)


@pytest.mark.dbbackends  # the upsert differs between databases (MySQL/MariaDB name no conflict target)
def test_a_node_that_fails_entirely_counts_consecutive_failures_and_recovers(nodes) -> None:
    node, other = nodes
    health.record_results([sample(node, 1, T0), sample(node, 2, T0), sample(other, 1, T0)], now=T0)
    for i in range(1, 4):
        at = T0 + timedelta(seconds=10 * i)
        health.record_results([error(node, 1, at, "connection refused by x"),
                               error(node, 2, at, "connection refused by x"), sample(other, 1, at)], now=at)

    report = health.get_health([node.id, other.id])
    ssh = report[node.id].endpoints[("ssh", None)]
    assert (ssh.consecutive_failures, ssh.last_error, ssh.last_error_at) == (3, "connection refused by x",
                                                                          T0 + timedelta(seconds=30))
    assert ssh.last_success_at == T0 and not ssh.ok
    assert report[node.id].series[SeriesRef("ssh", node.id, 1)].consecutive_failures == 3
    assert report[node.id].failing and not report[other.id].failing

    back = T0 + timedelta(seconds=40)
    health.record_results([sample(node, 1, back), sample(node, 2, back)], now=back)
    ssh = health.get_health([node.id])[node.id].endpoints[("ssh", None)]
    assert (ssh.ok, ssh.last_success_at) == (True, back)
    assert ssh.last_error == "connection refused by x"  # the last error stays visible after recovery


def test_a_failing_counter_does_not_make_its_node_fail(nodes) -> None:
    node = nodes[0]
    health.record_results([sample(node, 1, T0), error(node, 2, T0, "output is not a number", output="abc")],
                          now=T0)
    report = health.get_health([node.id])[node.id]
    assert report.endpoints[("ssh", None)].ok
    bad = report.series[SeriesRef("ssh", node.id, 2)]
    assert (bad.consecutive_failures, bad.last_error, bad.last_error_output) == (1, "output is not a number", "abc")
    assert report.failing and report.last_error == bad


def test_healthy_rows_are_written_once_per_heartbeat_not_every_round(nodes) -> None:
    node = nodes[0]
    assert health.record_results([sample(node, c, T0) for c in (1, 2, 3)], now=T0) == 4  # 3 series + endpoint
    quiet = [health.record_results([sample(node, c, T0 + timedelta(seconds=s)) for c in (1, 2, 3)],
                                   now=T0 + timedelta(seconds=s)) for s in range(5, 60, 5)]
    assert quiet == [0] * len(quiet)
    later = T0 + timedelta(seconds=health.HEARTBEAT_S)
    assert health.record_results([sample(node, c, later) for c in (1, 2, 3)], now=later) == 4
    assert CollectionHealth.objects.get(node=node, counter_id=1).last_success_at == later

    # A failure is always written, and so is the recovery after it.
    fail = later + timedelta(seconds=5)
    assert health.record_results([error(node, 1, fail), sample(node, 2, fail), sample(node, 3, fail)],
                                 now=fail) == 1
    ok = fail + timedelta(seconds=5)
    assert health.record_results([sample(node, c, ok) for c in (1, 2, 3)], now=ok) == 1


def test_jvm_errors_without_a_series_fail_that_jvm_only(nodes) -> None:
    node = nodes[0]
    health.record_results([
        sample(node, 1, T0),  # SSH fine
        error(node, None, T0, "JMX connection to 127.0.0.2:9010 refused", jvm_id=7),
        sample(node, 5, T0, kind="jmx", jvm_id=8),
    ], now=T0)
    endpoints = health.get_health([node.id])[node.id].endpoints
    assert endpoints[("ssh", None)].ok and endpoints[("jmx", 8)].ok
    assert endpoints[("jmx", 7)].last_error == "JMX connection to 127.0.0.2:9010 refused"
    assert endpoints[("jmx", 7)].consecutive_failures == 1


def test_a_node_never_collected_has_empty_health(nodes) -> None:
    report = health.get_health([nodes[1].id])[nodes[1].id]
    assert report.endpoints == {} and report.series == {} and not report.failing and report.last_error is None


def test_results_of_a_deleted_node_do_not_break_the_others(nodes) -> None:
    node, gone = nodes
    gone_id = gone.id
    stale = [error(gone, 1, T0), sample(node, 1, T0)]
    gone.delete()
    health.record_results(stale, now=T0)
    assert health.get_health([node.id])[node.id].endpoints[("ssh", None)].ok
    assert not CollectionHealth.objects.filter(node_id=gone_id).exists()


def test_health_of_a_real_node_going_down_and_up(make_sshd, settings, tmp_path, monkeypatch) -> None:
    from apps.monitoring.ssh.collector import collect_node
    from apps.monitoring.ssh.connection import ConnectionPool
    from tests.factories import make_counters, make_node
    from tests.sshkit import take_down, trust

    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    server = make_sshd()
    trust(settings, tmp_path / "known_hosts", server)
    node = make_node(server=server)
    counters = make_counters(node, ["echo 1", "echo 2"])
    pool = ConnectionPool()
    try:
        health.record_results(collect_node(node, counters, pool=pool))
        take_down(server)
        for _ in range(2):
            health.record_results(collect_node(node, counters, pool=pool))
        ssh = health.get_health([node.id])[node.id].endpoints[("ssh", None)]
        assert ssh.consecutive_failures == 2 and ssh.last_error.startswith("connection refused by")
        server.start()
        health.record_results(collect_node(node, counters, pool=pool))
        assert health.get_health([node.id])[node.id].endpoints[("ssh", None)].ok
    finally:
        pool.close_all()
