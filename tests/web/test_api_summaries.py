"""GET /api/v1/summaries: per-period figures read from the persisted
summaries, validated like /api/v1/series, in JSON and CSV."""
from __future__ import annotations

import csv
import io
import math
import statistics
from datetime import datetime, timedelta, timezone

import pytest

from apps.history import ingest

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]

NOW = datetime.now(timezone.utc)
DAY0 = int((NOW - timedelta(days=3)).timestamp()) // 86400 * 86400


def _load(world, node_index: int, start: int, values: list[float], every: int = 10) -> list:
    return [("ssh", world.nodes[node_index].pk, 0, world.load.pk, start + every * i, v) for i, v in enumerate(values)]


@pytest.fixture
def history(console_world):
    w = console_world
    # Day 0: two hours of node 0; day 1: one minute of node 1. Merged as two batches.
    first = _load(w, 0, DAY0 + 3600, [1.0, 2.0, 6.0]) + _load(w, 0, DAY0 + 7200, [4.0])
    ingest.apply_rows(first, batch_id="a")
    ingest.apply_rows(_load(w, 1, DAY0 + 86400, [5.0, 7.0]), batch_id="b")
    return w


def _get(client, **params):
    return client.get("/api/v1/summaries", params)


def test_it_answers_per_period_figures_at_each_step(operator_client, history):
    w = history
    start = datetime.fromtimestamp(DAY0, timezone.utc).isoformat()
    body = _get(operator_client, kind="ssh", counter=w.load.pk, **{"from": start}, step="1h").json()
    assert body["step"] == "1h" and body["step_s"] == 3600 and body["counter"]["name"] == "load1"
    by_node = {s["node"]: s["periods"] for s in body["series"]}
    assert [(p["start"] - DAY0, p["count"]) for p in by_node["web-1"]] == [(3600, 3), (7200, 1)]
    hour = by_node["web-1"][0]
    assert (hour["min"], hour["max"], hour["avg"]) == (1.0, 6.0, 3.0)
    assert math.isclose(hour["stddev"], statistics.pstdev([1.0, 2.0, 6.0]))

    days = _get(operator_client, kind="ssh", counter=w.load.pk, range="7d", step="1d").json()
    by_node = {s["node"]: s["periods"] for s in days["series"]}
    assert [(p["start"] - DAY0, p["count"], p["max"]) for p in by_node["web-1"]] == [(0, 4, 6.0)]
    assert [(p["start"] - DAY0 - 86400, p["avg"]) for p in by_node["web-2"]] == [(0, 6.0)]

    minutes = _get(operator_client, kind="ssh", counter=w.load.pk, node=w.nodes[1].pk,
                   **{"from": start, "to": (NOW - timedelta(days=1)).isoformat()}, step="1m").json()
    assert [s["node"] for s in minutes["series"]] == ["web-2"]
    assert [p["count"] for p in minutes["series"][0]["periods"]] == [2]


def test_csv_has_a_row_per_node_and_period(operator_client, history):
    response = _get(operator_client, kind="ssh", counter=history.load.pk, range="7d", step="1h", format="csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["node_id", "node", "start", "count", "min", "max", "avg", "stddev"]
    assert [r[1:4] for r in rows[1:]] == [
        ["web-1", datetime.fromtimestamp(DAY0 + 3600, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "3"],
        ["web-1", datetime.fromtimestamp(DAY0 + 7200, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "1"],
        ["web-2", datetime.fromtimestamp(DAY0 + 86400, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "2"],
    ]


@pytest.mark.parametrize(("params", "field"), [
    ({}, "kind"),
    ({"kind": "nope", "counter": 1}, "kind"),
    ({"kind": "ssh", "counter": "x"}, "counter"),
    ({"kind": "ssh", "counter": "999999"}, "counter"),
    ({"kind": "ssh", "step": "5m"}, "step"),
    ({"kind": "ssh", "range": "2y"}, "range"),
    ({"kind": "ssh", "from": "yesterday"}, "from"),
    ({"kind": "ssh", "from": "2020-01-01T00:00:00Z", "to": "2019-01-01T00:00:00Z"}, "to"),
    ({"kind": "ssh", "from": "2010-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"}, "from"),
    ({"kind": "ssh", "range": "1y", "step": "1m"}, "step"),
    ({"kind": "ssh", "node": "-3"}, "node"),
    ({"kind": "ssh", "format": "xml"}, "format"),
    ({"kind": "ssh", "bogus": "1"}, "bogus"),
])
def test_bad_parameters_are_named(operator_client, console_world, params, field):
    if "counter" not in params and params.get("kind") == "ssh":
        params = {**params, "counter": console_world.load.pk}
    response = _get(operator_client, **params)
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_it_needs_a_login_and_is_described(operator_client, console_world):
    from django.test import Client

    assert Client().get("/api/v1/summaries", {"kind": "ssh", "counter": console_world.load.pk}).status_code in (401, 403)
    schema = operator_client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/summaries"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"kind", "counter", "node", "from", "to", "step", "format"}


def test_the_graph_answer_picks_a_resolution_for_at_most_1500_points(operator_client, history):
    from apps.history.read import graph_step

    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    horizon = now - timedelta(days=30)
    assert graph_step(now - timedelta(hours=25), now, horizon) == 60
    assert graph_step(now - timedelta(days=7), now, horizon) == 420
    assert graph_step(now - timedelta(days=29), now, horizon) == 3600
    assert graph_step(now - timedelta(days=40), now, horizon) == 3600  # past the minutes' retention
    assert graph_step(now - timedelta(days=365), now, horizon) == 6 * 3600

    body = operator_client.get("/api/v1/summaries/graph", {"kind": "ssh", "counter": history.load.pk,
                                                           "range": "7d"}).json()
    assert body["resolution"] == "1m" and body["step_s"] == 420 and len(body["stamps"]) <= 1500
    band = body["band"]
    i = body["stamps"].index((DAY0 + 3600) // 420 * 420)
    assert (band["min"][i], band["p50"][i], band["max"][i], band["samples"][i]) == (1.0, 3.0, 6.0, 3)
    assert band["centre"] == "average" and body["series"] == []
    bad = operator_client.get("/api/v1/summaries/graph", {"kind": "ssh", "counter": history.load.pk, "step": "1m"})
    assert bad.status_code == 400 and "step" in bad.json()
