"""The life cycle every local server shares: one child process that tests
stop gracefully, kill (the host died), pause (the host hangs) and resume.

Subclasses start their process (setting ``_proc``) and say, where they differ,
which processes a signal must reach (``_signal_targets``), how a graceful stop
is asked for (``_request_stop``) and what to release afterwards (``_release``).
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from types import TracebackType
from typing import Self


class ServerProcess:
    _proc: subprocess.Popen | None = None
    #: Seconds a graceful stop may take before SIGKILL.
    stop_timeout: float = 5.0

    def start(self, timeout: float = 15.0) -> Self:  # pragma: no cover - every server has its own
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- signals ----------------------------------------------------------------

    def _signal_targets(self) -> list[int]:
        """Pids to signal; by default the process alone."""
        return [self._proc.pid]

    def _signal(self, sig: int) -> None:
        if self._proc is None:
            return
        for pid in self._signal_targets():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def _signal_group(self, sig: int) -> None:
        """Signal the process group too (servers started in a session of their own)."""
        self._signal(sig)
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, sig)
            except ProcessLookupError:
                pass

    def _request_stop(self) -> None:
        self._signal(signal.SIGTERM)

    # -- life cycle ---------------------------------------------------------------

    def stop(self, timeout: float | None = None) -> None:
        """Graceful stop, then SIGKILL if it lingers."""
        if self._proc is None:
            return
        timeout = self.stop_timeout if timeout is None else timeout
        self._signal(signal.SIGCONT)  # a paused process cannot act on a stop request
        try:
            if self._proc.poll() is None:
                self._request_stop()
            self._proc.wait(timeout=timeout)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self._signal_group(signal.SIGKILL)
            self._proc.wait(timeout=timeout)
        self._cleanup()

    def kill(self) -> None:
        """SIGKILL: the host died, nothing is closed cleanly."""
        if self._proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self._proc.wait(timeout=10)
        self._cleanup()

    def pause(self, timeout: float = 5.0) -> None:
        """SIGSTOP: the host hangs; TCP connects still complete (kernel backlog)
        but nothing answers.

        kill() only queues the stop: a thread busy on the other core may still
        answer a request or two before it halts, which made "a hung server"
        tests flaky. So wait until every thread of every target is stopped."""
        self._signal(signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while not all(_all_threads_stopped(pid) for pid in self._signal_targets()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self!r} did not stop within {timeout:g} s of SIGSTOP")
            time.sleep(0.005)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _release(self) -> None:
        """Close what the server held open besides the process (logs, pipes)."""

    def _cleanup(self) -> None:
        self._release()
        self._proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _all_threads_stopped(pid: int) -> bool:
    """True when each thread of ``pid`` is in state T (stopped), or it is gone."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return True
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii", errors="replace") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            continue
        if state not in ("T", "t", "Z", "X"):
            return False
    return True

