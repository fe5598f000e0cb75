"""Run work in several threads released together, each with its own database
connection: how the concurrency tests make two chains or two evaluators
really race."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def at_once(work: Callable[[Any], object], count: int, prepare: Callable[[int], Any] = lambda i: i,
            timeout: float = 120) -> tuple[list[object], list[BaseException]]:
    """``work(prepare(i))`` in ``count`` threads; ``prepare`` runs before the
    barrier (so set-up is not part of the race). Returns the results in thread
    order (None where a thread failed) and the errors."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        try:
            arg = prepare(i)
            barrier.wait(timeout=30)
            results[i] = work(arg)
        except BaseException as exc:  # noqa: BLE001 - judged by the test
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results, errors
