"""End to end with the real servers: a beat and a Celery worker collect a
cluster; the summaries are written from the collection path, and they survive
memcached restarted empty and the worker killed (a new worker carries on, no
batch merged twice)."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from django.db.models import Max, Sum

from apps.control.models import Cluster, Node
from apps.history.models import HourSummary, MinuteSummary
from apps.monitoring.store import SampleStore
from tests.monitoring.constant.models import ConstantCounter

pytestmark = pytest.mark.slow
INTERVAL = 1


def _samples(node_ids) -> int:
    return HourSummary.objects.filter(node_id__in=node_ids).aggregate(n=Sum("count"))["n"] or 0


def _wait_for_more(node_ids, than: int, what: str, worker, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = _samples(node_ids)
        if now >= than + 2 * len(node_ids):
            return now
        time.sleep(0.3)
    pytest.fail(f"no new summaries {what} (still {_samples(node_ids)})\nworker log:\n{worker.log_tail()}")


def test_summaries_survive_memcached_restarted_empty_and_a_killed_worker(make_celery_worker, celery_beat,
                                                                        make_memcached):
    cluster = Cluster.objects.create(name="history-e2e")
    nodes = [Node.objects.create(cluster=cluster, name=f"h{i}", address=f"127.0.0.{i + 1}") for i in range(2)]
    counter = ConstantCounter.objects.create(cluster=cluster, name="answer", value=4.5, threshold=100,
                                             interval_s=INTERVAL)
    ids = [n.pk for n in nodes]
    memcached = make_memcached()
    env = {"MEMCACHED_SERVERS": memcached.address, "COLLECT_TICK_S": "0.5", "EVALUATE_TICK_S": "0",
           "COLLECT_AFFINITY": "false", "HISTORY_ENABLED": "true"}
    worker = make_celery_worker(isolated=True, env=env)
    started = datetime.now(timezone.utc)
    celery_beat(worker)
    seen = _wait_for_more(ids, 0, "from the first worker", worker)
    before_restart = datetime.now(timezone.utc)  # not earlier: samples may have come within a second of the start

    memcached.restart()
    old = SampleStore([memcached.address], retention_s=60).read_series(
        SeriesRefFor(counter, ids[0]), INTERVAL, started, before_restart)
    assert old and all(value is None for _, value in old)  # memcached lost every sample
    assert _samples(ids) >= seen  # the summaries do not live in memcached
    seen = _wait_for_more(ids, _samples(ids), "after memcached restarted empty", worker)

    worker.kill()  # the worker host is lost
    replacement = make_celery_worker(isolated=True, env=env)
    assert _samples(ids) >= seen
    _wait_for_more(ids, _samples(ids), "from the replacement worker", replacement)

    # Never more samples in a period than rounds in it: nothing merged twice.
    per_minute = MinuteSummary.objects.filter(node_id__in=ids).aggregate(most=Max("count"))["most"]
    assert per_minute <= 60 // INTERVAL
    row = MinuteSummary.objects.filter(node_id=ids[0]).first()
    assert (row.min, row.max, row.last, row.cluster_id, row.kind) == (4.5, 4.5, 4.5, cluster.pk, "constant")
    assert row.sum == pytest.approx(4.5 * row.count) and row.sumsq == pytest.approx(4.5 ** 2 * row.count)


def SeriesRefFor(counter, node_id):  # noqa: N802 - reads like the class it builds
    from apps.monitoring import sources

    return sources.get("constant").series(counter, node_id)
