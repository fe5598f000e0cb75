"""The chain runner, driven in this process (chain.run_step, no Celery): step
order, the context flowing along the chain, failures, resume, timeouts and
redelivery. Scripts run on a real sshd."""
from __future__ import annotations

import subprocess
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.actions.choices import ActionKindChoice as K
from apps.control import chain
from apps.control.choices import ExecutionStatus, StepStatus
from apps.control.executions import FiringError, fire_action, fire_trigger, resume
from apps.control.models import ExecutionStep
from tests.chainkit import COUNT, TARGET
from tests.factories import make_action, make_cluster, make_node, make_trigger
from tests.sshkit import trust

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]


@pytest.fixture
def cluster(sshd_nodes, settings, tmp_path):
    trust(settings, tmp_path, *sshd_nodes)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cluster = make_cluster("web")
    make_node(cluster, sshd_nodes[0], "web-1")
    make_node(cluster, sshd_nodes[1], "web-2")
    return cluster


def steps(execution):
    return list(execution.steps.order_by("position"))


def test_it_runs_the_steps_in_order_and_the_context_flows_along(cluster, sshd_nodes):
    pick = make_action(cluster, TARGET, {"node": "web-2"}, validate=False)
    script = make_action(cluster, K.LOCAL_SCRIPT, {"script": "echo home=$HOME; echo oops >&2"})
    email = make_action(cluster, K.EMAIL, {
        "to": ["ops@example.com"],
        "subject": "{{ trigger.name }} on {{ cluster }}: {{ node }} ({{ counter }}={{ values.0 }})",
        "body": "new: {% for n in new_nodes %}{{ n.name }}{% endfor %}; picked {{ picked }}; #{{ execution.pk }}",
    })
    trigger = make_trigger(cluster, [pick, script, email], name="cpu-high")

    execution = fire_trigger(trigger, reasons={"trigger": "cpu-high", "counter": "cpu", "node": "web-1",
                                               "values": [97.5]})
    assert execution.status == ExecutionStatus.PENDING and execution.size_before == 2
    assert execution.fired_by == "trigger cpu-high" and execution.automatic
    execution = chain.run_inline(execution)

    assert execution.status == ExecutionStatus.SUCCEEDED, [s.error for s in steps(execution)]
    assert [s.status for s in steps(execution)] == [StepStatus.SUCCEEDED] * 3
    assert [s.action_name for s in steps(execution)] == [pick.name, script.name, email.name]
    first, second, third = steps(execution)
    assert first.finished <= second.started and second.finished <= third.started
    # The LocalScript ran on the node the first step chose (each sshd has its own HOME).
    assert f"home={sshd_nodes[1].home}" in second.output
    assert "oops" in second.output  # stderr captured too
    assert execution.target_node.name == "web-2" and execution.target_node_name == "web-2"
    assert execution.data["picked"] == "web-2" and execution.data["counter"] == "cpu"
    assert execution.size_after == 2 and execution.finished is not None
    [message] = mail.outbox
    assert message.subject == "cpu-high on web: web-2 (cpu=97.5)"
    assert message.body == f"new: web-2; picked web-2; #{execution.pk}"


def test_a_failing_step_stops_the_chain_and_later_steps_are_skipped(cluster, sshd_nodes):
    fail = make_action(cluster, K.LOCAL_SCRIPT, {"script": "echo step output; echo broken >&2; exit 3"})
    email = make_action(cluster, K.EMAIL, {"to": ["ops@example.com"], "subject": "never"})
    trigger = make_trigger(cluster, [fail, email])
    execution = chain.run_inline(fire_trigger(trigger, reasons={"node_id": cluster.nodes.get(name="web-1").pk}))

    failed, skipped = steps(execution)
    assert execution.status == ExecutionStatus.FAILED and execution.finished is not None
    assert failed.status == StepStatus.FAILED
    assert "exited with status 3" in failed.error and "broken" in failed.error
    assert "step output" in failed.output
    assert skipped.status == StepStatus.SKIPPED and skipped.started is None
    assert mail.outbox == []


def test_a_failed_execution_resumes_from_its_failed_step(cluster, tmp_path):
    runs = tmp_path / "runs"
    flag = tmp_path / "flag"
    count = make_action(cluster, COUNT, {"path": str(runs)}, validate=False)
    needs_flag = make_action(cluster, K.LOCAL_SCRIPT, {"script": f"test -f {flag} || {{ echo no flag; exit 1; }}"})
    email = make_action(cluster, K.EMAIL, {"to": ["ops@example.com"], "subject": "done"})
    trigger = make_trigger(cluster, [count, needs_flag, email])
    execution = chain.run_inline(
        fire_trigger(trigger, reasons={"node_id": cluster.nodes.get(name="web-1").pk})
    )
    assert [s.status for s in steps(execution)] == ["succeeded", "failed", "skipped"]

    flag.write_text("now it exists")
    execution = resume(execution, fired_by="user alice")
    assert execution.status == ExecutionStatus.PENDING
    assert [s.status for s in steps(execution)] == ["succeeded", "pending", "pending"]
    execution = chain.run_inline(execution)

    assert execution.status == ExecutionStatus.SUCCEEDED
    assert [s.status for s in steps(execution)] == ["succeeded"] * 3
    assert runs.read_text().count("\n") == 1  # the succeeded first step did not run again
    assert "resumed by user alice from step 2 " in execution.log and "no flag" in execution.log
    assert [m.subject for m in mail.outbox] == ["done"]
    with pytest.raises(FiringError, match="only a failed execution can be resumed"):
        resume(execution)


def test_a_step_past_its_timeout_fails_in_bounded_time_and_the_remote_script_dies(cluster):
    marker = "sleep 61.4242"
    sleeper = make_action(cluster, K.LOCAL_SCRIPT, {"script": f"echo started; {marker}"}, timeout_s=2)
    execution = fire_action(sleeper, cluster=cluster, target_node=cluster.nodes.first(), fired_by="test")
    started = time.monotonic()
    execution = chain.run_inline(execution)
    elapsed = time.monotonic() - started

    [step] = steps(execution)
    assert execution.status == ExecutionStatus.FAILED
    assert "timed out" in step.error and "started" in step.error
    assert elapsed < 4, elapsed
    # The remote process group was stopped too, not left sleeping on the node.
    deadline = time.monotonic() + 5
    while subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, f"{marker!r} still running on the node"
        time.sleep(0.1)


def test_a_step_needing_a_target_fails_clearly_without_one(cluster):
    script = make_action(cluster, K.LOCAL_SCRIPT, {"script": "true"})
    execution = chain.run_inline(fire_action(script, cluster=cluster, fired_by="test"))
    [step] = steps(execution)
    assert step.status == StepStatus.FAILED
    assert "LocalScript needs a target node" in step.error


def test_a_duplicate_delivery_of_a_finished_or_running_step_runs_nothing(cluster, tmp_path):
    runs = tmp_path / "runs"
    count = make_action(cluster, COUNT, {"path": str(runs)}, validate=False)
    trigger = make_trigger(cluster, [count, count.__class__.objects.get(pk=count.pk)])
    execution = fire_trigger(trigger, reasons={})
    first, second = steps(execution)

    assert chain.run_step(first.pk) == second.pk
    # The same message again (not redelivered by the broker): nothing runs,
    # but the chain is moved on in case the first delivery died before
    # publishing the next step.
    assert chain.run_step(first.pk) == second.pk
    assert runs.read_text().count("\n") == 1

    # A step held by a live attempt (lease not expired): a duplicate does nothing.
    ExecutionStep.objects.filter(pk=second.pk).update(
        status=StepStatus.RUNNING, claim="other", lease_expires=timezone.now() + timedelta(minutes=5)
    )
    assert chain.run_step(second.pk) is None
    assert runs.read_text().count("\n") == 1
    # Redelivered by the broker: the holder is gone, this attempt takes over.
    assert chain.run_step(second.pk, redelivered=True) is None
    second.refresh_from_db()
    assert second.status == StepStatus.SUCCEEDED and second.attempts == 1
    assert runs.read_text().count("\n") == 2
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCEEDED


def test_a_step_cannot_run_before_the_steps_before_it(cluster, tmp_path):
    count = make_action(cluster, COUNT, {"path": str(tmp_path / "runs")}, validate=False)
    trigger = make_trigger(cluster, [count, count])
    execution = fire_trigger(trigger, reasons={})
    first, second = steps(execution)
    assert chain.run_step(second.pk) is None
    second.refresh_from_db()
    assert second.status == StepStatus.PENDING and second.attempts == 0


def test_the_reaper_fails_a_step_whose_worker_was_lost(cluster, tmp_path):
    count = make_action(cluster, COUNT, {"path": str(tmp_path / "runs")}, validate=False)
    trigger = make_trigger(cluster, [count, count])
    execution = fire_trigger(trigger, reasons={})
    first, second = steps(execution)
    ExecutionStep.objects.filter(pk=first.pk).update(
        status=StepStatus.RUNNING, claim="lost", lease_expires=timezone.now() - timedelta(seconds=1)
    )
    assert chain.reap_stale_steps() == 1
    execution.refresh_from_db()
    first.refresh_from_db()
    second.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert first.status == StepStatus.FAILED and "worker" in first.error
    assert second.status == StepStatus.SKIPPED
    assert chain.reap_stale_steps() == 0


def test_output_is_bounded_keeping_head_and_tail():
    text = "HEAD" + "x" * 100_000 + "TAIL"
    bounded = chain.bound_text(text, 1000)
    assert len(bounded) <= 1000 + 60
    assert bounded.startswith("HEAD") and bounded.endswith("TAIL") and "characters cut" in bounded
    assert chain.bound_text("short", 1000) == "short"


def test_time_limits_follow_the_action_timeout():
    limits = chain.TimeLimits.for_timeout(30)
    assert 30 < limits.soft < limits.hard


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_racing_for_one_step_run_it_once(cluster, tmp_path):
    import threading

    from django.db import connection

    runs = tmp_path / "runs"
    count = make_action(cluster, COUNT, {"path": str(runs)}, validate=False)
    for _ in range(5):
        execution = fire_action(count, cluster=cluster, fired_by="test", enqueue=False)
        step = execution.steps.get()
        barrier = threading.Barrier(2)

        def deliver():
            try:
                barrier.wait(5)
                chain.run_step(step.pk)
            finally:
                connection.close()

        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        step.refresh_from_db()
        assert step.status == StepStatus.SUCCEEDED and step.attempts == 1
    assert runs.read_text().count("\n") == 5
