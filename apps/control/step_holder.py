"""Which chain steps a live process on this host is running.

A redelivered step message normally means its holder died (a killed worker),
so the chain runner lets the redelivery take the step over. But RabbitMQ also
redelivers when only the *connection* was lost (a broker restart, a network
blip): the worker and its pool process live on and finish the step, and a
takeover would run the step a second time beside it. While a process runs a
step it holds an exclusive ``flock`` on a file named after the step; the
kernel drops the lock when the process dies, so "the lock is taken" means "a
live process on this host still runs it". Holders on other hosts are not
seen (their files are theirs): there the takeover stays as it was.
"""
from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)


def _path(step_id: int) -> Path:
    directory = Path(settings.VAR_DIR) / "running-steps"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{int(step_id)}.lock"


@contextmanager
def holding(step_id: int) -> Iterator[None]:
    """Hold the step's lock for the block (best effort: a directory that
    cannot be written only loses the protection, never the step)."""
    try:
        handle = _path(step_id).open("a")
    except OSError as exc:
        logger.warning("step %s: no holder lock (%s)", step_id, exc)
        yield
        return
    locked = False
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except OSError:
            logger.warning("step %s: its holder lock is taken by another process", step_id)
        yield
    finally:
        if locked:
            # The step is recorded (or this attempt is giving up): a checker
            # that still finds the file unlocked finds the step not running.
            _path(step_id).unlink(missing_ok=True)
        handle.close()  # releases the lock


def held_by_live_process(step_id: int) -> bool:
    """True when a live process on this host holds the step's lock."""
    try:
        handle = _path(step_id).open("a")
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
