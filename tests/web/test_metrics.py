"""/metrics: bearer token, Prometheus text format checked by Prometheus's own
promtool, newest samples per counter and node, PyScaler's health figures."""
from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from apps.control import executions
from apps.control.evaluator import evaluate
from apps.control.models import Trigger
from apps.monitoring import collection
from apps.monitoring.samples import CollectionError, Sample, SeriesRef, floor_stamp
from devservers.util import require_binary

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN


def _scrape(client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.content.decode()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_are_off_without_a_configured_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Token {TOKEN}", "Bearer"])
def test_a_missing_or_wrong_token_is_401(client, metrics_on, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"pyscaler_" not in response.content


def test_newest_samples_health_and_executions_pass_promtool(client, metrics_on, console_world, sample_store,
                                                            operator_user):
    promtool = require_binary("promtool", "prometheus")
    w = console_world
    now = timezone.now()
    newest = floor_stamp(now, 10) - timedelta(seconds=10)
    # The trigger counted these samples' stamps (none before it started counting does).
    Trigger.objects.filter(pk=w.trigger.pk).update(counting_since=newest - timedelta(minutes=1))
    collection.record([
        Sample(SeriesRef("ssh", w.nodes[0].pk, w.load.pk), newest - timedelta(seconds=10), 0.1),
        Sample(SeriesRef("ssh", w.nodes[0].pk, w.load.pk), newest, 0.75),
        Sample(SeriesRef("jmx", w.nodes[1].pk, w.heap.pk, w.jvm.pk), newest, 2.5e8),
        CollectionError(node_id=w.nodes[1].pk, message="ssh: connection refused"),
    ])
    executions.fire_action(w.mail, cluster=w.cluster, fired_by_user=operator_user)
    evaluate(store=sample_store, fire=lambda *a, **k: None)

    text = _scrape(client)
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    got = _samples(text)
    web1 = (("cluster", "web"), ("counter", "load1"), ("jvm", ""), ("kind", "ssh"), ("node", "web-1"))
    assert got[("pyscaler_sample_value", web1)] == 0.75  # the newest, not the older 0.1
    assert got[("pyscaler_sample_timestamp_seconds", web1)] == newest.timestamp()
    web2_heap = (("cluster", "web"), ("counter", "heap_used"), ("jvm", "tomcat"), ("kind", "jmx"), ("node", "web-2"))
    assert got[("pyscaler_sample_value", web2_heap)] == 2.5e8
    # No sample, no series: a missing value is never exported as 0.
    assert not any(name == "pyscaler_sample_value" and ("node", "web-2") in labels and ("counter", "load1") in labels
                   for name, labels in got)
    assert got[("pyscaler_threshold", (("cluster", "web"), ("counter", "load1"), ("jvm", ""),
                                                ("kind", "ssh")))] == 1.5
    assert got[("pyscaler_collection_consecutive_failures", (("cluster", "web"), ("kind", "ssh"),
                                                               ("node", "web-2")))] >= 1
    assert got[("pyscaler_executions", (("cluster", "web"), ("status", "pending")))] == 1
    assert got[("pyscaler_nodes", (("cluster", "web"), ("state", "running")))] == 2
    assert got[("pyscaler_sample_store_up", ())] == 1
    lag = got[("pyscaler_evaluator_lag_seconds", (("cluster", "web"), ("trigger", "high-load")))]
    assert 0 <= lag < 120


def test_memcached_down_shows_as_store_down_not_as_zeros(client, metrics_on, console_world, settings):
    from devservers.memcached import MemcachedServer

    settings.MEMCACHED_SERVERS = [MemcachedServer().address]  # nothing listens there
    got = _samples(_scrape(client))
    assert got[("pyscaler_sample_store_up", ())] == 0
    assert not any(name == "pyscaler_sample_value" for name, _ in got)
