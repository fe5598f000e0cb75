"""The console and the status API at fleet size (issue 11, item 5): 1,000
nodes x 10 counters in the database, their newest samples in the real
memcached. The overview sums each cluster up (no column per node), the
cluster page searches, sorts and pages its nodes, the API pages with a
maximum page size; sizes stay bounded and query counts do not grow.

The figures follow from tests/web/fleet.py: node i holds i + c/100 on
counter c, nodes 1-3 fail (no samples), the last 7 breach.
"""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.web.api.pagination import MAX_LIMIT
from tests.web.fleet import BREACHING, FAILING, fill_samples, make_fleet

pytestmark = pytest.mark.django_db

KIB = 1024


@pytest.fixture
def fleet(sample_store):
    made = make_fleet(nodes=1000, counters=10)
    fill_samples(made)
    return made


def _rows(body: str) -> list[str]:
    return re.findall(r'<tr data-node="([^"]+)"', body)


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_overview_sums_up_a_1000_node_cluster_in_under_100_kib(operator_client, fleet):
    response = operator_client.get("/")
    body = response.content.decode()
    assert len(response.content) < 100 * KIB, len(response.content) / KIB
    assert "<th>fleet-0001</th>" not in body and 'data-node="' not in body  # no column or row per node
    assert "997 up</span>" in body and f"{FAILING} failing</span>" in body
    row = re.search(r'<tr data-counter="c00">(.*?)</tr>', body, re.S).group(1)
    cells = re.findall(r'<td class="num[^"]*"[^>]*>([^<]*)</td>', row)
    # threshold, nodes, min, median, p95, max, breaching (nearest-rank percentiles of 4..1000)
    assert cells == ["&gt;= 994", "997", "4", "502", "951", "1000", str(BREACHING)], cells
    worst = re.findall(r'data-worst="([^"]+)"', row)
    assert worst == ["fleet-1000", "fleet-0999", "fleet-0998"]
    assert '<td class="num breach">1000</td>' in row and '<td class="num">951</td>' in row


def test_the_overview_costs_the_same_queries_at_10_and_1000_nodes(operator_client, sample_store):
    from apps.control.models import Node

    small = make_fleet(nodes=10, counters=10)
    fill_samples(small)
    at_10 = _queries(operator_client, "/")
    Node.objects.bulk_create(Node(cluster=small.cluster, name=f"fleet-{i:04d}", address=f"127.2.{i // 250}.{i % 250}")
                             for i in range(11, 1001))
    small.nodes = list(Node.objects.filter(cluster=small.cluster).order_by("name"))
    fill_samples(small)
    assert _queries(operator_client, "/") == at_10


def test_the_cluster_page_pages_searches_and_sorts_its_nodes(operator_client, fleet):
    response = operator_client.get("/clusters/fleet/")
    body = response.content.decode()
    assert len(response.content) < 100 * KIB, len(response.content) / KIB
    assert _rows(body) == [f"fleet-{i:04d}" for i in range(1, 51)]
    assert "page <b>1</b> of 20" in body and 'rel="next" href="?page=2#nodes"' in body
    assert "1–50 of 1000" in body
    assert _rows(operator_client.get("/clusters/fleet/?page=20").content.decode())[-1] == "fleet-1000"

    found = operator_client.get("/clusters/fleet/?q=FLEET-099").content.decode()
    assert _rows(found) == [f"fleet-{i:04d}" for i in range(990, 1000)]
    assert "10 matching" in found and "node-pager" not in found
    by_address = operator_client.get("/clusters/fleet/", {"q": fleet.nodes[499].address}).content.decode()
    assert "fleet-0500" in _rows(by_address)

    key = f"ssh-{fleet.counters[3].pk}"
    worst_first = operator_client.get(f"/clusters/fleet/?sort=-{key}").content.decode()
    assert _rows(worst_first)[:3] == ["fleet-1000", "fleet-0999", "fleet-0998"]
    assert f'sort={key}#nodes">c03 ▼' in worst_first  # the header offers the other direction
    lowest = operator_client.get(f"/clusters/fleet/?sort={key}&page=20").content.decode()
    assert _rows(lowest)[-3:] == ["fleet-0001", "fleet-0002", "fleet-0003"]  # no sample: last
    assert _rows(operator_client.get(f"/clusters/fleet/?sort={key}").content.decode())[0] == "fleet-0004"
    assert f"sort={key}&amp;page=2" in lowest or f"sort={key}&amp;page=19" in lowest  # paging keeps the sort

    bad = operator_client.get("/clusters/fleet/?sort=nonsense").content.decode()
    assert "sort: &#x27;nonsense&#x27; is not name or a counter" in bad and not _rows(bad)


def test_the_cluster_page_costs_the_same_queries_whatever_the_page_or_sort(operator_client, fleet):
    key = f"ssh-{fleet.counters[0].pk}"
    first = _queries(operator_client, "/clusters/fleet/")
    assert _queries(operator_client, "/clusters/fleet/?page=17") == first
    assert _queries(operator_client, f"/clusters/fleet/?sort=-{key}&page=3") == first
    assert _queries(operator_client, "/clusters/fleet/?partial=1") <= first


def test_the_cluster_list_api_pages_and_sums_up(operator_client, fleet):
    response = operator_client.get("/api/v1/clusters")
    assert len(response.content) < 100 * KIB
    body = response.json()
    assert body["count"] == 1 and body["next"] is None
    (cluster,) = body["results"]
    assert (cluster["node_count"], cluster["nodes_up"], cluster["nodes_failing"]) == (1000, 997, FAILING)
    assert "nodes" not in cluster and all("latest" not in c for c in cluster["counters"])
    c00 = next(c for c in cluster["counters"] if c["name"] == "c00")["summary"]
    assert (c00["nodes"], c00["min"], c00["median"], c00["p95"], c00["max"]) == (997, 4.0, 502.0, 951.0, 1000.0)
    assert c00["breaching"] == BREACHING and [w["node"] for w in c00["worst"]] == ["fleet-1000", "fleet-0999",
                                                                                   "fleet-0998"]
    assert all("series" not in t for t in cluster["triggers"])
    assert cluster["url"] == "/api/v1/clusters/fleet"


@pytest.mark.parametrize("url", ["/api/v1/clusters", "/api/v1/clusters/fleet"])
def test_a_page_size_above_the_maximum_is_a_400_naming_limit(operator_client, fleet, url):
    response = operator_client.get(url, {"limit": MAX_LIMIT + 1})
    assert response.status_code == 400
    assert response.json() == {"limit": [f"limit may be at most {MAX_LIMIT}"]}


def test_a_clusters_status_pages_searches_and_sorts_its_nodes(operator_client, fleet):
    response = operator_client.get("/api/v1/clusters/fleet")
    body = response.json()
    assert len(body["nodes"]) == 100 and body["nodes_matching"] == 1000 and body["previous"] is None
    assert body["next"].endswith("/api/v1/clusters/fleet?limit=100&offset=100")
    assert all(len(c["latest"]) == 100 for c in body["counters"])
    shown = {n["id"] for n in body["nodes"]}
    for trigger in body["triggers"]:
        assert {s["node_id"] for s in trigger["series"]} <= shown
    assert len(response.content) < 250 * KIB

    key = f"ssh-{fleet.counters[1].pk}"
    top = operator_client.get("/api/v1/clusters/fleet", {"sort": f"-{key}", "limit": 3}).json()
    assert [n["name"] for n in top["nodes"]] == ["fleet-1000", "fleet-0999", "fleet-0998"]
    found = operator_client.get("/api/v1/clusters/fleet", {"q": "fleet-05", "offset": 90, "limit": 50}).json()
    assert found["nodes_matching"] == 100 and [n["name"] for n in found["nodes"]][0] == "fleet-0590"
    assert len(found["nodes"]) == 10 and found["next"] is None
    bad = operator_client.get("/api/v1/clusters/fleet", {"sort": "ssh-0"})
    assert bad.status_code == 400 and list(bad.json()) == ["sort"]


def test_the_series_api_gives_a_large_cluster_as_a_band_and_its_worst_nodes(operator_client, fleet):
    counter = fleet.counters[0]
    response = operator_client.get("/api/v1/series", {"kind": "ssh", "counter": counter.pk, "range": "15m",
                                                      "aggregate": "band"})
    assert response.status_code == 200, response.content[:500]
    assert len(response.content) < 50 * KIB
    body = response.json()
    band, stamps = body["band"], body["stamps"]
    at = stamps.index(int(fleet.stamp.timestamp()))
    assert band["nodes"] == 1000 and band["count"][at] == 997
    assert (band["min"][at], band["p50"][at], band["max"][at]) == (4.0, 502.0, 1000.0)
    assert [s["node"] for s in body["series"]] == [f"fleet-{i:04d}" for i in range(1000, 995, -1)]
    assert all(c == 0 for i, c in enumerate(band["count"]) if i != at)  # one round was written
    three = operator_client.get("/api/v1/series", {"kind": "ssh", "counter": counter.pk, "aggregate": "band",
                                                   "worst": 3}).json()
    assert len(three["series"]) == 3
    lines = operator_client.get("/api/v1/series", {"kind": "ssh", "counter": counter.pk, "range": "15m"}).json()
    assert len(lines["series"]) == 1000 and lines["band"] is None  # asked for lines: still every node


@pytest.mark.parametrize("query,param", [({"aggregate": "mean"}, "aggregate"), ({"aggregate": "band", "worst": 21}, "worst"),
                                         ({"worst": 2}, "worst"), ({"aggregate": "band", "worst": "x"}, "worst")])
def test_a_bad_aggregate_is_a_400_naming_it(operator_client, fleet, query, param):
    response = operator_client.get("/api/v1/series", {"kind": "ssh", "counter": fleet.counters[0].pk, **query})
    assert response.status_code == 400 and list(response.json()) == [param]


def test_graphs_of_a_large_cluster_ask_for_the_band_and_of_a_small_one_for_lines(operator_client, fleet):
    from tests.web.fleet import make_fleet as make

    small = make("small", nodes=5, counters=1)
    assert '"aggregate": "band"' in operator_client.get(f"/graphs/ssh/{fleet.counters[0].pk}/").content.decode()
    assert '"aggregate": ""' in operator_client.get(f"/graphs/ssh/{small.counters[0].pk}/").content.decode()
    assert 'data-aggregate="band"' in operator_client.get("/clusters/fleet/").content.decode()
    assert "data-aggregate" not in operator_client.get("/clusters/small/").content.decode()


def test_the_cluster_wide_counts_agree_with_each_nodes_badge(sample_store):
    """node_tally counts in one grouped query what NodeHealth.of decides per
    node: ok, degraded (one counter failing), failing, unknown, paused."""
    from apps.control.choices import NodeState
    from apps.monitoring import health
    from apps.monitoring.samples import CollectionError, Sample, SeriesRef
    from apps.web.status import node_health
    from apps.web.summary import node_tally

    fleet = make_fleet("mixed", nodes=6, counters=2)
    ok, degraded, failing, unknown, paused, draining = fleet.nodes
    a, b = fleet.counters
    ref = lambda node, counter: SeriesRef("ssh", node.pk, counter.pk)  # noqa: E731
    health.record_results([
        Sample(ref(ok, a), fleet.stamp, 1.0), Sample(ref(ok, b), fleet.stamp, 1.0),
        Sample(ref(degraded, a), fleet.stamp, 1.0),
        CollectionError(node_id=degraded.pk, message="not a number", series=ref(degraded, b), at=fleet.stamp),
        CollectionError(node_id=failing.pk, message="ssh: refused", at=fleet.stamp),
        CollectionError(node_id=paused.pk, message="ssh: refused", at=fleet.stamp),
    ], now=fleet.stamp)
    type(paused).objects.filter(pk=paused.pk).update(collection_enabled=False)
    type(draining).objects.filter(pk=draining.pk).update(state=NodeState.DRAINING)
    nodes = list(type(ok).objects.filter(cluster=fleet.cluster))
    states = [h.state for h in node_health(nodes).values()]
    tally = node_tally(fleet.cluster)
    assert sorted(states) == ["degraded", "failing", "ok", "paused", "paused", "unknown"]
    assert (tally.total, tally.size) == (6, 5)
    assert (tally.up, tally.degraded, tally.failing) == (
        states.count("ok") + states.count("degraded"), states.count("degraded"), states.count("failing"))
