"""HISTORY_DATABASES with two real PostgreSQL servers (the machine's, and a
cluster the test harness starts on its own port) beside the configuration
database: each cluster's summaries on one server, recorded at first write;
adding a server moves nothing; move_history interrupted (the target server
down mid-move) and resumed copies, verifies, switches and deletes."""
from __future__ import annotations

import io
import os
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from django.core.management import call_command
from django.db import OperationalError, connections

from apps.control.models import Cluster, Node
from apps.history import ingest, partitions
from apps.history.models import AppliedBatch, ClusterPlacement, HourSummary, MinuteSummary, Placement
from apps.history.move import MoveError, figures, move
from apps.history.read import SeriesSpec, read_periods

pytestmark = pytest.mark.slow
SHARED = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
T0 = int((datetime.now(timezone.utc) - timedelta(hours=3)).timestamp()) // 3600 * 3600


def _alias_settings(host: str, port: int, name: str) -> dict:
    return {"ENGINE": "django.db.backends.postgresql", "NAME": name, "USER": "postgres", "PASSWORD": "",
            "HOST": host, "PORT": str(port)}


def _add_alias(alias: str, config: dict) -> None:
    """A database alias made while the test runs (Django's test case allows
    such "dynamically created" connections; configured ones it had not been
    told about it refuses)."""
    from django.db.utils import load_backend

    configured = connections.configure_settings({"default": dict(connections.settings["default"]), alias: config})
    wrapper = load_backend(config["ENGINE"]).DatabaseWrapper(configured[alias], alias)
    setattr(connections._connections, alias, wrapper)
    call_command("migrate", "history", database=alias, verbosity=0)


@pytest.fixture
def two_servers(db, postgres_server, settings):
    name = f"pyscaler_hist_{os.getpid()}"
    with psycopg.connect(**SHARED, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    _add_alias("hista", _alias_settings("127.0.0.1", 5432, name))
    _add_alias("histb", _alias_settings(postgres_server.host, postgres_server.port, "postgres"))
    settings.HISTORY_DATABASES = ["hista", "histb"]
    settings.HISTORY_MOVE_SETTLE_S = 0
    yield postgres_server
    for alias in ("hista", "histb"):
        partitions.forget(alias)  # the next test's databases under these names are new
        connections[alias].close()
        delattr(connections._connections, alias)
    with psycopg.connect(**SHARED, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cluster(name: str):
    cluster = Cluster.objects.create(name=name)
    node = Node.objects.create(cluster=cluster, name=f"{name}-1", address="127.0.0.1")
    return cluster, node


def _rows(node, count: int, start: int = T0) -> list:
    return [("ssh", node.pk, 0, 9, start + 30 * i, float(i % 7)) for i in range(count)]


def test_each_cluster_lives_on_one_server_and_moves_resumably(two_servers, settings, celery_broker_url):
    old, old_node = _cluster("old")
    ingest.apply_rows(_rows(old_node, 400), batch_id="first")
    assert ClusterPlacement.objects.get(cluster_id=old.pk).alias == "hista"
    assert MinuteSummary.objects.using("hista").filter(cluster_id=old.pk).count() == 200
    assert not MinuteSummary.objects.using("histb").exists()

    settings.HISTORY_DATABASES = ["histb", "hista"]  # a new server takes new clusters
    new, new_node = _cluster("new")
    ingest.apply_rows(_rows(new_node, 10) + _rows(old_node, 2, T0 + 400 * 30), batch_id="second")
    assert ClusterPlacement.objects.get(cluster_id=new.pk).alias == "histb"
    assert ClusterPlacement.objects.get(cluster_id=old.pk).alias == "hista"  # old data never moves by itself
    assert MinuteSummary.objects.using("histb").filter(cluster_id=new.pk).count() == 5
    before = figures("hista", old.pk)
    assert before["history_minutesummary"] == (201, 402)

    two_servers.stop()  # the target server goes down in the middle of the move
    connections["histb"].close()
    with pytest.raises(Exception):
        move(old.pk, "histb", say=lambda _: None)
    placement = ClusterPlacement.objects.get(cluster_id=old.pk)
    assert (placement.state, placement.alias, placement.target) == (Placement.FROZEN, "hista", "histb")
    assert ingest.apply_rows(_rows(old_node, 4, T0 + 500 * 30), batch_id="during") == 0  # deferred, not lost
    assert figures("hista", old.pk) == before
    with pytest.raises(MoveError, match="being moved to histb"):
        move(old.pk, "hista", say=lambda _: None)

    two_servers.start()
    out = io.StringIO()
    call_command("move_history", str(old.pk), "histb", stdout=out)  # resumed, as an operator would
    said = out.getvalue().splitlines()
    assert any("verified" in line for line in said) and said[-1] == f"cluster {old.pk}: moved to histb"
    placement.refresh_from_db()
    assert (placement.state, placement.alias, placement.source) == (Placement.PLACED, "histb", "")
    assert figures("histb", old.pk) == before
    assert figures("hista", old.pk) == {"history_minutesummary": (0, 0), "history_hoursummary": (0, 0)}
    claims = AppliedBatch.objects.using("histb").filter(cluster_id=old.pk).count()
    assert claims == 2 and f"cluster {old.pk}: copied 2 claim(s) of merged batches to histb" in said
    spec = SeriesSpec("ssh", 9, 0, old.pk)
    start = datetime.fromtimestamp(T0, timezone.utc)
    hours = read_periods(spec, [old_node.pk], start, start + timedelta(hours=5), 3600)[old_node.pk]
    assert sum(s.count for s in hours.values()) == 402  # read from histb alone
    assert ingest.apply_rows(_rows(old_node, 2, T0 + 600 * 30), batch_id="after") == 2
    assert HourSummary.objects.using("histb").filter(cluster_id=old.pk).count() >= 1


def test_a_batch_over_two_servers_merged_in_part_then_moved_is_merged_once_per_cluster(two_servers):
    """Issue 13's gap: batch "b" holds rows of x (on hista) and y (on histb);
    the worker merges x's part, then histb is down and y's part fails (the
    worker dies before acknowledging). x is moved to histb; Celery delivers
    "b" again: y's part must be merged now (not skipped because x's claim
    of "b" came along with the move) and x's not a second time."""
    x, x_node = _cluster("x")
    y, y_node = _cluster("y")
    ClusterPlacement.objects.create(cluster_id=x.pk, alias="hista")
    ClusterPlacement.objects.create(cluster_id=y.pk, alias="histb")
    batch = _rows(x_node, 6) + _rows(y_node, 4)

    two_servers.stop()
    connections["histb"].close()
    with pytest.raises(OperationalError):
        ingest.apply_rows(batch, batch_id="b")
    assert figures("hista", x.pk)["history_minutesummary"] == (3, 6)  # x's part committed on hista
    two_servers.start()
    assert figures("histb", y.pk)["history_minutesummary"] == (0, 0)  # y's part did not

    AppliedBatch.objects.using("hista").create(batch_id="old", samples=5)  # written before per-cluster claims
    AppliedBatch.objects.using("hista").create(batch_id="c@999", cluster_id=999, samples=5)  # another cluster's
    move(x.pk, "histb", say=lambda _: None)
    assert sorted(AppliedBatch.objects.using("histb").values_list("batch_id", "cluster_id")) == [
        (f"b@{x.pk}", x.pk), (f"old@{x.pk}", x.pk)]  # x's claims only; the old one as x's
    assert sorted(AppliedBatch.objects.using("hista").values_list("batch_id", flat=True)) == ["c@999", "old"]
    assert ingest.apply_rows(batch, batch_id="b") == 2 + 1  # the redelivery: y's 2 minute rows and 1 hour row
    assert ingest.apply_rows(batch, batch_id="b") == 0  # and once more: nothing
    assert figures("histb", x.pk)["history_minutesummary"] == (3, 6)
    assert figures("histb", x.pk)["history_hoursummary"] == (1, 6)
    assert figures("histb", y.pk)["history_minutesummary"] == (2, 4)
    assert figures("histb", y.pk)["history_hoursummary"] == (1, 4)
    assert ingest.apply_rows(_rows(x_node, 2, T0 + 3600), batch_id="old") == 0  # the old claim still holds for x
