"""The sample log: every sample and every collection error as one JSON line.

This is the seed's "filesystem log" and the record that survives a memcached
restart, so it must neither lose nor garble a line while several Celery pool
processes (and several worker instances) on one host append at once.

Design: one file per host, ``samples-<host>.jsonl`` in SAMPLE_LOG_DIR, rotated
by size (SAMPLE_LOG_MAX_BYTES) or when the UTC day changes, keeping
SAMPLE_LOG_BACKUPS numbered backups (``.1`` newest), so the disk it takes is
bounded whatever the number of processes. Each batch of lines is one
``write()`` on an ``O_APPEND`` descriptor while holding an exclusive ``flock``
on ``.samples-<host>.lock``; rotation happens under the same lock, and a
writer whose descriptor no longer names the live file (another process
rotated it) reopens before writing. So lines are never interleaved, never
written into a file being renamed, and never lost by a rotation.

Why not the logging module: RotatingFileHandler and TimedRotatingFileHandler
rotate per process without coordination (documented as unsafe for several
processes); WatchedFileHandler reopens but never rotates. Libraries that add
the lock (concurrent-log-handler) would bring a dependency for ~60 lines.

The lock and the descriptor are reopened after a fork: flock locks belong to
the open file description, which a forked child would share with its parent
and siblings.

Line fields: ``ts`` (collection time, ISO 8601 UTC), ``kind`` (ssh/jmx),
``node``, ``jvm``, ``counter``, ``stamp`` (the sample's key stamp), then
``value`` for a sample or ``error`` and ``output`` for an error. Fields that
do not apply are null.
"""
from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import socket
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from apps.monitoring.samples import CollectionError, Sample, format_stamp

log = logging.getLogger(__name__)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_number(value: float) -> str:
    # JSON has no NaN/Infinity: such a value is written as a string.
    return repr(float(value)) if math.isfinite(value) else json.dumps(str(value))


class SampleLog:
    """Appends samples and errors to this host's sample log, rotating it."""

    def __init__(self, directory: Path | str, max_bytes: int = 50 * 1024 * 1024, backups: int = 10,
                 host: str | None = None) -> None:
        if max_bytes <= 0:
            raise ValueError(f"SAMPLE_LOG_MAX_BYTES must be positive, not {max_bytes}")
        if backups < 1:
            raise ValueError(f"SAMPLE_LOG_BACKUPS must be at least 1, not {backups}")
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.backups = int(backups)
        self.host = (host or socket.gethostname()).replace("/", "_")
        self.path = self.directory / f"samples-{self.host}.jsonl"
        self.lock_path = self.directory / f".samples-{self.host}.lock"
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._pid: int | None = None

    @classmethod
    def from_settings(cls) -> SampleLog:
        from django.conf import settings

        return cls(settings.SAMPLE_LOG_DIR, max_bytes=settings.SAMPLE_LOG_MAX_BYTES,
                   backups=settings.SAMPLE_LOG_BACKUPS)

    # -- lines ------------------------------------------------------------------
    @staticmethod
    def format_sample(sample: Sample, ts: str, stamp: str) -> str:
        s = sample.series
        jvm = "null" if s.jvm_id is None else str(s.jvm_id)
        # Built by hand: json.dumps per line would be most of a 10,000-sample
        # round's logging time; every field here is a number or a fixed word.
        return (f'{{"ts":"{ts}","kind":"{s.kind}","node":{s.node_id},"jvm":{jvm},'
                f'"counter":{s.counter_id},"stamp":"{stamp}","value":{_json_number(sample.value)}}}\n')

    @staticmethod
    def format_error(error: CollectionError) -> str:
        series = error.series
        return json.dumps({
            "ts": _iso(error.at),
            "kind": error.kind,
            "node": error.node_id,
            "jvm": series.jvm_id if series else error.jvm_id,
            "counter": series.counter_id if series else None,
            "stamp": None,
            "error": error.message,
            "output": error.output,
        }, ensure_ascii=False) + "\n"

    def format(self, results: Iterable[Sample | CollectionError]) -> str:
        now = _iso(datetime.now(timezone.utc))
        # A round shares a few timestamps: format each once.
        ts_text: dict[datetime, str] = {}
        stamp_text: dict[datetime, str] = {}
        lines = []
        for item in results:
            if isinstance(item, Sample):
                if item.collected_at is None:
                    ts = now
                elif (ts := ts_text.get(item.collected_at)) is None:
                    ts = ts_text[item.collected_at] = _iso(item.collected_at)
                if (stamp := stamp_text.get(item.stamp)) is None:
                    stamp = stamp_text[item.stamp] = format_stamp(item.stamp)
                lines.append(self.format_sample(item, ts, stamp))
            elif isinstance(item, CollectionError):
                lines.append(self.format_error(item))
            else:
                log.warning("sample log: %r is neither a sample nor a collection error; not logged", item)
        return "".join(lines)

    # -- writing ----------------------------------------------------------------
    def write(self, results: Iterable[Sample | CollectionError]) -> int:
        """Append one line per sample and per error; returns the line count.
        Raises OSError when the directory cannot be written (the caller logs it)."""
        text = self.format(results)
        if not text:
            return 0
        data = text.encode("utf-8")
        self._ensure_open()
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self._rotate_if_needed(len(data))
            self._reopen_if_moved()
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        return text.count("\n")

    def _ensure_open(self) -> None:
        if self._pid != os.getpid():
            # A forked child must not share its parent's lock (see module docstring).
            self._fd = self._lock_fd = None
            self._pid = os.getpid()
        if self._lock_fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _open_log(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _reopen_if_moved(self) -> None:
        try:
            live = os.stat(self.path)
        except FileNotFoundError:
            live = None
        if self._fd is None or live is None:
            self._open_log()
            return
        mine = os.fstat(self._fd)
        if (mine.st_dev, mine.st_ino) != (live.st_dev, live.st_ino):
            self._open_log()

    def _rotate_if_needed(self, incoming: int) -> None:
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return
        if current.st_size == 0:
            return
        too_big = current.st_size + incoming > self.max_bytes
        written_day = datetime.fromtimestamp(current.st_mtime, tz=timezone.utc).date()
        new_day = written_day != datetime.now(timezone.utc).date()
        if too_big or new_day:
            self._rotate()

    def _rotate(self) -> None:
        for i in range(self.backups - 1, 0, -1):
            older = self._backup(i)
            if older.exists():
                os.replace(older, self._backup(i + 1))
        os.replace(self.path, self._backup(1))

    def _backup(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def files(self) -> list[Path]:
        """This host's log files, oldest first."""
        backups = [self._backup(i) for i in range(self.backups, 0, -1)]
        return [p for p in [*backups, self.path] if p.exists()]

    def records(self) -> Iterator[dict]:
        """Every line of this host's log files, oldest first."""
        for path in self.files():
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    yield json.loads(line)

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None and self._pid == os.getpid():
                os.close(fd)
        self._fd = self._lock_fd = None

    def __repr__(self) -> str:
        return f"SampleLog({self.path}, max_bytes={self.max_bytes}, backups={self.backups})"
