"""Summaries merged from batches of samples: the numbers, exactly-once
merging of a replayed batch, and the order of batches not mattering."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from apps.control.models import Cluster, Node
from apps.history import ingest, maintenance
from apps.history.models import AppliedBatch, HourSummary, MinuteSummary
from apps.history.read import SeriesSpec, read_periods
from apps.history.summary import Summary, summarise

T0 = int(datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc).timestamp())


def test_it_summarises_per_minute_and_per_hour():
    rows = [("ssh", 1, 0, 5, T0 + 10 * i, float(v)) for i, v in enumerate([3, 1, 4, 1, 5, 9, 2, 6])]
    out = summarise(rows)
    minute0 = out[60][(("ssh", 1, 0, 5), T0)]
    assert (minute0.count, minute0.min, minute0.max, minute0.sum, minute0.sumsq, minute0.last) == (
        6, 1.0, 9.0, 23.0, 133.0, 9.0)
    hour = out[3600][(("ssh", 1, 0, 5), T0)]
    assert hour.count == 8 and hour.last == 6.0 and hour.sum == 31.0
    assert math.isclose(hour.stddev, math.sqrt(sum(v * v for v in [3, 1, 4, 1, 5, 9, 2, 6]) / 8 - (31 / 8) ** 2))


def test_it_leaves_out_values_that_are_not_finite():
    out = summarise([("ssh", 1, 0, 5, T0, float("nan")), ("ssh", 1, 0, 5, T0 + 1, 2.0)])
    assert out[60][(("ssh", 1, 0, 5), T0)].count == 1


def test_merging_keeps_the_newest_last_whatever_the_order():
    a, b = Summary.of(1.0, T0 + 50), Summary.of(7.0, T0 + 10)
    a.merge(b)
    assert a.last == 1.0 and a.count == 2 and a.min == 1.0 and a.max == 7.0


@pytest.fixture
def node(db):
    cluster = Cluster.objects.create(name="hist")
    return Node.objects.create(cluster=cluster, name="h1", address="127.0.0.1")


def _now():
    return datetime.fromtimestamp(T0, tz=timezone.utc) + timedelta(hours=2)


@pytest.mark.dbbackends
def test_a_replayed_batch_is_merged_once(node):
    rows = [("ssh", node.pk, 0, 5, T0 + 10 * i, float(i)) for i in range(6)]
    assert ingest.apply_rows(rows, batch_id="b1", now=_now()) == 2
    assert ingest.apply_rows(rows, batch_id="b1", now=_now()) == 0
    row = MinuteSummary.objects.get(node_id=node.pk)
    assert (row.count, row.min, row.max, row.sum, row.sumsq, row.last) == (6, 0.0, 5.0, 15.0, 55.0, 5.0)
    assert row.cluster_id == node.cluster_id and row.bucket.timestamp() == T0
    assert AppliedBatch.objects.filter(batch_id="b1", samples=6).exists()


@pytest.mark.dbbackends
def test_batches_merge_into_the_same_rows_in_any_order(node):
    later = [("ssh", node.pk, 0, 5, T0 + 50, 10.0), ("jmx", node.pk, 3, 5, T0 + 50, 1.0)]
    earlier = [("ssh", node.pk, 0, 5, T0 + 10, -2.0), ("ssh", node.pk, 0, 5, T0 + 70, 4.0)]
    ingest.apply_rows(later, batch_id="later", now=_now())
    ingest.apply_rows(earlier, batch_id="earlier", now=_now())
    minute = MinuteSummary.objects.get(kind="ssh", node_id=node.pk, bucket=datetime.fromtimestamp(T0, timezone.utc))
    assert (minute.count, minute.min, minute.max, minute.sum, minute.last) == (2, -2.0, 10.0, 8.0, 10.0)
    hour = HourSummary.objects.get(kind="ssh", node_id=node.pk)
    assert (hour.count, hour.min, hour.max, hour.sum, hour.sumsq, hour.last) == (3, -2.0, 10.0, 12.0, 120.0, 4.0)
    assert HourSummary.objects.get(kind="jmx").endpoint_id == 3
    spec = SeriesSpec("ssh", 5, 0, node.cluster_id)
    start = datetime.fromtimestamp(T0, timezone.utc)
    per_day = read_periods(spec, [node.pk], start, start + timedelta(hours=1), 86400)[node.pk]
    assert [(s.count, s.sum) for s in per_day.values()] == [(3, 12.0)]
    per_minute = read_periods(spec, [node.pk], start, start + timedelta(hours=1), 60)[node.pk]
    assert sorted((p - T0, s.count) for p, s in per_minute.items()) == [(0, 2), (60, 1)]


@pytest.mark.dbbackends
def test_samples_older_than_retention_are_left_out_and_expired_rows_go(node, settings):
    settings.HISTORY_MINUTE_RETENTION_DAYS = 1
    old = T0 - 3 * 86400
    ingest.apply_rows([("ssh", node.pk, 0, 5, old, 1.0), ("ssh", node.pk, 0, 5, T0, 2.0)], now=_now())
    assert list(MinuteSummary.objects.values_list("count", flat=True)) == [1]
    assert HourSummary.objects.count() == 2
    report = maintenance.run(now=_now() + timedelta(days=2))
    assert MinuteSummary.objects.count() == 0 and HourSummary.objects.count() == 2
    assert report["default"]["expired"]["history_minutesummary"] == 1


@pytest.mark.dbbackends
@pytest.mark.postgresql
def test_on_postgresql_periods_live_in_partitions_that_retention_drops(node, settings):
    from django.db import connection

    from apps.history import partitions

    settings.HISTORY_MINUTE_RETENTION_DAYS = 2
    ingest.apply_rows([("ssh", node.pk, 0, 5, T0, 2.0)], now=_now())
    names = set(partitions.existing(MinuteSummary, "default"))
    assert "history_minutesummary_d20261130" in names
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM history_minutesummary_d20261130")
        assert cursor.fetchone()[0] == 1
    maintenance.run(now=_now() + timedelta(days=1))  # still within retention
    assert "history_minutesummary_d20261130" in partitions.existing(MinuteSummary, "default")
    assert {"history_minutesummary_d20261201", "history_minutesummary_d20261204"} <= set(
        partitions.existing(MinuteSummary, "default"))
    maintenance.run(now=_now() + timedelta(days=3))
    assert "history_minutesummary_d20261130" not in partitions.existing(MinuteSummary, "default")
    assert MinuteSummary.objects.count() == 0


def test_the_app_registers_its_feed_when_enabled(settings):
    from django.apps import apps as django_apps

    from apps.monitoring import sinks

    settings.HISTORY_ENABLED = True
    try:
        django_apps.get_app_config("history").ready()
        assert "history" in sinks.registered()
    finally:
        sinks.unregister("history")


def test_a_failing_sink_costs_collection_nothing(caplog):
    from apps.monitoring import sinks
    from apps.monitoring.samples import Sample, SeriesRef

    got = []
    sinks.register("test-broken", lambda samples: 1 / 0)
    sinks.register("test-keeper", got.extend)
    try:
        sample = Sample(SeriesRef("ssh", 1, 2), datetime.fromtimestamp(T0, timezone.utc), 1.0)
        sinks.deliver([sample])
    finally:
        sinks.unregister("test-broken")
        sinks.unregister("test-keeper")
    assert got == [sample] and "test-broken failed" in caplog.text
