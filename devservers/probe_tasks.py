"""Probe tasks for test workers: they let a test look inside a worker process.

Loaded only into harness workers (``CeleryWorker(probes=True)`` runs
``celery worker --include devservers.probe_tasks``, as the test fixtures do),
never by ``autodiscover_tasks``: production workers do not carry them
(tests/harness/test_production_boundary.py). Each answers a question a harness test must ask the other
process — does it see the test's database rows, which settings did it load,
does a task survive its worker being killed.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from django.apps import apps
from django.conf import settings

from devservers.celery_worker import PROBE_TASK_PREFIX
from pyscaler.celery import app


@app.task(name=PROBE_TASK_PREFIX + "count_rows", ignore_result=False)
def count_rows(model_label: str) -> int:
    """Rows of ``app_label.ModelName`` as the worker's database connection sees them."""
    return apps.get_model(model_label).objects.count()


@app.task(name=PROBE_TASK_PREFIX + "setting", ignore_result=False)
def setting(name: str) -> object:
    value = getattr(settings, name)
    return str(value) if isinstance(value, Path) else value


@app.task(name=PROBE_TASK_PREFIX + "block_until", bind=True, ignore_result=False)
def block_until(self, release_path: str, started_dir: str, timeout: float = 60.0) -> dict:
    """Record that this worker started the task, then wait until the test
    creates ``release_path``: a task that is provably in flight when the test
    kills its worker."""
    marker = Path(started_dir) / f"{self.request.hostname}-{os.getpid()}"
    marker.write_text(str(self.request.delivery_info.get("redelivered", False)))
    deadline = time.monotonic() + timeout
    while not Path(release_path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release_path} did not appear within {timeout:.0f} s")
        time.sleep(0.05)
    redelivered = bool(self.request.delivery_info.get("redelivered"))
    return {"hostname": self.request.hostname, "redelivered": redelivered}
