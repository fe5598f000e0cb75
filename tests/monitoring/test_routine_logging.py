"""Routine ticks log at DEBUG: Celery's received/succeeded lines of the
every-second tasks (dispatcher, evaluator, collect batches) and beat's sends
of them, and a dispatch like the one before it. INFO is kept for what
happens: other tasks (action steps), failures, work after a quiet spell."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

from apps.monitoring import collection
from apps.monitoring.collection import round as collection_round
from apps.monitoring.samples import floor_stamp
from tests.factories import SSHCounterFactory, make_cluster, make_node

TICKS = ["apps.control.tasks.evaluate_task", "apps.monitoring.tasks.dispatch_collection_task",
         "apps.monitoring.tasks.collect_task"]


def _celery_lines(task: str) -> None:
    context = {"id": "0f7c", "name": task, "runtime": 0.01, "return_value": "{}", "args": "()", "kwargs": "{}"}
    logging.getLogger("celery.worker.strategy").info(LOG_RECEIVED, context, extra={"data": context})
    logging.getLogger("celery.app.trace").info(LOG_SUCCESS, context, extra={"data": context})
    logging.getLogger("celery.beat").info("Scheduler: Sending due task %s (%s)", "entry", task)


@pytest.mark.parametrize("task", TICKS)
def test_celery_lines_of_tick_tasks_are_debug(caplog, task):
    with caplog.at_level(logging.INFO):
        _celery_lines(task)
    assert [r for r in caplog.records if task in r.getMessage()] == []
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        _celery_lines(task)
    levels = {r.levelname for r in caplog.records if task in r.getMessage()}
    assert levels == {"DEBUG"}


def test_celery_lines_of_other_tasks_stay_info(caplog):
    with caplog.at_level(logging.INFO):
        _celery_lines("apps.control.tasks.run_step_task")
    assert [r.levelname for r in caplog.records] == ["INFO", "INFO", "INFO"]


@pytest.mark.django_db
def test_the_dispatcher_logs_info_only_after_a_quiet_spell(settings, memcached_clean, caplog):
    settings.MEMCACHED_SERVERS = memcached_clean
    collection._store.cache_clear()
    collection_round._last_sent.clear()
    cluster = make_cluster("web")
    make_node(cluster, name="web-1")
    SSHCounterFactory(cluster=cluster, name="load", interval_s=5)
    t0 = floor_stamp(datetime.now(timezone.utc), 5)
    with caplog.at_level(logging.DEBUG, logger="apps.monitoring"):
        for seconds in range(0, 11):  # ten ticks a second apart: three due stamps
            collection.dispatch_round(t0 + timedelta(seconds=seconds), lambda *a: None)
        collection.dispatch_round(t0 + timedelta(seconds=3600), lambda *a: None)
    collection._store.cache_clear()
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(info) == 2, info
    assert "first dispatch" in info[0] and "without work" in info[1]
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
