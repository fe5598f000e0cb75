"""Celery tasks of the chain runner: thin wrappers over apps/control/chain.py.

Task names are Celery's default, the module path (``apps.control.tasks.run_step_task``);
settings.CELERY_TASK_ROUTES names each one's queue.
"""
from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.exceptions import Reject, TimeLimitExceeded

from . import chain, step_queue

logger = logging.getLogger(__name__)


class StepTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        # Celery acks a task killed at its hard time limit (no redelivery) and
        # calls this in the worker's main process: record the step as failed
        # here, or its execution would stay "running" until the reaper.
        if isinstance(exc, TimeLimitExceeded) and args:
            chain.fail_step(
                int(args[0]),
                f"killed at the hard time limit ({exc}): the step ignored its deadline and Celery's "
                "soft time limit",
            )


@shared_task(
    base=StepTask,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_step_task(self, step_id: int) -> None:
    _run_step(self, step_id)


#: The step task's name before task names became module paths. A step message
#: published by that release may still wait in the actions queue when workers
#: are upgraded; dropped as unregistered, it would leave its execution pending
#: for ever and block the cluster's automatic scaling. Remove in the release
#: after next.
LEGACY_RUN_STEP_TASK = "pyscaler.actions.run_step"


@shared_task(
    name=LEGACY_RUN_STEP_TASK,
    base=StepTask,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def legacy_run_step_task(self, step_id: int) -> None:
    _run_step(self, step_id)


def _run_step(task: Task, step_id: int) -> None:
    redelivered = bool((task.request.delivery_info or {}).get("redelivered"))
    next_step_id = chain.run_step(step_id, redelivered=redelivered)
    if next_step_id is None:
        return
    try:
        step_queue.publish_step(next_step_id)
    except Exception as exc:  # kombu/amqp raise many types; all mean "not queued"
        # The broker is away (a restart, an outage): failing the next step, as
        # a firing does, would end a chain whose step just succeeded. Leave it
        # pending and hand this message back unacknowledged: its redelivery,
        # once the broker is back, finds this step succeeded and publishes the
        # next one (chain._next_after_unclaimable), which runs once (its claim).
        logger.warning("step %s: cannot enqueue the next step %s (%s); this message goes back to the "
                       "queue and its redelivery will", step_id, next_step_id, exc)
        raise Reject(exc, requeue=True) from exc


@shared_task(ignore_result=True)
def reap_stale_steps_task() -> int:
    return chain.reap_stale_steps()


@shared_task(ignore_result=True)
def evaluate_task() -> dict:
    """Run by beat every EVALUATE_TICK_S; several at once are safe (the firing
    claim is a compare-and-swap on the trigger row)."""
    from .evaluator import evaluate

    return evaluate().as_dict()


@shared_task(ignore_result=True)
def evaluate_policies_task() -> dict:
    """Run by beat every POLICY_TICK_S; several at once are safe (a scaling
    is claimed with a compare-and-swap on the policy row)."""
    from .policy_runner import evaluate_policies

    return evaluate_policies().as_dict()
