"""Building summaries from sample-log files (``manage.py import_samplelog``).

Idempotence by offset: a file is known by a hash of its first line (a
rotated log keeps it under its ``.N`` name), and ``ImportedLog`` records how
many of its lines have been merged, on each history database. Lines are
merged in chunks; each chunk's merge and the new offset commit in one
transaction, so importing a file twice changes nothing, an interrupted import
resumes where it stopped, and a log that grew since is merged from where the
last import ended. (Live summaries are merged from collection already: to
backfill a period from before history was switched on without counting a
sample twice, give ``before``, the time history started.)
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path

from django.db import transaction

from apps.monitoring.samples import parse_stamp

from .ingest import clusters_of, merge_into
from .models import ImportedLog
from .placement import database_for_clusters, databases
from .summary import Row

log = logging.getLogger(__name__)

CHUNK_LINES = 5000


class ImportConflict(RuntimeError):
    """Another import of the same file moved its offset meanwhile."""


@dataclass
class FileReport:
    path: str
    lines: int = 0  # lines read and merged now
    samples: int = 0  # of which samples merged
    skipped: int = 0  # lines imported before (or not samples of this database's clusters)

    def __str__(self) -> str:
        return (f"{self.path}: {self.lines} new line(s), {self.samples} sample(s) merged, "
                f"{self.skipped} line(s) already imported")


def identity(path: Path) -> str | None:
    """The file's identity: the hash of its first line (None when empty)."""
    with open(path, "rb") as fh:
        first = fh.readline()
    return hashlib.sha256(first).hexdigest() if first else None


def parse_line(line: str, before: float | None) -> Row | None:
    """A sample line as a feed row; None for errors, unreadable lines, and
    samples stamped at or after ``before`` (epoch seconds)."""
    try:
        record = json.loads(line)
        value = record.get("value")
        if value is None or record.get("stamp") is None:
            return None
        stamp = int(parse_stamp(record["stamp"]).timestamp())
        if before is not None and stamp >= before:
            return None
        return (str(record["kind"]), int(record["node"]), int(record.get("jvm") or 0), int(record["counter"]),
                stamp, float(value))
    except (ValueError, TypeError, KeyError, AttributeError):
        log.warning("sample log line not understood, skipped: %.200s", line)
        return None


def _chunks(path: Path, skip: int) -> Iterator[list[str]]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for _ in islice(fh, skip):
            pass
        while chunk := list(islice(fh, CHUNK_LINES)):
            yield chunk


def import_file(path: Path | str, before: datetime | None = None) -> FileReport:
    """Merge the lines of ``path`` not merged before, into every history database."""
    path = Path(path)
    report = FileReport(str(path))
    key = identity(path)
    if key is None:
        return report
    cutoff = before.timestamp() if before else None
    for alias in databases():
        imported, _ = ImportedLog.objects.using(alias).get_or_create(identity=key, defaults={"name": path.name[:255]})
        report.skipped = max(report.skipped, imported.lines)
        offset = imported.lines
        for chunk in _chunks(path, offset):
            rows = [row for line in chunk if (row := parse_line(line, cutoff)) is not None]
            report.samples += _merge_chunk(alias, key, offset, len(chunk), rows)
            offset += len(chunk)
            report.lines = max(report.lines, offset - imported.lines)
    return report


def _merge_chunk(alias: str, key: str, offset: int, lines: int, rows: list[Row]) -> int:
    clusters = clusters_of(row[1] for row in rows)
    mine = set(database_for_clusters({clusters.get(row[1], 0) for row in rows}).get(alias, []))
    rows = [row for row in rows if clusters.get(row[1], 0) in mine]
    with transaction.atomic(using=alias):
        record = ImportedLog.objects.using(alias).select_for_update().get(identity=key)
        if record.lines != offset:
            raise ImportConflict(f"{record.name} is being imported by another process (at line {record.lines})")
        merge_into(alias, rows, clusters, batch_id=None)
        record.lines = offset + lines
        record.save(using=alias, update_fields=["lines", "updated_at"])
    return len(rows)
