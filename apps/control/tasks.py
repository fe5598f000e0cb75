"""Celery tasks of the chain runner: thin wrappers over apps/control/chain.py.

Task names are Celery's default, the module path (``apps.control.tasks.run_step_task``);
settings.CELERY_TASK_ROUTES names each one's queue.
"""
from __future__ import annotations

from celery import Task, shared_task
from celery.exceptions import TimeLimitExceeded

from . import chain


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
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    next_step_id = chain.run_step(step_id, redelivered=redelivered)
    if next_step_id is not None:
        chain.publish_or_fail(next_step_id)


@shared_task(ignore_result=True)
def reap_stale_steps_task() -> int:
    return chain.reap_stale_steps()


@shared_task(ignore_result=True)
def evaluate_task() -> dict:
    """Run by beat every EVALUATE_TICK_S; several at once are safe (the firing
    claim is a compare-and-swap on the trigger row)."""
    from .evaluator import evaluate

    return evaluate().as_dict()
