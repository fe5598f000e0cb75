"""Firing: the execution record, dry runs, manual firings and the rule that
one scaling execution at a time runs automatically on a cluster."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from apps.actions.choices import ActionKindChoice as K
from apps.control.choices import ExecutionStatus, StepStatus
from apps.control.executions import FiringError, cancel, fire_action, fire_trigger
from apps.control.models import Execution, Node
from tests.factories import make_action, make_cluster, make_trigger

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]


@pytest.fixture
def cluster():
    cluster = make_cluster("app", ec2_ami="ami-12345678", ec2_instance_type="t3.micro")
    for i in (1, 2, 3):
        Node.objects.create(cluster=cluster, name=f"app-{i}", address="127.0.0.1",
                            state="running" if i < 3 else "terminated")
    return cluster


@pytest.fixture
def scale_out(cluster):
    deploy = make_action(cluster, K.DEPLOY_EC2_NODE, {"count": 1}, name="deploy")
    mail = make_action(cluster, K.EMAIL, {"to": ["ops@example.com"], "subject": "x"}, name="mail")
    return make_trigger(cluster, [deploy, mail], name="scale-out")


@pytest.fixture
def scale_in(cluster):
    remove = make_action(cluster, K.REMOVE_EC2_NODE, {}, name="remove")
    return make_trigger(cluster, [remove], name="scale-in")


REASONS = {"trigger": "scale-out", "counter": "cpu", "node": "app-1", "values": [91.0, 93.5]}


def test_a_firing_records_who_why_and_the_steps_as_they_were(cluster, scale_out):
    execution = fire_trigger(scale_out, reasons={**REASONS, "node_id": cluster.nodes.get(name="app-1").pk})

    assert execution.status == ExecutionStatus.PENDING and execution.automatic
    assert execution.fired_by == "trigger scale-out" and execution.trigger == scale_out
    assert execution.reasons["values"] == [91.0, 93.5]
    assert execution.target_node.name == "app-1"
    assert execution.size_before == 2  # running nodes only
    assert execution.data["counter"] == "cpu" and execution.data["execution_id"] == execution.pk
    steps = list(execution.steps.order_by("position"))
    assert [(s.position, s.action_name, s.kind, s.status) for s in steps] == [
        (1, "deploy", K.DEPLOY_EC2_NODE, StepStatus.PENDING),
        (2, "mail", K.EMAIL, StepStatus.PENDING),
    ]
    # Editing the action later does not rewrite history.
    deploy = steps[0].action
    deploy.params = {"count": 1, "instance_type": "t3.large"}
    deploy.timeout_s = 99
    deploy.save()
    steps[0].refresh_from_db()
    assert steps[0].params == {"count": 1} and steps[0].timeout_s == 30


def test_a_dry_run_records_would_fire_and_runs_nothing(cluster, scale_out):
    scale_out.dry_run = True
    scale_out.save()
    execution = fire_trigger(scale_out, reasons=REASONS)
    assert execution.status == ExecutionStatus.WOULD_FIRE and execution.finished is not None
    assert "dry run" in execution.log
    assert set(execution.steps.values_list("status", flat=True)) == {StepStatus.SKIPPED}
    assert fire_trigger(make_trigger(cluster, list(scale_out.ordered_actions())), reasons=REASONS,
                        dry_run=True).status == ExecutionStatus.WOULD_FIRE


def test_an_automatic_scaling_firing_is_blocked_while_another_is_in_progress(cluster, scale_out, scale_in):
    first = fire_trigger(scale_out, reasons=REASONS)
    second = fire_trigger(scale_in, reasons={"trigger": "scale-in"})

    assert second.status == ExecutionStatus.BLOCKED and second.finished is not None
    assert f"execution #{first.pk}" in second.log and "CHAIN_BLOCK_CONCURRENT_SCALING" in second.log
    assert set(second.steps.values_list("status", flat=True)) == {StepStatus.SKIPPED}

    # Running (not only pending) blocks too; a finished one does not.
    Execution.objects.filter(pk=first.pk).update(status=ExecutionStatus.RUNNING)
    assert fire_trigger(scale_out, reasons=REASONS).status == ExecutionStatus.BLOCKED
    Execution.objects.filter(pk=first.pk).update(status=ExecutionStatus.FAILED)
    assert fire_trigger(scale_in, reasons=REASONS).status == ExecutionStatus.PENDING


def test_manual_and_non_scaling_firings_are_not_blocked(cluster, scale_out):
    fire_trigger(scale_out, reasons=REASONS)
    alice = User.objects.create_user("alice")
    by_hand = fire_trigger(scale_out, reasons={}, fired_by_user=alice)
    assert by_hand.status == ExecutionStatus.PENDING
    assert by_hand.fired_by == "user alice" and not by_hand.automatic
    deploy = cluster.actions.get(name="deploy")
    assert fire_action(deploy, cluster=cluster, fired_by="command line (root)").status == ExecutionStatus.PENDING
    mail_only = make_trigger(cluster, [cluster.actions.get(name="mail")])
    assert fire_trigger(mail_only, reasons={}).status == ExecutionStatus.PENDING


def test_the_block_can_be_switched_off(cluster, scale_out, scale_in, settings):
    settings.CHAIN_BLOCK_CONCURRENT_SCALING = False
    fire_trigger(scale_out, reasons=REASONS)
    assert fire_trigger(scale_in, reasons={}).status == ExecutionStatus.PENDING


def test_the_user_is_kept_in_history_after_the_account_is_deleted(cluster):
    mail = make_action(cluster, K.EMAIL, {"to": ["ops@example.com"], "subject": "x"})
    bob = User.objects.create_user("bob")
    execution = fire_action(mail, cluster=cluster, fired_by_user=bob)
    assert execution.fired_by == "user bob" and execution.action == mail and execution.trigger is None
    bob.delete()
    execution.refresh_from_db()
    assert execution.fired_by_user is None and execution.fired_by == "user bob"


def test_bad_firings_are_refused_naming_what_is_wrong(cluster):
    other = make_cluster("other")
    stranger = Node.objects.create(cluster=other, name="stranger", address="127.0.0.1")
    mail = make_action(cluster, K.EMAIL, {"to": ["ops@example.com"], "subject": "x"})
    with pytest.raises(FiringError, match="belongs to cluster app, not to other"):
        fire_action(mail, cluster=other)
    with pytest.raises(FiringError, match="node 'stranger' is not in cluster 'app'"):
        fire_action(mail, cluster=cluster, target_node=stranger)
    assert not Execution.objects.exists()


def test_an_execution_can_be_cancelled_before_its_next_step(cluster, scale_out):
    execution = fire_trigger(scale_out, reasons=REASONS)
    cancel(execution, fired_by="user oscar")
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLED and "cancelled by user oscar" in execution.log
    assert set(execution.steps.values_list("status", flat=True)) == {StepStatus.SKIPPED}
    with pytest.raises(FiringError, match="nothing to cancel"):
        cancel(execution)
    # A cancelled scaling execution no longer blocks.
    assert fire_trigger(scale_out, reasons=REASONS).status == ExecutionStatus.PENDING


def test_a_stale_scaling_execution_is_reaped_instead_of_blocking_for_ever(cluster, scale_out, scale_in):
    from datetime import timedelta

    from django.utils import timezone

    from apps.control.models import ExecutionStep

    stuck = fire_trigger(scale_out, reasons=REASONS)
    Execution.objects.filter(pk=stuck.pk).update(status=ExecutionStatus.RUNNING)
    ExecutionStep.objects.filter(execution=stuck, position=1).update(
        status=StepStatus.RUNNING, claim="gone", lease_expires=timezone.now() - timedelta(seconds=1))

    assert fire_trigger(scale_in, reasons={}).status == ExecutionStatus.PENDING
    stuck.refresh_from_db()
    assert stuck.status == ExecutionStatus.FAILED
    assert "lease expired" in stuck.steps.get(position=1).error


@pytest.mark.django_db(transaction=True)
def test_two_evaluators_firing_at_once_start_one_scaling_execution(cluster, scale_out, scale_in):
    import threading

    from django.db import connection

    barrier = threading.Barrier(2)
    results: list[str] = []

    def fire(trigger):
        try:
            barrier.wait(5)
            results.append(fire_trigger(trigger, reasons={}).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=fire, args=(t,)) for t in (scale_out, scale_in)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [ExecutionStatus.BLOCKED, ExecutionStatus.PENDING]


def test_the_admin_shows_executions_read_only_and_resumes_failed_ones(cluster, scale_out, client,
                                                                     admin_user_in_group):
    execution = fire_trigger(scale_out, reasons=REASONS)
    Execution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.FAILED)
    execution.steps.filter(position=1).update(status=StepStatus.FAILED, error="AWS said no")
    client.force_login(admin_user_in_group)

    listing = client.get("/admin/control/execution/")
    assert listing.status_code == 200 and b"trigger scale-out" in listing.content
    detail = client.get(f"/admin/control/execution/{execution.pk}/change/")
    assert detail.status_code == 200 and b"AWS said no" in detail.content
    assert b'name="_save"' not in detail.content  # read-only
    assert client.get("/admin/control/execution/add/").status_code == 403

    response = client.post("/admin/control/execution/", {"action": "resume_selected",
                                                         "_selected_action": [execution.pk]}, follow=True)
    assert response.status_code == 200
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.PENDING and "resumed by user alice" in execution.log


def test_the_moment_a_step_is_claimed_its_execution_is_running(cluster, operator_client):
    """Claiming the step and marking its execution running are one commit:
    no reader (the API, the console, another worker) ever sees a running step
    under a pending execution."""
    from apps.control import chain

    mail = make_action(cluster, K.EMAIL, {"to": ["ops@example.com"], "subject": "x"}, name="mail2")
    execution = fire_action(mail, cluster=cluster, fired_by="tests")
    step = execution.steps.get()
    claimed = chain._claim(step.pk, redelivered=False)
    assert claimed is not None
    step.refresh_from_db()
    execution.refresh_from_db()
    assert step.status == StepStatus.RUNNING
    assert execution.status == ExecutionStatus.RUNNING
    assert execution.started == step.started

    body = operator_client.get(f"/api/v1/executions/{execution.pk}").json()
    assert body["status"] == "running" and body["steps"][0]["status"] == "running"
    listed = operator_client.get("/api/v1/executions", {"status": "running"}).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [e["id"] for e in rows] == [execution.pk]
    assert operator_client.get("/api/v1/executions", {"status": "pending"}).json() in ([], {
        **listed, "results": [], "count": 0})
