"""Logging filters named in settings.LOGGING.

Celery logs every task it receives and every success at INFO, and beat every
task it sends. For the tasks that run on every tick (the collection
dispatcher and the evaluator, every second by default) and the collect
batches they start, that is a line or three a second saying nothing happened,
burying what did. Those lines are demoted to DEBUG (shown with
LOG_LEVEL=DEBUG); failures, retries and everything about other tasks (action
steps) stay as Celery logs them, and the dispatcher and the evaluator log at
INFO themselves when something happens (work after idle ticks, a firing).
"""
from __future__ import annotations

import logging

#: Tasks whose receipt, success and sending are routine.
ROUTINE_TASKS = frozenset({
    "apps.monitoring.tasks.dispatch_collection_task",
    "apps.control.tasks.evaluate_task",
    "apps.control.tasks.evaluate_policies_task",
    "apps.monitoring.tasks.collect_task",
})


def _task_of(record: logging.LogRecord) -> str | None:
    args = record.args
    if isinstance(args, dict):  # celery.app.trace and celery.worker.strategy: {"name": ..., "id": ...}
        return args.get("name")
    if isinstance(args, tuple) and len(args) == 2:  # celery.beat: (entry name, task name)
        return args[1]
    return None


class RoutineTasks(logging.Filter):
    """Demote INFO lines about ROUTINE_TASKS to DEBUG (and drop them unless
    DEBUG is on for the logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or _task_of(record) not in ROUTINE_TASKS:
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
