"""Scaling policies against the database and the real memcached: what the
runner reads, the executions it starts, and the decision records it keeps.
(The whole loop with a worker, beat, sshd nodes and moto:
test_policy_autoscaling.py.)"""
from __future__ import annotations

from datetime import timedelta

import pytest

from apps.control.choices import ExecutionStatus, NodeState
from apps.control.models import Execution, Node, PolicyDecision
from apps.control.policy_runner import evaluate_policies
from tests.evaluatorkit import at, put
from tests.factories import make_action, make_cluster, make_policy, ssh_counter

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]


@pytest.fixture
def web():
    return make_cluster("web", nodes=3, max_size=10, max_step_size=5)


def loads(store, nodes, counter, k, *values):
    for node, value in zip(nodes, values):
        put(store, node, counter, k, value)


def test_it_scales_out_to_the_target_with_the_node_count_in_the_context(store, web):
    cluster, nodes = web
    cpu = ssh_counter(cluster, "cpu", interval_s=60)
    deploy = make_action(cluster, "email", {"to": "ops@example.com", "subject": "scaling"}, name="tell")
    policy = make_policy(cluster, [(cpu, 50.0)], scale_out=[deploy])
    loads(store, nodes, cpu, 0, 80, 90, 70)

    report = evaluate_policies(at(0), store=store)

    [execution] = Execution.objects.filter(policy=policy)
    assert execution.automatic and execution.status == ExecutionStatus.PENDING
    assert execution.data["node_count"] == 2 and execution.data["direction"] == "out"  # ceil(3 × 80 / 50) = 5
    [decision] = PolicyDecision.objects.filter(policy=policy)
    assert decision.execution == execution and report.executions == {policy.pk: execution.pk}
    assert decision.summary == "wanted 5, scaling out 3 → 5"
    assert decision.inputs["counters"][0]["value"] == 80 and decision.inputs["in_service"] == 3
    assert sorted(decision.inputs["counters"][0]["nodes"]) == ["web-1", "web-2", "web-3"]


def test_an_unchanged_decision_refreshes_the_latest_record(store, web):
    cluster, nodes = web
    cpu = ssh_counter(cluster, "cpu", interval_s=60)
    policy = make_policy(cluster, [(cpu, 50.0)])
    for k in range(3):
        loads(store, nodes, cpu, k, 50, 50, 50)
        evaluate_policies(at(k), store=store)
    [decision] = PolicyDecision.objects.filter(policy=policy)
    assert decision.repeats == 2 and decision.evaluated_at == at(2) and decision.summary == "at 3, as wanted"
    loads(store, nodes, cpu, 3, 90, 90, 90)
    evaluate_policies(at(3), store=store)
    assert PolicyDecision.objects.filter(policy=policy).count() == 2


def test_a_missing_counter_blocks_scale_in_and_the_record_says_why(store, web):
    cluster, nodes = web
    cpu, heap = ssh_counter(cluster, "cpu", interval_s=60), ssh_counter(cluster, "heap", interval_s=60)
    policy = make_policy(cluster, [(cpu, 50.0), (heap, 50.0)])
    loads(store, nodes, cpu, 0, 10, 10, 10)
    evaluate_policies(at(0), store=store)
    decision = PolicyDecision.objects.get(policy=policy)
    assert decision.desired == 3 and not Execution.objects.filter(policy=policy).exists()
    assert decision.effects[0]["guard"] == "missing data" and "heap" in decision.effects[0]["note"]
    assert decision.summary.startswith("wanted 1, held at 3: scale-in blocked: no value from heap")


def test_a_young_node_is_warming_and_counts_as_capacity(store, web):
    cluster, nodes = web
    Node.objects.filter(pk=nodes[2].pk).update(launched_by_pyscaler=True, created=at(0) - timedelta(seconds=60))
    cpu = ssh_counter(cluster, "cpu", interval_s=60)
    policy = make_policy(cluster, [(cpu, 50.0)], warmup_s=3600)
    loads(store, nodes, cpu, 0, 60, 60, 100)  # the new JVM's start-up spike is not averaged
    evaluate_policies(at(0), store=store)
    decision = PolicyDecision.objects.get(policy=policy)
    assert decision.inputs["warming_nodes"] == ["web-3"] and decision.desired == 3
    assert decision.inputs["counters"][0]["value"] == 60  # ceil(2 × 60 / 50) = 3: covered


def test_cooldown_and_exactly_once(store, web):
    cluster, nodes = web
    cpu = ssh_counter(cluster, "cpu", interval_s=60)
    tell = make_action(cluster, "email", {"to": "ops@example.com", "subject": "scaling"}, name="tell")
    policy = make_policy(cluster, [(cpu, 50.0)], scale_out=[tell], scale_out_cooldown_s=600)
    loads(store, nodes, cpu, 0, 90, 90, 90)
    evaluate_policies(at(0), store=store)
    loads(store, nodes, cpu, 1, 90, 90, 90)
    evaluate_policies(at(1), store=store)  # the launches in flight cover the need
    assert "3 in flight counted as capacity" in PolicyDecision.objects.filter(policy=policy).first().summary
    Execution.objects.filter(policy=policy).update(status=ExecutionStatus.SUCCEEDED)  # launched nothing
    evaluate_policies(at(1, 30), store=store)
    assert Execution.objects.filter(policy=policy).count() == 1
    latest = PolicyDecision.objects.filter(policy=policy).first()
    assert "scale-out cooldown until" in latest.summary


def test_a_schedule_raises_the_minimum(store, web):
    cluster, nodes = web
    cpu = ssh_counter(cluster, "cpu", interval_s=60)
    policy = make_policy(cluster, [(cpu, 50.0)], windows=[{"name": "office", "cron": "0 * * * *",
                                                            "duration_minutes": 59, "min_size": 6}])
    loads(store, nodes, cpu, 0, 50, 50, 50)
    evaluate_policies(at(0), store=store)
    decision = PolicyDecision.objects.get(policy=policy)
    assert decision.desired == 6 and decision.inputs["schedule"]["min_size"] == 6
    assert Execution.objects.get(policy=policy).data["node_count"] == 3


def test_dry_run_records_would_fire(store, web):
    cluster, nodes = web
    cpu = ssh_counter(cluster, "cpu", interval_s=60)
    tell = make_action(cluster, "email", {"to": "ops@example.com", "subject": "scaling"}, name="tell")
    policy = make_policy(cluster, [(cpu, 50.0)], scale_in=[tell], dry_run=True)
    loads(store, nodes, cpu, 0, 10, 10, 10)
    evaluate_policies(at(0), store=store)
    execution = Execution.objects.get(policy=policy)
    assert execution.status == ExecutionStatus.WOULD_FIRE and execution.data["node_count"] == 2
    loads(store, nodes, cpu, 1, 10, 10, 10)
    evaluate_policies(at(1), store=store)  # the same decision: no second "would fire"
    assert Execution.objects.filter(policy=policy).count() == 1
    assert Node.objects.filter(cluster=cluster, state=NodeState.RUNNING).count() == 3
    assert PolicyDecision.objects.get(policy=policy).dry_run


def test_one_enabled_policy_per_cluster(web):
    from django.core.exceptions import ValidationError

    cluster, _ = web
    make_policy(cluster)
    with pytest.raises(ValidationError) as exc:
        make_policy(cluster, name="other")
    assert "enabled" in exc.value.message_dict


def test_records_are_bounded_in_time(store, web):
    cluster, nodes = web
    cpu = ssh_counter(cluster, "cpu", interval_s=60)
    policy = make_policy(cluster, [(cpu, 50.0)], scale_in_window_s=120)
    for k in range(6):
        loads(store, nodes, cpu, k, 50, 50, 50)
        evaluate_policies(at(k), store=store)
    policy.refresh_from_db()
    assert len(policy.recommendations) <= 3
    assert at(5) - timedelta(seconds=120) < min(
        __import__("datetime").datetime.fromisoformat(s) for s, _ in policy.recommendations) + timedelta(seconds=61)


def test_a_node_whose_readiness_counter_has_not_settled_is_warming(store, web):
    cluster, nodes = web
    cpu = ssh_counter(cluster, "cpu", interval_s=60)
    jit = ssh_counter(cluster, "jit_queue", interval_s=60, comparison=">=", threshold=10)
    policy = make_policy(cluster, [(cpu, 50.0)], readiness=jit)
    loads(store, nodes, cpu, 0, 50, 50, 100)
    loads(store, nodes, jit, 0, 0, 0, 40)  # web-3 still compiling; nothing at all would mean "not ready" too
    evaluate_policies(at(0), store=store)
    decision = PolicyDecision.objects.get(policy=policy)
    assert decision.inputs["warming_nodes"] == ["web-3"] and decision.inputs["readiness"] == ["jit_queue"]
    assert decision.inputs["counters"][0]["value"] == 50 and decision.desired == 3


def test_old_decision_records_are_deleted_but_the_newest_is_kept(store, web, settings):
    settings.POLICY_DECISION_RETENTION_DAYS = 1
    cluster, nodes = web
    cpu = ssh_counter(cluster, "cpu", interval_s=60)
    policy = make_policy(cluster, [(cpu, 50.0)])
    loads(store, nodes, cpu, 0, 50, 50, 50)
    evaluate_policies(at(0), store=store)
    loads(store, nodes, cpu, 1, 90, 90, 90)
    evaluate_policies(at(1), store=store)
    PolicyDecision.objects.filter(policy=policy).update(created=at(0) - timedelta(days=3))
    evaluate_policies(at(2), store=store)
    assert PolicyDecision.objects.filter(policy=policy).count() == 1
