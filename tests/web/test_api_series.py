"""GET /api/v1/series against samples written by the real collection path
(apps.monitoring.collection.record -> SampleStore -> memcached)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from apps.monitoring import collection, series
from apps.monitoring.samples import Sample, SeriesRef, floor_stamp
from devservers.memcached import MemcachedServer

pytestmark = pytest.mark.django_db

NOW = datetime.now(timezone.utc)


def _ssh(world, index: int) -> SeriesRef:
    return SeriesRef("ssh", world.nodes[index].pk, world.load.pk)


def _jmx(world, index: int) -> SeriesRef:
    return SeriesRef("jmx", world.nodes[index].pk, world.heap.pk, world.jvm.pk)


def _get(client, **params):
    return client.get("/api/v1/series", params)


def test_series_returns_the_collected_samples_and_nulls_for_missing_stamps(operator_client, console_world,
                                                                           sample_store):
    w = console_world
    newest = floor_stamp(NOW, 10)
    stamps = [newest - timedelta(seconds=10 * i) for i in range(1, 7)]
    # node 1 has every sample but the third; node 2 only the first two.
    written = {0: {s: 0.25 * i for i, s in enumerate(stamps) if i != 2}, 1: {s: 3.0 + i for i, s in enumerate(stamps[:2])}}
    report = collection.record([Sample(_ssh(w, n), s, v) for n, values in written.items() for s, v in values.items()])
    assert report.stored == 7

    body = _get(operator_client, kind="ssh", counter=w.load.pk, range="15m").json()
    assert body["counter"] == {"id": w.load.pk, "kind": "ssh", "name": "load1", "cluster": "web", "jvm": None,
                               "unit": "load", "threshold": 1.5, "comparison": ">=", "interval_s": 10}
    assert body["step_s"] == 10
    xs = body["stamps"]
    assert xs == sorted(xs) and all(b - a == 10 for a, b in zip(xs, xs[1:]))
    assert len(xs) in (90, 91)  # 15 minutes of 10 s stamps
    by_node = {s["node"]: dict(zip(xs, s["values"])) for s in body["series"]}
    assert set(by_node) == {"web-1", "web-2"}
    for index, name in enumerate(["web-1", "web-2"]):
        got = {x: v for x, v in by_node[name].items() if v is not None}
        assert got == {int(s.timestamp()): v for s, v in written[index].items()}, name
    # The missing stamp is null, not interpolated between its neighbours.
    assert by_node["web-1"][int(stamps[2].timestamp())] is None


def test_series_of_one_node_and_a_jmx_counter(operator_client, console_world, sample_store):
    w = console_world
    stamp = floor_stamp(NOW, 10) - timedelta(seconds=20)
    collection.record([Sample(_jmx(w, 1), stamp, 123456789.0), Sample(_jmx(w, 0), stamp, 1.0)])
    body = _get(operator_client, kind="jmx", counter=w.heap.pk, node=w.nodes[1].pk, range="15m").json()
    assert body["counter"]["jvm"] == "tomcat"
    assert [s["node"] for s in body["series"]] == ["web-2"]
    values = dict(zip(body["stamps"], body["series"][0]["values"]))
    assert values[int(stamp.timestamp())] == 123456789.0
    assert sum(v is not None for v in values.values()) == 1


def test_custom_range_from_to(operator_client, console_world, sample_store):
    w = console_world
    start = floor_stamp(NOW, 10) - timedelta(hours=3)
    collection.record([Sample(_ssh(w, 0), start + timedelta(seconds=30), 0.9)])
    body = _get(operator_client, kind="ssh", counter=w.load.pk, node=w.nodes[0].pk,
                **{"from": start.isoformat(), "to": (start + timedelta(minutes=1)).isoformat()}).json()
    assert body["stamps"] == [int(start.timestamp()) + 10 * i for i in range(7)]
    assert body["series"][0]["values"] == [None, None, None, 0.9, None, None, None]


def test_long_ranges_are_thinned_to_real_samples_never_averaged(operator_client, console_world, sample_store):
    w = console_world
    newest = floor_stamp(NOW, 60)
    samples = [Sample(_ssh(w, 0), newest - timedelta(seconds=10 * i), float(i)) for i in range(1, 200)]
    collection.record(samples)
    body = _get(operator_client, kind="ssh", counter=w.load.pk, node=w.nodes[0].pk, range="24h").json()
    assert body["step_s"] == 60  # 8641 ten-second stamps -> every 6th
    assert len(body["stamps"]) <= series.MAX_POINTS
    written = {int(s.stamp.timestamp()): s.value for s in samples}
    for x, v in zip(body["stamps"], body["series"][0]["values"]):
        assert v == written.get(x), x  # each point is the sample at that very stamp, or null


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({}, "kind"),
        ({"kind": "snmp", "counter": "1"}, "kind"),
        ({"kind": "ssh"}, "counter"),
        ({"kind": "ssh", "counter": "abc"}, "counter"),
        ({"kind": "ssh", "counter": "999999"}, "counter"),
        ({"kind": "ssh", "counter": "{load}", "range": "2d"}, "range"),
        ({"kind": "ssh", "counter": "{load}", "from": "yesterday"}, "from"),
        ({"kind": "ssh", "counter": "{load}", "from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
        ({"kind": "ssh", "counter": "{load}", "from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "from"),
        ({"kind": "ssh", "counter": "{load}", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"kind": "ssh", "counter": "{load}", "range": "1h", "from": "2026-01-01T00:00:00Z"}, "range"),
        ({"kind": "ssh", "counter": "{load}", "node": "x1"}, "node"),
        ({"kind": "ssh", "counter": "{load}", "node": "{other_node}"}, "node"),
        ({"kind": "ssh", "counter": "{load}", "colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_get_400_naming_the_parameter(operator_client, console_world, params, param):
    from tests.fixtures.console import make_world

    other = make_world("batch")
    values = {k: v.format(load=console_world.load.pk, other_node=other.nodes[0].pk) for k, v in params.items()}
    response = _get(operator_client, **values)
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [param], body
    assert body[param] and isinstance(body[param][0], str)


def test_memcached_down_is_503_not_an_empty_graph(operator_client, console_world, settings):
    dead = MemcachedServer()  # never started: nothing listens on its port
    settings.MEMCACHED_SERVERS = [dead.address]
    response = _get(operator_client, kind="ssh", counter=console_world.load.pk, range="15m")
    assert response.status_code == 503
    assert "sample store unavailable" in response.json()["detail"]


def test_anonymous_gets_401_and_a_token_works(client, console_world, sample_store, operator_user):
    response = _get(client, kind="ssh", counter=console_world.load.pk)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    token = Token.objects.create(user=operator_user)
    response = client.get("/api/v1/series", {"kind": "ssh", "counter": console_world.load.pk},
                          HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200


def test_a_user_without_view_permission_gets_403(client, console_world, sample_store):
    client.force_login(User.objects.create_user("nobody", password="nobody-pw-1234"))
    assert _get(client, kind="ssh", counter=console_world.load.pk).status_code == 403


def test_step_is_a_multiple_of_the_interval():
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert series.step_for(10, start, start + timedelta(minutes=15)) == 10
    assert series.step_for(10, start, start + timedelta(hours=24)) == 60
    assert series.step_for(1, start, start + timedelta(hours=24)) == 58
    assert series.step_for(60, start, start + timedelta(days=31)) % 60 == 0
