"""A third counter source plugs in through the registry alone.

The "constant" source (tests/monitoring/constant: model, CounterSource,
registration in its AppConfig.ready, installed by tests/settings.py) is named
by no module of apps/. Here it goes the whole way: dispatched by the real
dispatcher, collected by a real collect run (in this process, and by a real
Celery worker), stored under its own keys in real memcached, counted by the
evaluator until its trigger fires, and served by the series API and pages.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from django.urls import reverse

from apps.control.breach import DEFAULT_GRACE_S
from apps.control.evaluator import Evaluator
from apps.control.models import Cluster, Execution, Node, Trigger
from apps.monitoring import collection, sources, tasks
from apps.monitoring.health import get_health
from apps.monitoring.models import CollectionHealth
from apps.monitoring.samples import SeriesRef, floor_stamp, format_stamp
from apps.monitoring.store import SampleStore
from tests.monitoring.constant.models import ConstantCounter
from tests.monitoring.constant.source import KEY_PREFIX, ConstantSource

INTERVAL = 10


@pytest.fixture
def world():
    cluster = Cluster.objects.create(name="const", max_size=5)
    nodes = [Node.objects.create(cluster=cluster, name=f"const-{i}", address=f"127.0.0.{i}") for i in (1, 2)]
    counter = ConstantCounter.objects.create(cluster=cluster, name="answer", value=7.5, threshold=5,
                                             interval_s=INTERVAL, unit="u")
    trigger = Trigger.objects.create(cluster=cluster, name="hot", timing_minutes=0, cooldown_s=300)
    counter.triggers.add(trigger)
    # The trigger has counted since before the rounds these tests dispatch
    # (it counts no sample stamped before it started: Trigger.counting_since).
    started = floor_stamp(datetime.now(timezone.utc), INTERVAL) - timedelta(seconds=INTERVAL)
    Trigger.objects.filter(pk=trigger.pk).update(counting_since=started)
    trigger.refresh_from_db()
    return cluster, nodes, counter, trigger


@pytest.fixture
def store(memcached_clean, settings, tmp_path):
    settings.MEMCACHED_SERVERS = memcached_clean
    settings.SAMPLE_LOG_DIR = tmp_path / "samples"
    collection._store.cache_clear()
    collection._sample_log.cache_clear()
    yield SampleStore.from_settings()
    collection._store.cache_clear()
    collection._sample_log.cache_clear()


def _key(node, counter, stamp=None) -> str:
    base = f"{KEY_PREFIX}.{node.pk}.{counter.pk}"
    return base if stamp is None else f"{base}.{format_stamp(stamp)}"


def _dispatch(now: datetime, enqueue=None) -> list[tuple[dict, str]]:
    sent: list[tuple[dict, str]] = []

    def keep(message, at, expires):
        sent.append((json.loads(json.dumps(message)), at))  # as Celery's JSON carries it
        if enqueue is not None:
            enqueue(message, at, expires)

    collection.dispatch_round(now, keep)
    return sent


def test_the_source_is_registered_by_its_app_alone() -> None:
    source = sources.get("constant")
    assert isinstance(source, ConstantSource) and source.model is ConstantCounter
    assert sources.kinds()[-1] == "constant"  # after SSH and JMX: INSTALLED_APPS order
    assert SeriesRef("constant", 1, 2).count_key == f"{KEY_PREFIX}.1.2"
    with pytest.raises(ValueError, match="has no jvm_id"):
        SeriesRef("constant", 1, 2, jvm_id=3)


@pytest.mark.dbbackends  # health rows of a kind longer than SSH's and JMX's, the source's own link table
@pytest.mark.django_db
def test_dispatched_collected_stored_evaluated_and_served(world, store, operator_client) -> None:
    cluster, nodes, counter, trigger = world
    stamp = floor_stamp(datetime.now(timezone.utc), INTERVAL)
    now = stamp + timedelta(seconds=1)

    # Dispatched: the message carries the source's rows and each node's due ids.
    [(message, at)] = _dispatch(now)
    assert [row["value"] for row in message[source_table()]] == [7.5]
    assert [(n["id"], n["constant"]) for n in message["nodes"]] == [(n.pk, [counter.pk]) for n in nodes]

    # Collected and stored under the source's own keys.
    report = collection.collect_message(message, datetime.fromisoformat(at))
    assert report.as_dict() == {"samples": 2, "errors": 0, "stored": 2}
    keys = [_key(n, counter, stamp) for n in nodes]
    assert store.get_many(keys) == {key: "7.5" for key in keys}
    health = get_health([n.pk for n in nodes])
    assert all(health[n.pk].endpoints[("constant", None)].ok for n in nodes)

    # Evaluated: 7.5 >= 5 at the first sample (timing 0) fires the trigger
    # (once the stamp before it has settled: its absence is then final).
    result = Evaluator(store=store).run(stamp + timedelta(seconds=DEFAULT_GRACE_S + 1))
    assert [f.trigger_id for f in result.fired] == [trigger.pk]
    [execution] = Execution.objects.filter(trigger=trigger)
    [breach] = [b for b in execution.reasons["breaches"] if b["node_id"] == nodes[0].pk]
    last_value = breach["values"][-1]["value"]
    assert (breach["kind"], breach["counter_id"], last_value) == ("constant", counter.pk, 7.5)
    # The firing reset both nodes' breach counts, stored under the count keys.
    states = store.get_many([_key(n, counter) for n in nodes])
    assert set(states) == {_key(n, counter) for n in nodes}

    # Served: the series API and the graph and cluster pages.
    query = {"kind": "constant", "counter": counter.pk, "range": "15m"}
    body = operator_client.get("/api/v1/series", query).json()
    assert body["counter"] == {"id": counter.pk, "kind": "constant", "name": "answer", "cluster": "const",
                               "jvm": None, "unit": "u", "threshold": 5.0, "comparison": ">=",
                               "interval_s": INTERVAL}
    index = body["stamps"].index(int(stamp.timestamp()))
    assert {s["node"]: s["values"][index] for s in body["series"]} == {"const-1": 7.5, "const-2": 7.5}
    page = operator_client.get(reverse("monitoring:graph", args=["constant", counter.pk]))
    assert page.status_code == 200 and "Constant counter" in page.content.decode()
    assert "always 7.5" in page.content.decode()
    overview = operator_client.get(reverse("console:cluster", args=[cluster.name]))
    assert overview.status_code == 200 and "answer" in overview.content.decode()


def source_table() -> str:
    return sources.get("constant").message_table


@pytest.mark.slow
def test_a_real_worker_collects_the_dispatched_source(celery_worker, world, memcached_clean,
                                                      settings) -> None:
    """The dispatcher's tasks go through the broker to the session's worker
    process, which knows the source from its own registration."""
    settings.MEMCACHED_SERVERS = memcached_clean  # the worker's memcached pair
    collection._store.cache_clear()
    try:
        cluster, nodes, counter, trigger = world
        stamp = floor_stamp(datetime.now(timezone.utc), INTERVAL)
        sent = _dispatch(stamp + timedelta(seconds=1), enqueue=tasks._enqueue)
        assert len(sent) == 1
        store = SampleStore(memcached_clean, retention_s=600)
        keys = [_key(n, counter, stamp) for n in nodes]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(store.get_many(keys)) < len(keys):
            time.sleep(0.1)
        assert store.get_many(keys) == {k: "7.5" for k in keys}
        rows = CollectionHealth.objects.filter(kind="constant", node__in=nodes, counter_id=counter.pk)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and rows.count() < len(nodes):
            time.sleep(0.1)
        assert sorted(rows.values_list("node_id", "consecutive_failures")) == sorted((n.pk, 0) for n in nodes)
        result = Evaluator(store=store).run(stamp + timedelta(seconds=DEFAULT_GRACE_S + 1))
        assert [f.trigger_id for f in result.fired] == [trigger.pk]
    finally:
        collection._store.cache_clear()
