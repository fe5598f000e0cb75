"""trigger_status: what the console shows of a trigger (breach progress per
series, cooldown left, last firing, "no data"), read without changing anything."""
from __future__ import annotations

import pytest

from apps.control.evaluator import Evaluator
from apps.control.trigger_status import trigger_status
from apps.monitoring import sources
from apps.monitoring.store import SampleStore
from tests.evaluatorkit import at, firings, put, stamp
from tests.factories import make_cluster, make_trigger, ssh_counter

pytestmark = pytest.mark.django_db


def test_it_shows_progress_cooldown_and_no_data(store):
    cluster, (n1, n2) = make_cluster("web", nodes=2)
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=3, cooldown_s=300)
    ev = Evaluator(store=store)
    for k in range(2):
        put(store, n1, load, k, 2.0)
        ev.run(at(k))

    status = trigger_status(trigger, store, now=at(1, 30))
    by_node = {s.node: s for s in status.series}
    assert (by_node["web-1"].count, by_node["web-1"].needed) == (2, 3)
    assert by_node["web-1"].progress == pytest.approx(2 / 3) and status.progress == pytest.approx(2 / 3)
    assert by_node["web-1"].latest_value == 2.0 and by_node["web-1"].latest_stamp == stamp(1)
    assert by_node["web-2"].no_data and by_node["web-2"].count == 0
    assert status.last_fired_at is None and status.cooldown_left_s == 0
    assert status.store_error is None

    put(store, n1, load, 2, 2.0)
    ev.run(at(2))
    assert len(firings(trigger)) == 1
    status = trigger_status(trigger, store, now=at(3))
    assert status.last_fired_at == at(2)
    assert status.cooldown_left_s == 240  # fired at stamp 2 + 6 s, asked a minute later
    assert [s.count for s in status.series] == [0, 0]  # the firing reset every series


def test_reading_the_status_changes_nothing(store):
    cluster, (n1,) = make_cluster("web", nodes=1)
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=0)
    put(store, n1, load, 0, 2.0)
    key = f"ssh_sshcounter.{n1.pk}.{load.pk}"
    status = trigger_status(trigger, store, now=at(0))
    assert status.series[0].count is None  # not evaluated yet: unknown
    assert store.get_many([key]) == {} and not firings(trigger)


def test_memcached_down_is_reported_not_raised(make_memcached, settings):
    server = make_memcached()
    store = SampleStore([server.address], retention_s=3600, retry_timeout_s=0)
    cluster, _ = make_cluster("web", nodes=1)
    trigger = make_trigger(cluster, [ssh_counter(cluster)])
    server.kill()
    status = trigger_status(trigger, store, now=at(0))
    assert status.store_error and status.series[0].count is None and status.progress is None


def test_statuses_of_many_triggers_in_a_few_queries_and_one_read(store, django_assert_max_num_queries):
    from apps.control.trigger_status import trigger_statuses

    cluster, (n1, n2) = make_cluster("web", nodes=2)
    triggers = [make_trigger(cluster, [ssh_counter(cluster, f"c{i}")], name=f"t{i}", timing_minutes=i)
                for i in range(1, 6)]
    for t in triggers:
        put(store, n1, t.ssh_counters.get(), 0, 2.0)
    Evaluator(store=store).run(at(0))
    with django_assert_max_num_queries(2 + len(sources.all())):  # triggers, counters per source, nodes
        statuses = trigger_statuses(store=store, now=at(0, 30))
    assert [statuses[t.pk].series[0].count for t in triggers] == [0, 1, 1, 1, 1]  # t1 fired and reset
    assert [statuses[t.pk].series[0].needed for t in triggers] == [1, 2, 3, 4, 5]
    assert statuses[triggers[0].pk].cooldown_left_s == 300 - 24
