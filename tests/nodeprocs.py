"""Processes a script left on a test node. The test sshd nodes are this
machine, so what a command started on a "node" shows in the local process
table; a sleep with a random fraction is a command line nothing else has."""
from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


def unique_sleep() -> str:
    """Seconds for `sleep` (300 and a random fraction) that mark its process."""
    return f"300.{secrets.randbelow(10**9):09d}"


def running(marker: str) -> list[str]:
    """`pid command line` of every process whose command line holds `marker`."""
    found = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True, timeout=10)
    return found.stdout.splitlines()


def left_after(marker: str, wait_s: float) -> list[str]:
    """What still runs after waiting up to `wait_s` for it all to end."""
    end = time.monotonic() + wait_s
    while (left := running(marker)) and time.monotonic() < end:
        time.sleep(0.1)
    return left


def kill_all(marker: str) -> None:
    """Clean up after a failed test, so no sleep outlives the run."""
    subprocess.run(["pkill", "-KILL", "-f", marker], capture_output=True, timeout=10)


@dataclass
class Watch:
    elapsed: float = 0.0  # seconds the block took
    left: list[str] = field(default_factory=list)  # what still ran `wait_s` after it


@contextmanager
def watched(marker: str, wait_s: float = 3.0) -> Iterator[Watch]:
    """Time a step that should stop everything marked `marker`, then see what
    it left running; whatever the outcome, nothing marked outlives the test.
    Put ``pytest.raises`` inside: ``with watched(m) as w, pytest.raises(E):``."""
    watch = Watch()
    started = time.monotonic()
    try:
        yield watch
        watch.elapsed = time.monotonic() - started
        watch.left = left_after(marker, wait_s)
    finally:
        kill_all(marker)

