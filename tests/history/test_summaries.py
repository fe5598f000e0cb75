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
    assert list(AppliedBatch.objects.values_list("batch_id", "cluster_id", "samples")) == [
        (f"b1@{node.cluster_id}", node.cluster_id, 6)]


@pytest.fixture
def two_clusters(node):
    other = Node.objects.create(cluster=Cluster.objects.create(name="hist2"), name="h2", address="127.0.0.1")
    return node, other


def _batch(first, second):
    return ([("ssh", first.pk, 0, 5, T0 + 10 * i, float(i)) for i in range(6)]
            + [("ssh", second.pk, 0, 5, T0 + 10 * i, float(10 * i)) for i in range(3)])


def _counts():
    return dict(MinuteSummary.objects.values_list("cluster_id", "count"))


@pytest.mark.dbbackends
def test_a_batch_delivered_again_after_a_partial_merge_merges_only_the_missing_cluster(two_clusters):
    """One cluster's part of the batch committed (the other's was on a
    database that failed, or deferred): the redelivery merges the other."""
    first, second = two_clusters
    batch = _batch(first, second)
    clusters = ingest.clusters_of(row[1] for row in batch)
    assert ingest.merge_into("default", batch[:6], clusters, "b", now=_now()) == 2
    assert ingest.apply_rows(batch, batch_id="b", now=_now()) == 2  # the second cluster's minute and hour
    assert ingest.apply_rows(batch, batch_id="b", now=_now()) == 0
    assert _counts() == {first.cluster_id: 6, second.cluster_id: 3}
    assert sorted(AppliedBatch.objects.values_list("batch_id", "samples")) == sorted(
        [(f"b@{first.cluster_id}", 6), (f"b@{second.cluster_id}", 3)])


@pytest.mark.dbbackends
def test_a_deferred_part_and_its_redelivered_batch_merge_each_cluster_once(two_clusters):
    """The deferred part claims under the batch's own id, whichever of the
    two arrives first."""
    first, second = two_clusters
    batch = _batch(first, second)
    assert ingest.apply_rows(batch[6:], batch_id="d~deferred", now=_now()) == 2  # the second cluster, deferred
    assert ingest.apply_rows(batch, batch_id="d", now=_now()) == 2  # the original again: only the first cluster
    assert ingest.apply_rows(batch[6:], batch_id="d~deferred", now=_now()) == 0
    assert _counts() == {first.cluster_id: 6, second.cluster_id: 3}
    assert ingest.deferred_id("d~deferred") == ingest.deferred_id("d") == "d~deferred"


@pytest.mark.dbbackends
def test_a_claim_written_before_per_cluster_claims_covers_every_cluster_of_its_batch(two_clusters):
    first, second = two_clusters
    AppliedBatch.objects.create(batch_id="old", samples=9)  # as 0002 wrote it: no cluster
    assert ingest.apply_rows(_batch(first, second), batch_id="old", now=_now()) == 0
    assert ingest.apply_rows(_batch(first, second), batch_id="new", now=_now()) == 4
    assert _counts() == {first.cluster_id: 6, second.cluster_id: 3}


def test_a_batch_id_too_long_for_its_claims_is_refused_naming_the_field(node):
    rows = [("ssh", node.pk, 0, 5, T0, 1.0)]
    with pytest.raises(ValueError, match="batch_id: 'xxx.*must fit in 100 characters"):
        ingest.apply_rows(rows, batch_id="x" * 99, now=_now())
    assert not MinuteSummary.objects.exists()


@pytest.mark.dbbackends
def test_maintenance_forgets_claims_old_and_new_after_the_set_days(two_clusters, settings):
    first, second = two_clusters
    settings.HISTORY_BATCH_ID_DAYS = 7
    AppliedBatch.objects.create(batch_id="old", samples=9, applied_at=_now() - timedelta(days=8))
    AppliedBatch.objects.create(batch_id="recent", samples=9, applied_at=_now() - timedelta(days=6))
    ingest.apply_rows(_batch(first, second), batch_id="b", now=_now())
    AppliedBatch.objects.filter(batch_id__startswith="b@").update(applied_at=_now() - timedelta(days=8))
    report = maintenance.run(now=_now())
    assert report["default"]["batch_ids_forgotten"] == 3
    assert list(AppliedBatch.objects.values_list("batch_id", flat=True)) == ["recent"]


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


@pytest.mark.dbbackends
@pytest.mark.postgresql
def test_a_copy_recreates_a_partition_dropped_behind_its_back(node, settings):
    """move._write and ingest.merge_into trust a per-process list of
    partitions; one dropped since (retention run by another process) is
    created again, not an error."""
    from django.db import connection

    from apps.history import partitions
    from apps.history.move import _write

    ingest.apply_rows([("ssh", node.pk, 0, 5, T0, 2.0)], now=_now())
    row = MinuteSummary.objects.get()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE history_minutesummary_d20261130")
    assert "history_minutesummary_d20261130" not in partitions.existing(MinuteSummary, "default")
    assert _write(MinuteSummary, "default", [row]) == 1
    assert MinuteSummary.objects.get().count == 1


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


@pytest.mark.dbbackends
@pytest.mark.django_db(transaction=True)
def test_upgrading_to_per_cluster_claims_keeps_a_merged_batch_merged():
    """A batch claimed by 0002 (plain id) and delivered again after 0003 is
    not merged a second time; the widened key holds a long claim."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("history", "0002_cluster_placement")])
    executor.loader.build_graph()
    old_model = executor.loader.project_state([("history", "0002_cluster_placement")]).apps.get_model(
        "history", "AppliedBatch")
    old_model.objects.create(batch_id="a" * 32 + "~deferred", samples=3)
    executor.migrate([("history", "0003_applied_batch_per_cluster")])
    node = Node.objects.create(cluster=Cluster.objects.create(name="up"), name="u1", address="127.0.0.1")
    rows = [("ssh", node.pk, 0, 5, T0, 1.0)]
    assert ingest.apply_rows(rows, batch_id="a" * 32 + "~deferred", now=_now()) == 0
    assert ingest.apply_rows(rows, batch_id="b" * 80, now=_now()) == 2
    assert AppliedBatch.objects.get(cluster_id=node.cluster_id).batch_id == "b" * 80 + f"@{node.cluster_id}"
