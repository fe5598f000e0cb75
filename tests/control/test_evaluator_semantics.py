"""The trigger semantics end to end: real memcached (samples under the seed's
keys), the database, the real fire_trigger. Time is passed to the evaluator
explicitly, on the stamp grid of tests/evaluatorkit.py."""
from __future__ import annotations

import pytest

from apps.control import breach
from apps.control.state_memory import WRITER_KEY
from apps.control.choices import ExecutionStatus
from apps.control.evaluator import Evaluator, cluster_count_key
from apps.control.models import Execution, Node, Trigger
from tests.evaluatorkit import T0, at, evaluator, firings, put, series, stamp
from tests.factories import jmx_counter, make_cluster, make_trigger, ssh_counter

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]


@pytest.fixture
def web():
    return make_cluster("web", nodes=2)


def states(store, key):
    return breach.decode_states(store.get_many([key]).get(key))


# ---------------------------------------------------------------- timing
def test_timing_0_fires_at_the_first_breaching_sample(store, web):
    cluster, (n1, n2) = web
    load = ssh_counter(cluster, interval_s=60)
    trigger = make_trigger(cluster, [load], name="scale-out", timing_minutes=0)
    ev = evaluator(store)

    put(store, n1, load, 0, 0.5)
    put(store, n2, load, 0, 0.99)
    assert not ev.run(at(0)).fired
    put(store, n1, load, 1, 0.5)
    put(store, n2, load, 1, 1.0)  # reaches (>=)
    report = ev.run(at(1))

    [execution] = firings(trigger)
    assert [f.trigger_id for f in report.fired] == [trigger.pk]
    assert execution.status == ExecutionStatus.SUCCEEDED  # no actions: nothing to run
    assert execution.automatic and execution.fired_by == "trigger scale-out"
    assert execution.reasons["node"] == "web-2" and execution.reasons["counter"] == "load1"
    assert execution.reasons["values"] == [{"stamp": stamp(1).isoformat(), "value": 1.0}]
    assert execution.target_node == n2


@pytest.mark.parametrize(("timing", "interval", "needed"), [(1, 10, 6), (1, 60, 1), (3, 60, 3), (2, 45, 3)])
def test_it_fires_when_timing_minutes_worth_of_samples_breached(store, web, timing, interval, needed):
    cluster, (n1, _) = web
    load = ssh_counter(cluster, interval_s=interval)
    trigger = make_trigger(cluster, [load], timing_minutes=timing)
    ev = evaluator(store)

    for k in range(needed):
        assert not firings(trigger), f"fired after {k} of {needed} samples"
        put(store, n1, load, k, 2.0)
        ev.run(at(k, interval_s=interval))
    [execution] = firings(trigger)
    assert [v["value"] for v in execution.reasons["values"]] == [2.0] * needed
    assert execution.reasons["breaches"][0]["needed"] == needed


def test_a_non_breaching_sample_resets_the_count(store, web):
    cluster, (n1, _) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=3)  # 3 samples
    ev = evaluator(store)
    key = series(n1, load).count_key

    for k, value in enumerate([2, 2, 0.9, 2, 2]):
        put(store, n1, load, k, value)
        ev.run(at(k))
        assert not firings(trigger)
    assert states(store, key)[trigger.pk].count == 2
    put(store, n1, load, 5, 2)
    ev.run(at(5))
    assert len(firings(trigger)) == 1


def test_a_breach_on_one_node_and_one_on_another_do_not_add_up(store, web):
    cluster, (n1, n2) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=2)
    ev = evaluator(store)
    put(store, n1, load, 0, 2)
    put(store, n2, load, 0, 0)
    ev.run(at(0))
    put(store, n1, load, 1, 0)
    put(store, n2, load, 1, 2)
    ev.run(at(1))
    assert not firings(trigger)
    put(store, n1, load, 2, 0)
    put(store, n2, load, 2, 2)
    ev.run(at(2))
    [execution] = firings(trigger)
    assert execution.reasons["node"] == "web-2" and execution.target_node == n2


def test_any_of_the_triggers_counters_fires_it(store, web):
    cluster, (n1, _) = web
    load = ssh_counter(cluster, "load1")
    heap = jmx_counter(cluster, "heap", threshold=100.0)
    trigger = make_trigger(cluster, [load, heap], timing_minutes=0)
    put(store, n1, load, 0, 0.1)
    put(store, n1, heap, 0, 150.0)
    evaluator(store).run(at(0))
    [execution] = firings(trigger)
    assert execution.reasons["counter"] == "heap"
    assert execution.reasons["breaches"][0]["kind"] == "jmx"
    assert states(store, series(n1, heap).count_key)[trigger.pk] == breach.BreachState(
        0, stamp(0), breach.fired_mark(at(0)))


# ---------------------------------------------------------------- missing data
@pytest.mark.parametrize(
    ("policy", "fires_when_missing_settles", "firings_after_next_breach"),
    [("ignore", False, 1), ("breaching", True, 1), ("not_breaching", False, 0)],
)
def test_a_missing_sample_follows_the_missing_data_policy(store, web, policy, fires_when_missing_settles,
                                                          firings_after_next_breach):
    cluster, (n1, _) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=3, missing_data=policy, cooldown_s=0)
    ev = evaluator(store)
    put(store, n1, load, 0, 2)
    ev.run(at(0))
    put(store, n1, load, 1, 2)
    ev.run(at(1))
    # Stamp 2's collection failed: no sample. It is pending until its
    # interval and the grace have passed, then missing.
    ev.run(at(2, 30))
    assert not firings(trigger)
    ev.run(at(3, breach.DEFAULT_GRACE_S + 1))
    # breaching: 2 + 1 = 3 samples; ignore: still 2; not_breaching: 0.
    assert bool(firings(trigger)) == fires_when_missing_settles
    put(store, n1, load, 3, 2)
    ev.run(at(3, 10))
    # ignore: 3 now; breaching: 1 since its firing; not_breaching: 1.
    assert len(firings(trigger)) == firings_after_next_breach


def test_ignore_is_the_default_and_missing_data_alone_never_fires(store, web):
    cluster, _ = web
    trigger = make_trigger(cluster, [ssh_counter(cluster)], timing_minutes=0)
    assert trigger.missing_data == "ignore"
    ev = evaluator(store)
    for k in range(5):
        ev.run(at(k, 30))
    assert not firings(trigger)


def test_a_late_sample_is_counted_in_order_not_treated_as_missing(store, web):
    cluster, (n1, _) = web
    load = ssh_counter(cluster, interval_s=10)
    trigger = make_trigger(cluster, [load], timing_minutes=0, missing_data="not_breaching")
    ev = evaluator(store)
    # Stamp 0's sample arrives 12 s late (within the grace); the evaluator ran
    # in between and must have waited for it.
    ev.run(at(1, 1, interval_s=10))
    put(store, n1, load, 0, 5)
    ev.run(at(1, 3, interval_s=10))
    [execution] = firings(trigger)
    assert execution.reasons["values"][0]["stamp"] == stamp(0, 10).isoformat()


# ---------------------------------------------------------------- cooldown
def test_no_second_firing_inside_the_cooldown_and_again_after_it(store, web):
    cluster, (n1, _) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=0, cooldown_s=300)
    ev = evaluator(store)
    fired_at = []
    for k in range(11):
        put(store, n1, load, k, 2)
        report = ev.run(at(k))
        if report.fired:
            fired_at.append(k)
        elif k:
            assert report.cooling_down == [trigger.pk]
    # Fired at 12:00:06; the cooldown ends at 12:05:06, when stamp 5 is evaluated.
    assert fired_at == [0, 5, 10]
    trigger.refresh_from_db()
    assert trigger.last_fired_at == at(10)


def test_the_count_restarts_after_a_firing(store, web):
    cluster, (n1, _) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=3, cooldown_s=60)
    ev = evaluator(store)
    for k in range(3):
        put(store, n1, load, k, 2)
        ev.run(at(k))
    assert len(firings(trigger)) == 1
    # The cooldown is long over at stamp 3, but the 3 samples were used.
    for k in (3, 4):
        put(store, n1, load, k, 2)
        ev.run(at(k))
        assert len(firings(trigger)) == 1
    put(store, n1, load, 5, 2)
    ev.run(at(5))
    assert len(firings(trigger)) == 2


def test_scale_out_and_scale_in_triggers_cool_down_separately(store, web):
    cluster, (n1, n2) = web
    high = ssh_counter(cluster, "load-high", threshold=2.0)
    low = ssh_counter(cluster, "load-low", threshold=0.2, comparison="<")
    out = make_trigger(cluster, [high], name="scale-out", cooldown_s=600)
    inn = make_trigger(cluster, [low], name="scale-in", cooldown_s=600)
    ev = evaluator(store)
    put(store, n1, high, 0, 3.0)
    put(store, n1, low, 0, 3.0)
    ev.run(at(0))
    put(store, n2, high, 1, 0.1)
    put(store, n2, low, 1, 0.1)
    ev.run(at(1))
    assert len(firings(out)) == 1 and len(firings(inn)) == 1


def test_two_triggers_sharing_a_counter_count_and_reset_on_their_own(store, web):
    cluster, (n1, _) = web
    load = ssh_counter(cluster)
    fast = make_trigger(cluster, [load], name="alert", timing_minutes=1)  # 1 sample
    slow = make_trigger(cluster, [load], name="scale-out", timing_minutes=3)  # 3 samples
    ev = evaluator(store)
    for k in range(3):
        put(store, n1, load, k, 2)
        ev.run(at(k))
    # The fast trigger's firing (and reset) did not reset the slow one's count.
    assert len(firings(fast)) == 1 and len(firings(slow)) == 1
    entries = states(store, series(n1, load).count_key)
    assert set(entries) == {fast.pk, slow.pk}


# ---------------------------------------------------------------- aggregation
@pytest.mark.parametrize(
    ("how", "values", "fires"),
    [("avg", (3.0, 1.0, 1.0), False), ("avg", (3.0, 3.0, 1.0), True), ("max", (3.0, 1.0, 1.0), True),
     ("max", (1.9, 1.0, 0.0), False)],
)
def test_a_trigger_may_aggregate_across_the_cluster(store, how, values, fires):
    cluster, nodes = make_cluster("agg", nodes=3)
    load = ssh_counter(cluster, threshold=2.0)
    trigger = make_trigger(cluster, [load], timing_minutes=2, aggregation=how)
    ev = evaluator(store)
    for k in range(2):
        for node, value in zip(nodes, values):
            put(store, node, load, k, value)
        ev.run(at(k))
    assert bool(firings(trigger)) == fires
    if fires:
        reasons = firings(trigger)[0].reasons
        assert reasons["node"] is None and reasons["breaches"][0]["nodes"] == 3
        expected = sum(values) / 3 if how == "avg" else max(values)
        assert [v["value"] for v in reasons["values"]] == pytest.approx([expected] * 2)
    # The count lives under the cluster key; the nodes' seed keys are untouched.
    key = cluster_count_key("ssh", cluster.pk, load.pk)
    assert key == f"ssh_sshcounter.cluster{cluster.pk}.{load.pk}"
    assert trigger.pk in states(store, key)
    assert store.get_many([series(n, load).count_key for n in nodes]) == {}


def test_an_aggregate_waits_for_every_node_until_the_stamp_is_settled(store):
    cluster, (a, b) = make_cluster("agg", nodes=2)
    load = ssh_counter(cluster, threshold=2.0)
    trigger = make_trigger(cluster, [load], timing_minutes=0, aggregation="avg")
    ev = evaluator(store)
    put(store, a, load, 0, 3.0)
    ev.run(at(0, 5))  # b has not reported: a partial average (3.0) must not count
    assert not firings(trigger)
    put(store, b, load, 0, 0.0)
    ev.run(at(0, 10))  # avg 1.5: no breach
    assert not firings(trigger)
    # Stamp 1: b never reports; once settled the average is over a alone.
    put(store, a, load, 1, 2.5)
    ev.run(at(1, 5))
    assert not firings(trigger)
    ev.run(at(2, breach.DEFAULT_GRACE_S + 1))
    [execution] = firings(trigger)
    assert execution.reasons["values"] == [{"stamp": stamp(1).isoformat(), "value": 2.5}]


def test_only_running_nodes_with_collection_on_count(store):
    cluster, (a, b) = make_cluster("agg", nodes=2)
    load = ssh_counter(cluster, threshold=2.0)
    trigger = make_trigger(cluster, [load], timing_minutes=0, aggregation="avg")
    Node.objects.filter(pk=b.pk).update(collection_enabled=False)
    put(store, a, load, 0, 3.0)
    put(store, b, load, 0, 0.0)  # a stale sample of a node no longer collected
    evaluator(store).run(at(0))
    assert len(firings(trigger)) == 1


# ---------------------------------------------------------------- dry run
def test_a_dry_run_records_would_fire_and_changes_nothing_else(store, web):
    from tests.factories import make_action

    cluster, (n1, n2) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=0, dry_run=True, cooldown_s=300)
    mail = make_action(cluster, "email", {"to": ["ops@example.com"], "subject": "load"}, name="mail")
    trigger.steps.create(action=mail, position=1)
    nodes_before = list(Node.objects.values_list("pk", "state", "protected"))
    ev = evaluator(store)
    for k in range(3):
        put(store, n1, load, k, 2)
        ev.run(at(k))

    [execution] = firings(trigger)  # once per cooldown, not at every evaluation
    assert execution.status == ExecutionStatus.WOULD_FIRE
    assert execution.reasons["dry_run"] is True and execution.reasons["node"] == "web-1"
    assert [s.status for s in execution.steps.all()] == ["skipped"]
    assert list(Node.objects.values_list("pk", "state", "protected")) == nodes_before
    assert Execution.objects.count() == 1


# ---------------------------------------------------------------- counted once, restart
def test_evaluating_twice_on_the_same_samples_changes_nothing(store, web):
    cluster, (n1, n2) = web
    load = ssh_counter(cluster)
    waiting = make_trigger(cluster, [load], name="waiting", timing_minutes=3)
    eager = make_trigger(cluster, [load], name="eager", timing_minutes=0, cooldown_s=0)
    ev = evaluator(store)
    put(store, n1, load, 0, 2)
    put(store, n2, load, 0, 2)
    ev.run(at(0))
    key = series(n1, load).count_key
    before = store.get_many([key])[key]
    for seconds in (1, 2, 20, 50):
        report = ev.run(at(0, seconds))
        assert report.states_written == 0 and not report.fired
    assert store.get_many([key])[key] == before
    assert states(store, key)[waiting.pk].count == 1
    assert len(firings(eager)) == 1  # cooldown 0, yet the same samples fire once


def test_a_restarted_evaluator_loses_nothing(store, web):
    cluster, (n1, _) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=3)  # 3 samples, missing ignored
    first = evaluator(store)
    for k in range(2):
        put(store, n1, load, k, 2)
        first.run(at(k))
    for k in range(2, 6):  # collection fails for 4 stamps
        first.run(at(k))
    del first
    # A new evaluator: new objects, empty memory, trigger rows read afresh.
    # Only the stored count (2) makes the next breach the third: the samples
    # still present in its look-back hold a single breach.
    put(store, n1, load, 6, 2)
    Evaluator(store=type(store).from_settings()).run(at(6))
    [execution] = firings(trigger)
    assert execution.reasons["breaches"][0]["count"] == 3


def test_a_lost_state_restarts_counting_from_the_samples_still_present(store, web):
    cluster, (n1, _) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=3, cooldown_s=0)
    ev = evaluator(store)
    for k in range(2):
        put(store, n1, load, k, 2)
        ev.run(at(k))
    store.delete(series(n1, load).count_key)  # evicted, or its memcached server restarted
    put(store, n1, load, 2, 2)
    evaluator(store).run(at(2))
    assert len(firings(trigger)) == 1
    # The samples that firing used are not counted again by a rebuilt state.
    store.delete(series(n1, load).count_key)
    evaluator(store).run(at(2, 30))
    assert len(firings(trigger)) == 1


def test_a_stale_count_written_after_a_firing_does_not_fire_again(store, web):
    cluster, (n1, _) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=1, cooldown_s=0)
    ev = evaluator(store)
    put(store, n1, load, 0, 2)
    ev.run(at(0))
    assert len(firings(trigger)) == 1
    # A slower evaluator that lost the claim writes its pre-firing count, then
    # its writer token, as every evaluator does after its states.
    key = series(n1, load).count_key
    store.set_many({key: breach.encode_states({trigger.pk: breach.BreachState(1, stamp(0), 0)})},
                   expire=600)
    store.set_many({WRITER_KEY: "another-evaluator-1"}, expire=600)
    report = ev.run(at(0, 40))
    assert report.keys_read > 1  # the token was not its own: the states were read back
    assert len(firings(trigger)) == 1
    assert states(store, key)[trigger.pk].count == 0


def test_disabled_triggers_and_counters_are_not_evaluated(store, web):
    cluster, (n1, _) = web
    load = ssh_counter(cluster)
    off = make_trigger(cluster, [load], name="off", enabled=False)
    load_off = ssh_counter(cluster, "load5")
    load_off.enabled = False
    load_off.save()
    on = make_trigger(cluster, [load_off], name="on")
    put(store, n1, load, 0, 2)
    put(store, n1, load_off, 0, 2)
    report = evaluator(store).run(at(0))
    assert not firings(off) and not firings(on)
    assert report.triggers == 1 and report.series == 0


def test_the_claim_refuses_a_trigger_disabled_after_it_was_loaded(store, web, monkeypatch):
    from apps.control import evaluator as module

    cluster, (n1, _) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load])
    put(store, n1, load, 0, 2)
    loaded = module.load_triggers()  # the evaluation loads it enabled...
    Trigger.objects.filter(pk=trigger.pk).update(enabled=False)  # ...an admin disables it
    monkeypatch.setattr(module, "load_triggers", lambda *args, **kwargs: loaded)
    report = evaluator(store).run(at(0))
    assert report.claim_lost == [trigger.pk] and not firings(trigger)


def test_now_must_be_aware(store):
    with pytest.raises(ValueError, match="aware"):
        evaluator(store).run(T0.replace(tzinfo=None))


def test_the_reasons_show_each_series_that_reached(store, web):
    cluster, (n1, n2) = web
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], name="scale-out", timing_minutes=2)
    ev = evaluator(store)
    for k in range(2):
        put(store, n1, load, k, 2 + k)
        put(store, n2, load, k, 5)
        ev.run(at(k))
    reasons = firings(trigger)[0].reasons
    assert [(b["node"], [v["value"] for v in b["values"]]) for b in reasons["breaches"]] == [
        ("web-1", [2.0, 3.0]), ("web-2", [5.0, 5.0])]
    assert reasons["trigger"] == "scale-out" and reasons["cluster"] == "web"
    assert reasons["evaluated_at"] == at(1).isoformat()
