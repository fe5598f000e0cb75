#!/usr/bin/env python
"""`make load`: load for the autoscaling demo. Busy loops on every core (or
LOAD_PROCESSES) for LOAD_S seconds (default 240), so the demo node's load1
climbs above the demo policy's target and the cluster grows; when it stops,
the load falls and the cluster shrinks. Ctrl-C stops it early."""
from __future__ import annotations

import multiprocessing
import os
import time


def spin(until: float) -> None:
    while time.monotonic() < until:
        pass


def main() -> None:
    seconds = float(os.environ.get("LOAD_S", "240"))
    count = int(os.environ.get("LOAD_PROCESSES", str(os.cpu_count() or 1)))
    until = time.monotonic() + seconds
    print(f"[make load] {count} busy process(es) for {seconds:.0f} s; watch the demo cluster's page", flush=True)
    workers = [multiprocessing.Process(target=spin, args=(until,)) for _ in range(count)]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join()
    except KeyboardInterrupt:
        for worker in workers:
            worker.terminate()
    print("[make load] done: the load falls over the next minutes and the demo cluster shrinks", flush=True)


if __name__ == "__main__":
    main()
