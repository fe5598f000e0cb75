"""The Celery harness is a real worker process on the real RabbitMQ broker: a
task goes through the broker to the worker and its result comes back; the
worker sees the test's database rows; a task whose worker is killed is
redelivered to another worker."""
from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from django.contrib.auth.models import User

from devservers.celery_worker import PROBE_TASK_PREFIX, CeleryWorker, wait_until
from pyscaler.celery import app, ping


def test_it_runs_a_task_sent_through_rabbitmq_on_the_real_worker(celery_worker: CeleryWorker) -> None:
    result = ping.delay("hello").get(timeout=20)
    assert result == {"value": "hello", "hostname": celery_worker.nodename}


def test_the_worker_sees_rows_the_test_committed(celery_worker: CeleryWorker) -> None:
    before = app.send_task(PROBE_TASK_PREFIX + "count_rows", args=["auth.User"]).get(timeout=20)
    User.objects.create_user("worker-visible")
    after = app.send_task(PROBE_TASK_PREFIX + "count_rows", args=["auth.User"]).get(timeout=20)
    assert after == before + 1


def test_the_worker_gets_the_session_services(celery_worker: CeleryWorker,
                                              memcached_servers: list[str]) -> None:
    servers = app.send_task(PROBE_TASK_PREFIX + "setting", args=["MEMCACHED_SERVERS"]).get(timeout=20)
    assert servers == memcached_servers


def test_a_task_of_a_killed_worker_is_redelivered(make_celery_worker: Callable[..., CeleryWorker],
                                                  tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    started.mkdir()
    first = make_celery_worker(name="doomed", concurrency=1, isolated=True)
    result = app.send_task(PROBE_TASK_PREFIX + "block_until", args=[str(release), str(started)])
    wait_until(lambda: any(started.iterdir()), timeout=20, what="the task started on the first worker")
    assert [p.name.split("-")[0] for p in started.iterdir()] == ["doomed@" + first.nodename.split("@")[1]]
    first.kill()
    assert not first.running
    second = make_celery_worker(name="heir", concurrency=1, isolated=True)
    release.touch()
    outcome = result.get(timeout=30)
    assert outcome == {"hostname": second.nodename, "redelivered": True}


def test_stop_is_a_warm_shutdown_that_lets_the_running_task_finish(
        make_celery_worker: Callable[..., CeleryWorker], tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    started.mkdir()
    worker = make_celery_worker(name="warm", concurrency=1, isolated=True)
    result = app.send_task(PROBE_TASK_PREFIX + "block_until", args=[str(release), str(started)])
    wait_until(lambda: any(started.iterdir()), timeout=20, what="the task started")
    stopper = threading.Thread(target=worker.stop, kwargs={"timeout": 20})
    stopper.start()
    # The worker got SIGTERM while the task still blocks; it must wait for it.
    wait_until(lambda: "Warm shutdown" in worker.log_text(), timeout=10, what="warm shutdown began")
    release.touch()
    stopper.join(timeout=30)
    assert not stopper.is_alive() and not worker.running
    assert result.get(timeout=10) == {"hostname": worker.nodename, "redelivered": False}
