"""Task names are their module paths and every task's queue is named in
settings.CELERY_TASK_ROUTES (no routing by name prefix)."""
from __future__ import annotations

from django.conf import settings

import apps.control.tasks
import apps.history.tasks  # noqa: F401  (registers its tasks)
import apps.monitoring.tasks  # noqa: F401  (registers its tasks)
from apps.control import step_queue
from pyscaler.celery import app

QUEUES = {"collect", "control", "actions"}


def _our_tasks():
    return {name: task for name, task in app.tasks.items()
            if name.startswith("apps.") or name.startswith("pyscaler.celery.")}


def _legacy_tasks():
    return {apps.control.tasks.LEGACY_RUN_STEP_TASK: apps.control.tasks.legacy_run_step_task}


def test_each_task_is_named_after_its_module_and_routed_explicitly():
    tasks = _our_tasks()
    assert len(tasks) >= 6
    for name, task in tasks.items():
        assert name == f"{task.run.__module__}.{task.run.__name__}"
        assert settings.CELERY_TASK_ROUTES[name]["queue"] in QUEUES, name
    assert set(settings.CELERY_TASK_ROUTES) == set(tasks) | set(_legacy_tasks())
    for name, task in _legacy_tasks().items():
        assert app.tasks[name].name == task.name and settings.CELERY_TASK_ROUTES[name]["queue"] == "actions"


def test_queues_keep_their_work_apart():
    routes = settings.CELERY_TASK_ROUTES
    assert routes["apps.monitoring.tasks.collect_task"]["queue"] == "collect"
    assert routes["apps.control.tasks.run_step_task"]["queue"] == "actions"
    assert routes["apps.control.tasks.evaluate_task"]["queue"] == "control"
    assert routes["apps.monitoring.tasks.dispatch_collection_task"]["queue"] == "control"


def test_beat_and_the_chain_name_registered_tasks():
    tasks = _our_tasks()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in tasks
    assert step_queue.RUN_STEP_TASK == apps.control.tasks.run_step_task.name
