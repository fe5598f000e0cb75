"""Raw samples of some series, read back from sample-log files.

memcached keeps samples for SAMPLE_RETENTION_S (2 days); each worker host's
sample log (apps.monitoring.samplelog) keeps them as long as its rotation
allows. A backtest beyond memcached's retention can so still count raw samples
— sample by sample, as live — when given the logs of the worker hosts that
collected the trigger's nodes (``manage.py backtest --samplelog``). A host's
log holds only what its own worker collected, so the caller says which files
(copied from several hosts into one directory, say) and the replay reports how
complete they were instead of guessing.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

from .backfill import parse_line

#: The file names a sample-log directory holds (live file and rotated backups).
LOG_GLOB = "samples-*.jsonl*"


class SampleLogError(ValueError):
    """A path given for sample logs that is neither a file nor a directory of them."""


def log_files(paths: Iterable[Path | str]) -> list[Path]:
    """The sample-log files named by ``paths``: files as given, directories
    by their ``samples-*.jsonl*`` files (oldest backup first)."""
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found = sorted((p for p in path.glob(LOG_GLOB) if _is_log(p)),
                           key=lambda p: (p.name.split(".jsonl")[0], -_backup_number(p)))
            if not found:
                raise SampleLogError(f"samplelog: {path} holds no {LOG_GLOB} file")
            files.extend(found)
        else:
            raise SampleLogError(f"samplelog: {path} is not a file or directory")
    return files


def _is_log(path: Path) -> bool:
    """A live log (``.jsonl``) or a rotated one (``.jsonl.N``), not a
    compressed copy an operator made (``.jsonl.3.gz``)."""
    tail = path.name.split(".jsonl", 1)[1]
    return tail == "" or tail[1:].isdigit()


def _backup_number(path: Path) -> int:
    suffix = path.name.rsplit(".", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0


def read_series(files: Iterable[Path], wanted: Mapping[tuple[str, int, int, int], str], start: datetime,
                end: datetime) -> dict[str, dict[int, float]]:
    """Base key -> {stamp (epoch s) -> value} for the series in ``wanted``
    ((kind, node id, endpoint id or 0, counter id) -> base key) stamped in
    [start, end]. Error lines and unreadable lines are left out, as samples
    that were never collected."""
    low, high = start.timestamp(), end.timestamp()
    out: dict[str, dict[int, float]] = {}
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                row = parse_line(line, None)
                if row is None:
                    continue
                kind, node, endpoint, counter, stamp, value = row
                base = wanted.get((kind, node, endpoint, counter))
                if base is not None and low <= stamp <= high:
                    out.setdefault(base, {})[stamp] = value
    return out
