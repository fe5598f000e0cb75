"""Across the raw/summary boundary: a counter whose older periods exist only
as summaries and whose newer periods exist only as samples in (a real)
memcached — history switched on late, a summarise task still queued — is one
continuous series in /api/v1/summaries and /api/v1/summaries/graph, the raw
periods folded into the same figures the summaries would hold; with
memcached stopped the answer is the summaries alone and says why."""
from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from apps.history import ingest
from apps.monitoring.samples import Sample

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]

INTERVAL = 10
NOW = datetime.now(UTC)
#: Hour-aligned: older samples are summarised, newer ones only in memcached.
BOUNDARY = int(NOW.timestamp()) // 3600 * 3600 - 2 * 3600
FIRST = BOUNDARY - 3 * 3600
#: The raw samples end two whole minutes before now (the last period is whole).
LAST = (int(NOW.timestamp()) // 60 - 2) * 60


def _value(node_index: int, stamp: int) -> float:
    """Whole numbers (sums are exact), varying within each minute and hour."""
    return float(10 * node_index + (stamp // INTERVAL) % 6 + (stamp // 3600) % 3)


@pytest.fixture
def seam(console_world, sample_store):
    w = console_world
    samples = {i: [(t, _value(i, t)) for t in range(FIRST, LAST, INTERVAL)] for i in range(2)}
    ingest.apply_rows([("ssh", w.nodes[i].pk, 0, w.load.pk, t, v)
                       for i in samples for t, v in samples[i] if t < BOUNDARY], batch_id="old")
    written = sample_store.put_many(
        Sample(_ref(w, i), datetime.fromtimestamp(t, UTC), v)
        for i in samples for t, v in samples[i] if t >= BOUNDARY)
    assert written == 2 * (LAST - BOUNDARY) // INTERVAL
    return w, samples


def _ref(world, index):
    from apps.monitoring import sources

    return sources.get("ssh").series(world.load, world.nodes[index].pk)


def _expected(values: list[float]) -> dict:
    return {"count": len(values), "min": min(values), "max": max(values), "avg": statistics.fmean(values),
            "stddev": statistics.pstdev(values)}


def _periods(samples: list[tuple[int, float]], step: int) -> dict[int, dict]:
    by_period: dict[int, list[float]] = {}
    for t, v in samples:
        by_period.setdefault(t - t % step, []).append(v)
    return {p: _expected(vs) for p, vs in by_period.items()}


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _same(got: dict, want: dict) -> bool:
    return ((got["count"], got["min"], got["max"], got["avg"]) == (want["count"], want["min"], want["max"], want["avg"])
            and math.isclose(got["stddev"], want["stddev"], rel_tol=1e-9, abs_tol=1e-9))


@pytest.mark.parametrize("step", ["1h", "1m"])
def test_summaries_read_across_the_boundary_as_one_series(operator_client, seam, step):
    w, samples = seam
    step_s = {"1h": 3600, "1m": 60}[step]
    body = operator_client.get("/api/v1/summaries", {"kind": "ssh", "counter": w.load.pk, "from": _iso(FIRST),
                                                     "to": _iso(LAST - 1), "step": step}).json()
    raw_periods = 0
    for i, node in enumerate(body["series"]):
        want = _periods(samples[i], step_s)
        got = {p["start"]: p for p in node["periods"]}
        assert sorted(got) == sorted(want) == list(range(FIRST, LAST, step_s)), "no hole at the boundary"
        bad = [p for p in want if not _same(got[p], want[p])]
        assert not bad, f"{node['node']}: figures differ at {bad[:3]}: {got[bad[0]]} != {want[bad[0]]}"
        raw_periods += sum(1 for p in want if p >= BOUNDARY)
    # Keys: each raw period whole (the newest hour up to now, where nothing is stored yet).
    assert body["raw"]["keys_read"] >= 2 * (LAST - BOUNDARY) // INTERVAL
    assert (body["raw"]["periods"], body["raw"]["capped"], body["raw"]["error"]) == (raw_periods, False, None)


def test_the_graph_reads_across_the_boundary_without_a_hole(operator_client, seam):
    w, samples = seam
    body = operator_client.get("/api/v1/summaries/graph", {"kind": "ssh", "counter": w.load.pk,
                                                           "from": _iso(FIRST), "to": _iso(LAST - 1)}).json()
    assert body["step_s"] == 60 and body["resolution"] == "1m"
    want = _periods(samples[0] + samples[1], 60)
    band = body["band"]
    for i, stamp in enumerate(body["stamps"]):
        got = {"count": band["samples"][i], "min": band["min"][i], "max": band["max"][i], "avg": band["p50"][i]}
        expected = {k: want[stamp][k] for k in ("count", "min", "max", "avg")}
        assert got == expected, f"period {stamp - BOUNDARY:+d} s from the boundary"
        assert band["count"][i] == 2
    assert body["raw"]["periods"] == (LAST - BOUNDARY) // 60 and body["raw"]["error"] is None

    # The 7-day graph too: every period from the first summary to the last sample has samples.
    week = operator_client.get("/api/v1/summaries/graph", {"kind": "ssh", "counter": w.load.pk,
                                                          "range": "7d"}).json()
    step = week["step_s"]
    inside = [s for i, s in enumerate(week["stamps"]) if FIRST <= s and s + step <= LAST]
    holes = [s for s in inside if week["band"]["samples"][week["stamps"].index(s)] == 0]
    assert inside and not holes
    assert week["raw"]["periods"] > 0


def test_only_missing_periods_within_retention_are_read_newest_first_up_to_the_cap(operator_client, seam,
                                                                                    settings):
    w, _ = seam
    query = {"kind": "ssh", "counter": w.load.pk, "from": _iso(FIRST), "to": _iso(LAST - 1), "step": "1m"}
    settings.HISTORY_RAW_FILL_MAX_KEYS = 2 * 6 * 30  # 30 minutes of two nodes
    body = operator_client.get("/api/v1/summaries", query).json()
    assert body["raw"]["capped"] and body["raw"]["keys_read"] == 360 and body["raw"]["periods"] == 60
    starts = [p["start"] for p in body["series"][0]["periods"] if p["start"] >= BOUNDARY]
    assert starts == list(range(LAST - 30 * 60, LAST, 60)), "the newest 30 minutes"

    settings.HISTORY_RAW_FILL_MAX_KEYS = 100_000
    settings.SAMPLE_RETENTION_S = int(datetime.now(UTC).timestamp()) - (BOUNDARY + 3600)  # the last hour, from now
    body = operator_client.get("/api/v1/summaries", query).json()
    starts = [p["start"] for p in body["series"][0]["periods"] if p["start"] >= BOUNDARY]
    assert BOUNDARY + 3600 <= starts[0] <= BOUNDARY + 3600 + 120 and not body["raw"]["capped"]
    assert starts == list(range(starts[0], LAST, 60))

    settings.HISTORY_RAW_FILL_MAX_KEYS = 0  # no fill
    body = operator_client.get("/api/v1/summaries", query).json()
    assert body["raw"] == {"periods": 0, "keys_read": 0, "capped": False, "error": None}
    assert max(p["start"] for p in body["series"][0]["periods"]) < BOUNDARY


def test_with_memcached_stopped_the_summaries_answer_and_say_why(operator_client, seam, settings, make_memcached):
    w, samples = seam
    down = make_memcached()
    down.stop()
    settings.MEMCACHED_SERVERS = [down.address]
    query = {"kind": "ssh", "counter": w.load.pk, "from": _iso(FIRST), "to": _iso(LAST - 1)}

    response = operator_client.get("/api/v1/summaries", {**query, "step": "1h"})
    assert response.status_code == 200
    body = response.json()
    assert body["raw"]["periods"] == 0 and body["raw"]["error"].startswith("memcached unavailable")
    starts = [p["start"] for p in body["series"][0]["periods"]]
    assert starts == list(range(FIRST, BOUNDARY, 3600))
    assert _same(body["series"][0]["periods"][0], _periods(samples[0], 3600)[FIRST])

    graph = operator_client.get("/api/v1/summaries/graph", query)
    assert graph.status_code == 200
    body = graph.json()
    assert body["raw"]["error"].startswith("memcached unavailable")
    filled = [s for s, n in zip(body["stamps"], body["band"]["samples"]) if n]
    assert filled == list(range(FIRST, BOUNDARY, 60))

    csv = operator_client.get("/api/v1/summaries", {**query, "step": "1h", "format": "csv"})
    assert csv.status_code == 200 and len(csv.content.decode().splitlines()) == 1 + 2 * 3


def test_the_answers_describe_raw(operator_client, console_world):
    schema = operator_client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    for name in ("Summaries", "HistoryGraph"):
        assert schema[name]["properties"]["raw"]["$ref"].endswith("/RawFill"), name
    assert set(schema["RawFill"]["properties"]) == {"periods", "keys_read", "capped", "error"}
    assert schema["RawFill"]["properties"]["error"]["nullable"] is True


def _graph_config(client, counter) -> dict:
    import json
    import re

    page = client.get(f"/graphs/ssh/{counter.pk}/").content.decode()
    return json.loads(re.search(r'<script id="graph-config" type="application/json">(.*?)</script>', page, re.DOTALL)[1])


def test_a_short_range_older_than_memcached_goes_to_the_summaries(operator_client, console_world, settings):
    from apps.web.api.history_graph import from_summaries

    settings.SAMPLE_RETENTION_S = 2 * 86400
    config = _graph_config(operator_client, console_world.load)
    assert (config["rawUpToS"], config["rawFromS"]) == (86400, 2 * 86400)
    retention = config["rawFromS"]
    hour = timedelta(hours=1)
    week_ago = NOW - timedelta(days=7)
    assert from_summaries(week_ago, week_ago + hour, NOW, retention), "one hour a week ago"
    assert not from_summaries(NOW - hour, NOW, NOW, retention), "the last hour: raw"
    assert from_summaries(NOW - timedelta(hours=25), NOW, NOW, retention), "longer than 24 h"
    assert not from_summaries(NOW - timedelta(days=1), NOW, NOW, retention)
    assert from_summaries(NOW - timedelta(days=2, minutes=1), NOW - timedelta(days=1, hours=12), NOW, retention)
