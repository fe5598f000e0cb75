"""Scale-out: Celery worker processes with different names (as on different
hosts, `-n collect1@%h`, `-n collect2@%h`) consuming the `collect` queue of the
real RabbitMQ share its work and add capacity; a worker of another queue
takes none of it."""
from collections import Counter
from pathlib import Path

import pytest

from pyscaler.celery import app
from devservers.celery_worker import PROBE_TASK_PREFIX, wait_until

pytestmark = pytest.mark.slow


# One test on purpose: the workers (~5 s each to start here, a JVM per pool
# process) serve both checks.
def _consuming(workers: set[str], queue: str) -> bool:
    replies = app.control.inspect(destination=sorted(workers), timeout=2).active_queues() or {}
    return all(any(q["name"] == queue for q in replies.get(name, [])) for name in workers)


def test_collect_workers_share_the_queue_and_add_capacity(make_celery_worker, tmp_path: Path):
    # isolated: a vhost of their own, so no other worker of this session
    # (consuming every queue) can take the tasks.
    collect = [make_celery_worker(name=f"collect{i}", queues=("collect",), concurrency=1, isolated=True)
               for i in (1, 2)]
    control = make_celery_worker(name="control1", queues=("control",), concurrency=1, isolated=True)
    names = {worker.nodename for worker in collect}
    # A started worker may add its consumers a moment later (node affinity adds
    # its own queue when ready): send only once both consume "collect", or the
    # first one takes nearly everything.
    wait_until(lambda: _consuming(names, "collect"), timeout=30, what="both collect workers consuming")

    # 1. Both take work from the one queue; the control worker takes none.
    results = [app.send_task("pyscaler.celery.ping", args=[f"n{i}"], queue="collect") for i in range(40)]
    replies = [result.get(timeout=60) for result in results]
    assert sorted(reply["value"] for reply in replies) == sorted(f"n{i}" for i in range(40))
    per_worker = Counter(reply["hostname"] for reply in replies)
    assert set(per_worker) == names, per_worker
    assert control.nodename not in per_worker
    # Prefetch 1 with late acks: RabbitMQ hands tasks out one at a time, so
    # neither worker starves.
    assert min(per_worker.values()) >= 5, per_worker

    # 2. Capacity: each worker has one process, so two long collection tasks
    # run at the same time only because there are two workers.
    started = tmp_path / "started"
    started.mkdir()
    release = tmp_path / "release"
    blocking = [app.send_task(PROBE_TASK_PREFIX + "block_until", args=[str(release), str(started), 60],
                              queue="collect") for _ in range(2)]
    try:
        wait_until(lambda: len(list(started.iterdir())) == 2, timeout=30, what="both tasks running at once")
        assert {marker.name.rsplit("-", 1)[0] for marker in started.iterdir()} == names
    finally:
        release.touch()
    assert {result.get(timeout=30)["hostname"] for result in blocking} == names
