"""Putting a step on the actions queue: what a firing, a resume and a
finished step do. Apart from chain.py (running a step), which never publishes:
the task that ran a step publishes the next one (apps/control/tasks.py)."""
from __future__ import annotations

import logging
from functools import partial

from celery import current_app
from django.db import transaction
from django.utils import timezone

from .chain import TimeLimits, fail_step
from .models import ExecutionStep

logger = logging.getLogger(__name__)


#: The step task (apps/control/tasks.py), published by name: the tasks
#: module imports this one, not the other way round.
RUN_STEP_TASK = "apps.control.tasks.run_step_task"


def publish_step(step_id: int) -> None:
    """Send the step's task to the actions queue, with Celery time limits
    derived from the action's timeout so no worker hangs on it."""
    timeout_s = ExecutionStep.objects.values_list("timeout_s", flat=True).get(pk=step_id)
    limits = TimeLimits.for_timeout(timeout_s)
    current_app.signature(RUN_STEP_TASK, args=(step_id,)).apply_async(
        soft_time_limit=limits.soft, time_limit=limits.hard
    )
    ExecutionStep.objects.filter(pk=step_id).update(enqueued=timezone.now())


def publish_or_fail(step_id: int) -> None:
    """Publish; if the broker cannot take it, fail the execution visibly
    (an operator can resume it) rather than leave it pending for ever."""
    try:
        publish_step(step_id)
    except Exception as exc:  # kombu/amqp raise many types; all mean "not queued"
        logger.exception("cannot enqueue step %s", step_id)
        fail_step(step_id, f"could not enqueue the step (is the broker up?): {type(exc).__name__}: {exc}")


def enqueue_on_commit(step_id: int) -> None:
    transaction.on_commit(partial(publish_or_fail, step_id))
