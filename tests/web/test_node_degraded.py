"""One failing counter on a node whose other counters collect: the node is
"degraded", not failing, everywhere it is shown (console cluster page and
overview, the status API, /metrics), and the error names the counter and
shows the start of what it printed."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from apps.monitoring import collection, health
from apps.monitoring.collection import NodeWork
from apps.monitoring.samples import CollectionError, SeriesRef
from tests.factories import make_cluster, make_node, ssh_counter
from tests.sshkit import trust

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def degraded(sshd_node, settings, tmp_path, sample_store):
    trust(settings, tmp_path / "known_hosts", sshd_node)
    cluster = make_cluster("half")
    node = make_node(cluster, server=sshd_node, name="half-1")
    bad = ssh_counter(cluster, "greeting", command="echo hello", interval_s=10)
    good = ssh_counter(cluster, "one", command="echo 1", interval_s=10)
    report = collection.collect_batch([NodeWork(node.id, {"ssh": [bad.id, good.id]})], datetime.now(timezone.utc))
    assert (report.samples, report.errors) == (1, 1)
    return cluster, node, bad


def test_one_failing_counter_leaves_its_node_degraded_not_down(degraded, operator_client, settings) -> None:
    cluster, node, _ = degraded
    body = operator_client.get(f"/api/v1/clusters/{cluster.name}").json()
    assert (body["nodes_up"], body["nodes_degraded"], body["nodes_failing"]) == (1, 1, 0)
    [shown] = body["nodes"]
    assert shown["health"]["state"] == "degraded"
    assert shown["health"]["last_error"] == "counter greeting: output is not a number (output: 'hello')"

    page = operator_client.get(f"/clusters/{cluster.name}/").content.decode()
    assert "health-degraded" in page and "counter greeting: output is not a number (output: &#x27;hello&#x27;)" in page
    assert "failing</span>" not in page
    overview = operator_client.get("/").content.decode()
    assert "1 up</span>" in overview and "1 degraded</span>" in overview and "failing</span>" not in overview

    settings.METRICS_TOKEN = TOKEN
    metrics = operator_client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert 'pyscaler_nodes_by_health{cluster="half",health="degraded"} 1.0' in metrics
    assert 'pyscaler_nodes_by_health{cluster="half",health="failing"} 0.0' in metrics
    assert ('pyscaler_collection_series_consecutive_failures{cluster="half",counter="greeting",jvm="",'
            'kind="ssh",node="half-1"} 1.0') in metrics
    assert ('pyscaler_collection_series_consecutive_failures{cluster="half",counter="one",jvm="",'
            'kind="ssh",node="half-1"} 0.0') in metrics


def test_a_node_none_of_whose_counters_collect_is_failing(sshd_node, settings, tmp_path, sample_store,
                                                          operator_client) -> None:
    trust(settings, tmp_path / "known_hosts", sshd_node)
    cluster = make_cluster("down")
    node = make_node(cluster, server=sshd_node, name="down-1")
    counters = [ssh_counter(cluster, name, command="echo hi", interval_s=10) for name in ("a", "b")]
    collection.collect_batch([NodeWork(node.id, {"ssh": [c.id for c in counters]})], datetime.now(timezone.utc))
    body = operator_client.get(f"/api/v1/clusters/{cluster.name}").json()
    assert (body["nodes_up"], body["nodes_degraded"], body["nodes_failing"]) == (0, 0, 1)
    assert body["nodes"][0]["health"]["state"] == "failing"


def test_the_error_shows_a_bounded_escaped_start_of_the_output(db) -> None:
    node = make_node(make_cluster("long"))
    counter = ssh_counter(node.cluster, "noisy")
    at = datetime.now(timezone.utc)
    health.record_results([CollectionError(node_id=node.id, message="output is not a number", at=at,
                                           series=SeriesRef("ssh", node.id, counter.id),
                                           output="\x1b[31m" + "x" * 500 + "\n")], now=at)
    report = health.get_health([node.id])[node.id]
    shown = health.NodeHealth.of(report, paused=False, names={SeriesRef("ssh", node.id, counter.id): "noisy"})
    assert shown.last_error.startswith("counter noisy: output is not a number (output: '\\x1b[31mxxx")
    assert shown.last_error.endswith("…)") and len(shown.last_error) < 160
