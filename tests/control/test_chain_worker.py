"""Chains through a real Celery worker on the real RabbitMQ broker: the full
path (publish on commit, one task per step, the next step published by the
worker), redelivery after the worker is SIGKILLed mid-step, and Celery's time
limits bounding a step whose code ignores its deadline."""
from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from apps.actions.choices import ActionKindChoice as K
from apps.control.choices import ExecutionStatus, StepStatus
from apps.control.executions import fire_action, fire_trigger
from apps.control.models import Execution
from devservers.celery_worker import wait_until
from devservers.util import free_port
from tests.chainkit import SLEEP, TARGET
from tests.factories import make_action, make_cluster, make_node, make_trigger
from tests.sshkit import trust


@pytest.fixture
def world(transactional_db, sshd_nodes, settings, tmp_path):
    """A cluster of the two test sshd nodes, trusted by this process and by
    the workers (SSH_KNOWN_HOSTS in their environment)."""
    known_hosts = trust(settings, tmp_path, *sshd_nodes)
    cluster = make_cluster("web")
    make_node(cluster, sshd_nodes[0], "web-1")
    make_node(cluster, sshd_nodes[1], "web-2")
    settings.CHAIN_SOFT_LIMIT_GRACE_S = 1
    settings.CHAIN_HARD_LIMIT_GRACE_S = 2
    return {"cluster": cluster, "env": {"SSH_KNOWN_HOSTS": str(known_hosts), "CHAIN_SOFT_LIMIT_GRACE_S": "1",
                                        "CHAIN_HARD_LIMIT_GRACE_S": "2"}}


@pytest.fixture
def start_worker(make_celery_worker, world):
    def start(concurrency: int = 2, **env):
        # -I tests.chainkit: the worker knows the test kinds too.
        return make_celery_worker(queues=("actions",), isolated=True, env={**world["env"], **env},
                                  concurrency=concurrency, extra_args=("-I", "tests.chainkit"))
    return start


def finished(execution: Execution, timeout: float) -> Execution:
    wait_until(lambda: Execution.objects.get(pk=execution.pk).is_finished, timeout,
               what=f"execution {execution.pk} finished")
    return Execution.objects.get(pk=execution.pk)


def test_a_chain_runs_step_by_step_on_the_worker(world, start_worker, smtp_server, sshd_nodes):
    smtp_server.clear()
    start_worker(EMAIL_URL=smtp_server.email_url)
    cluster = world["cluster"]
    pick = make_action(cluster, TARGET, {"node": "web-2"}, validate=False)
    script = make_action(cluster, K.LOCAL_SCRIPT, {"script": "echo ran in $HOME"})
    email = make_action(cluster, K.EMAIL, {"to": ["ops@example.com"], "subject": "{{ node }} is ready"})
    trigger = make_trigger(cluster, [pick, script, email], name="scale-out")

    execution = finished(fire_trigger(trigger, reasons={"counter": "cpu", "values": [99]}), 30)

    assert execution.status == ExecutionStatus.SUCCEEDED, list(execution.steps.values_list("error", flat=True))
    steps = list(execution.steps.order_by("position"))
    assert all(s.attempts == 1 for s in steps)
    assert f"ran in {sshd_nodes[1].home}" in steps[1].output
    assert [m.subject for m in smtp_server.wait_for(1)] == ["web-2 is ready"]


class HoldingSmtpHandler:
    """Accepts a message, records it, then holds the reply: a worker killed
    now has handed the message over without hearing "250"."""

    def __init__(self, hold_s: float):
        self.hold_s = hold_s
        self.messages: list[bytes] = []
        self.received = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(envelope.content)
        self.received.set()
        await asyncio.sleep(self.hold_s)
        return "250 OK"


@pytest.fixture
def holding_smtp():
    handler = HoldingSmtpHandler(hold_s=3)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    try:
        yield handler, f"smtp://127.0.0.1:{controller.port}"
    finally:
        controller.stop()


def test_a_worker_killed_mid_send_is_redelivered_and_the_mail_is_not_sent_twice(world, start_worker,
                                                                                holding_smtp):
    handler, email_url = holding_smtp
    first = start_worker(EMAIL_URL=email_url)
    email = make_action(world["cluster"], K.EMAIL, {"to": ["ops@example.com"], "subject": "scaled"})
    execution = fire_action(email, cluster=world["cluster"], fired_by="test")

    assert handler.received.wait(20), "the worker never sent the message"
    first.kill()  # SIGKILL, main process and pool: the message was never acked
    start_worker(EMAIL_URL=email_url)  # RabbitMQ redelivers to the new worker
    execution = finished(execution, 20)

    step = execution.steps.get()
    assert step.attempts == 2, "the step was not redelivered"
    assert len(handler.messages) == 1
    assert execution.status == ExecutionStatus.FAILED
    assert "interrupted while sending" in step.error and "not sent again" in step.error


def test_a_pool_process_killed_mid_script_is_redelivered_and_the_step_completes(world, start_worker, tmp_path):
    runs = tmp_path / "runs"
    # One pool process: the one killed is surely the one running the script.
    worker = start_worker(concurrency=1)
    script = make_action(world["cluster"], K.LOCAL_SCRIPT,
                         {"script": f"echo run >> {runs}; sleep 2; echo finished"})
    execution = fire_action(script, cluster=world["cluster"], target_node=world["cluster"].nodes.first(),
                            fired_by="test")

    wait_until(lambda: runs.exists(), 20, what="the script started")
    worker.kill_pool_process()  # the main process lives on and requeues the task
    execution = finished(execution, 30)

    step = execution.steps.get()
    assert execution.status == ExecutionStatus.SUCCEEDED, step.error
    assert step.attempts == 2 and "[attempt 2" in step.output and "finished" in step.output
    assert Path(runs).read_text().count("run") == 2  # scripts are re-run: write them idempotent


def test_celery_time_limits_bound_a_step_that_ignores_its_deadline(world, start_worker):
    start_worker()
    cluster = world["cluster"]
    soft = make_action(cluster, SLEEP, {"seconds": 60}, timeout_s=1, validate=False)
    hard = make_action(cluster, SLEEP, {"seconds": 60, "ignore_soft": True}, timeout_s=1, validate=False)
    started = time.monotonic()
    by_soft = fire_action(soft, cluster=cluster, fired_by="test")
    by_hard = fire_action(hard, cluster=cluster, fired_by="test")
    by_soft, by_hard = finished(by_soft, 20), finished(by_hard, 20)

    assert time.monotonic() - started < 10  # timeout 1 s + soft grace 1 s + hard grace 2 s, plus start-up
    assert by_soft.status == by_hard.status == ExecutionStatus.FAILED
    assert "timed out" in by_soft.steps.get().error
    step = by_hard.steps.get()
    assert step.status == StepStatus.FAILED and "hard time limit" in step.error

def test_a_retryable_failure_is_retried_on_the_worker_and_the_step_succeeds(world, start_worker, smtp_server):
    """The SMTP server says "try again later" (a retryable failure): the worker
    runs the step again after its pause, within the same claim, and the
    message goes out once the server accepts."""
    smtp_server.clear()
    smtp_server.fail_with = "451 Try again later"
    start_worker(EMAIL_URL=smtp_server.email_url, CHAIN_STEP_RETRY_BACKOFF_S="2")
    email = make_action(world["cluster"], K.EMAIL, {"to": ["ops@example.com"], "subject": "retried"},
                        timeout_s=30)
    execution = fire_action(email, cluster=world["cluster"], fired_by="test")
    # The refused try checkpoints "nothing sent" (sending_at back to None)
    # before the runner pauses: the server recovers during the pause.
    def refused() -> bool:
        state = execution.steps.get().state or {}
        return "sending_at" in state and state["sending_at"] is None

    wait_until(refused, 20, what="the first try failed")
    smtp_server.fail_with = None
    execution = finished(execution, 30)

    step = execution.steps.get()
    assert execution.status == ExecutionStatus.SUCCEEDED, step.error
    assert step.attempts == 2
    assert "try 1 failed (retryable)" in step.output and "451" in step.output
    assert [m.subject for m in smtp_server.wait_for(1)] == ["retried"]
