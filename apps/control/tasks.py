"""Celery tasks of the chain runner: thin wrappers over apps/control/chain.py."""
from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.exceptions import Reject, TimeLimitExceeded

from . import chain

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
    name="pyscaler.actions.run_step",
    base=StepTask,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_step_task(self, step_id: int) -> None:
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    next_step_id = chain.run_step(step_id, redelivered=redelivered)
    if next_step_id is None:
        return
    try:
        chain.publish_step(next_step_id)
    except Exception as exc:  # kombu/amqp raise many types; all mean "not queued"
        # The broker is away (a restart, an outage): failing the next step, as
        # a firing does, would end a chain whose step just succeeded. Leave it
        # pending and hand this message back unacknowledged: its redelivery,
        # once the broker is back, finds this step succeeded and publishes the
        # next one (chain._next_after_unclaimable), which runs once (its claim).
        logger.warning("step %s: cannot enqueue the next step %s (%s); this message goes back to the "
                       "queue and its redelivery will", step_id, next_step_id, exc)
        raise Reject(exc, requeue=True) from exc


@shared_task(name="pyscaler.control.reap_stale_steps", ignore_result=True)
def reap_stale_steps_task() -> int:
    return chain.reap_stale_steps()


@shared_task(name="pyscaler.control.evaluate", ignore_result=True)
def evaluate_task() -> dict:
    """Run by beat every EVALUATE_TICK_S; several at once are safe (the firing
    claim is a compare-and-swap on the trigger row)."""
    from .evaluator import evaluate

    return evaluate().as_dict()
