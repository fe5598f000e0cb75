"""memcached down or restarted while evaluating: no crash; the data counts as
missing (the trigger's policy applies; the default fires nothing); the
evaluator recovers by itself. Real memcached processes, killed and restarted."""
from __future__ import annotations

import pytest

from apps.control.evaluator import Evaluator, evaluate
from apps.monitoring.store import SampleStore
from apps.control.models import Node
from tests.evaluatorkit import at, firings, put, series, stamp
from tests.factories import make_cluster, make_trigger, ssh_counter

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(make_memcached, settings):
    server = make_memcached()
    settings.MEMCACHED_SERVERS = [server.address]
    settings.MEMCACHED_RETRY_TIMEOUT_S = 0  # retry at once after a restart
    return server


@pytest.fixture
def store(server):
    return SampleStore([server.address], retention_s=3600, timeout_s=0.5, retry_timeout_s=0)


@pytest.fixture
def web():
    return make_cluster("web", nodes=2)


def test_memcached_down_no_crash_and_the_default_policy_fires_nothing(server, store, web):
    cluster, (n1, n2) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=0)  # missing data: ignore
    ev = Evaluator(store=store)
    put(store, n1, load, 0, 0.5)
    assert ev.run(at(0)).store_error is None
    server.kill()
    for k in range(1, 5):
        report = ev.run(at(k))
        assert report.store_error and "memcached" in report.store_error
        assert not report.fired
    assert not firings(trigger)


def test_the_module_function_survives_an_outage_too(server, web, monkeypatch):
    from apps.control import evaluator as module

    monkeypatch.setattr(module, "_default_evaluator", None)  # this test's own per-process evaluator
    cluster, (n1, _) = web
    trigger = make_trigger(cluster, [ssh_counter(cluster)], timing_minutes=0)
    server.kill()
    report = evaluate(at(0))  # default store from settings, default fire
    assert report.store_error and not report.fired and not firings(trigger)


def test_a_breaching_policy_counts_the_outage_from_where_counting_was(server, store, web):
    cluster, (n1, n2) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=3, missing_data="breaching")
    ev = Evaluator(store=store)
    put(store, n1, load, 0, 2.0)
    put(store, n2, load, 0, 0.1)
    ev.run(at(0))  # web-1: 1 of 3
    server.kill()
    ev.run(at(1))  # stamp 1 is not settled yet: pending, nothing counted
    ev.run(at(2))  # stamp 1 missing: 2 of 3 (web-2: 1 of 3)
    assert not firings(trigger)
    report = ev.run(at(3))  # stamp 2 missing: 3 of 3
    [execution] = firings(trigger)
    assert [f.trigger_id for f in report.fired] == [trigger.pk]
    assert execution.reasons["node"] == "web-1"
    # The values the firing used were missing (the store was down): shown as such.
    assert [v["value"] for v in execution.reasons["values"]] == [None, None, None]


def test_a_fresh_evaluator_in_an_outage_does_not_fire_on_the_unknown_past(server, store, web):
    cluster, (n1, _) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=2, missing_data="breaching")
    server.kill()
    # A process that never read a state: the stamps before it are unknown.
    assert not Evaluator(store=store).run(at(10)).fired
    assert not firings(trigger)


def test_it_recovers_by_itself_after_memcached_restarts_empty(server, store, web):
    cluster, (n1, _) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=2)
    ev = Evaluator(store=store)
    put(store, n1, load, 0, 2.0)
    ev.run(at(0))
    server.kill()
    ev.run(at(1))
    ev.run(at(2))
    server.restart()  # same address, empty: states and samples are gone
    put(store, n1, load, 3, 2.0)
    report = ev.run(at(3))
    assert report.store_error is None and not firings(trigger)
    put(store, n1, load, 4, 2.0)
    ev.run(at(4))
    assert len(firings(trigger)) == 1


def test_one_of_two_servers_down_loses_only_its_share(make_memcached, settings):
    cluster, nodes = make_cluster("big", nodes=10)
    servers = [make_memcached(), make_memcached()]
    store = SampleStore([s.address for s in servers], retention_s=3600, timeout_s=0.5)
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=0)
    servers[0].kill()
    for node in nodes:
        put(store, node, load, 0, 2.0)
    survived = store.get_many([series(n, load).sample_key(stamp(0)) for n in nodes])
    assert 0 < len(survived) < len(nodes)  # ~half; all on one server has p = 2**-9
    Evaluator(store=store).run(at(0))
    # The surviving share still fires the trigger, once, for a node it holds.
    [execution] = firings(trigger)
    assert series(Node.objects.get(name=execution.reasons["node"]), load).sample_key(stamp(0)) in survived
