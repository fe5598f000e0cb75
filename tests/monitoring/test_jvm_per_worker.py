"""Only collect workers embed a JVM in their pool processes: a control worker
never collects, so its pool processes start none (real workers on a real
broker; the JVM shows as libjvm.so mapped into the process)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def maps_libjvm(pid: int) -> bool:
    try:
        return "libjvm.so" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_a_control_worker_starts_no_jvm_and_a_collect_worker_does(make_celery_worker):
    collect = make_celery_worker(name="jvm-collect", queues=("collect",), concurrency=1, isolated=True,
                                 probes=False)
    control = make_celery_worker(name="jvm-control", queues=("control",), concurrency=1, isolated=True,
                                 probes=False)
    (collect_pool,) = collect.pool_pids()
    (control_pool,) = control.pool_pids()
    deadline = time.monotonic() + 60
    while not maps_libjvm(collect_pool) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert maps_libjvm(collect_pool), "the collect worker's pool process started no JVM:\n" + collect.log_tail()
    # The control worker forked its pool before the collect worker's JVM was
    # up; had it started one, it would be mapped by now.
    assert not maps_libjvm(control_pool), control.log_tail()
    assert not maps_libjvm(control.pid) and not maps_libjvm(collect.pid)  # main processes: never
