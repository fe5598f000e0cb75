"""The Webhook kind through a real Celery worker on the real RabbitMQ
broker: the worker resolves the secret reference from its own environment,
signs, posts to the receiver on loopback, and retries a 500 within the
bounds its settings give, each try visible in the execution."""
from __future__ import annotations

import pytest

from apps.actions.choices import ActionKindChoice as K
from apps.control.choices import ExecutionStatus, StepStatus
from apps.control.executions import fire_trigger
from apps.control.models import Execution
from devservers.celery_worker import wait_until
from devservers.webhook import Reply
from tests.factories import make_action, make_cluster, make_trigger

pytestmark = pytest.mark.slow

SECRET_VAR = "PYSCALER_SECRET_WEBHOOK_WORKER"


def finished(execution: Execution, timeout: float) -> Execution:
    wait_until(lambda: Execution.objects.get(pk=execution.pk).is_finished, timeout,
               what=f"execution {execution.pk} finished")
    return Execution.objects.get(pk=execution.pk)


# One test on purpose: the worker takes seconds to start and serves both firings.
def test_a_worker_posts_signed_and_retries_a_500(make_celery_worker, webhook):
    make_celery_worker(queues=("actions",), isolated=True, concurrency=1, env={
        SECRET_VAR: "worker-key", "CHAIN_STEP_RETRY_ATTEMPTS": "2", "CHAIN_STEP_RETRY_BACKOFF_S": "0.1"})
    webhook.secret = "worker-key"
    cluster = make_cluster("shop")
    hook = make_action(cluster, K.WEBHOOK, {"url": webhook.url(), "secret_ref": f"env:{SECRET_VAR}"},
                       name="hook")
    trigger = make_trigger(cluster, [hook], name="load-high")

    # 1. Delivered, signed with the key only the worker's environment holds.
    execution = finished(fire_trigger(trigger, reasons={"counter": "load1", "values": [4.2]}), 60)
    assert execution.status == ExecutionStatus.SUCCEEDED, list(execution.steps.values_list("error", flat=True))
    [request] = webhook.wait_for(1)
    assert request.signature_ok is True
    assert request.json()["fired_by"]["type"] == "trigger" and request.json()["values"] == [4.2]

    # 2. A receiver answering 500: tried CHAIN_STEP_RETRY_ATTEMPTS times, then failed.
    webhook.default = Reply(500, "upstream broken")
    execution = finished(fire_trigger(trigger, reasons={"counter": "load1", "values": [4.3]}), 60)
    step = execution.steps.get()
    assert execution.status == ExecutionStatus.FAILED and step.status == StepStatus.FAILED
    assert step.attempts == 2 and len(webhook.wait_for(3)) == 3
    assert "HTTP 500" in step.error and "upstream broken" in step.error
    assert "not tried again: 2 tries is the bound" in step.output
