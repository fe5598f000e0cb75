"""The sample log: one JSON line per sample and per error, rotated by size or
day, with several processes appending at once and nothing lost or garbled."""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from apps.monitoring.samplelog import SampleLog
from apps.monitoring.samples import CollectionError, Sample, SeriesRef

T0 = datetime(2026, 11, 23, 19, 45, 10, tzinfo=timezone.utc)
AT = datetime(2026, 11, 23, 19, 45, 11, 250000, tzinfo=timezone.utc)


def test_it_writes_one_json_line_per_sample_and_per_error(tmp_path: Path) -> None:
    log = SampleLog(tmp_path, host="node-a")
    results = [
        Sample(SeriesRef("ssh", 3, 7), T0, 0.42, collected_at=AT),
        Sample(SeriesRef("jmx", 3, 11, jvm_id=2), T0, 1024.0, collected_at=AT),
        CollectionError(node_id=3, message="output is not a number", series=SeriesRef("ssh", 3, 8),
                        output="Permission denied \"x\"\n", at=AT),
        CollectionError(node_id=4, message="JVM unreachable", jvm_id=5, at=AT),
    ]
    assert log.write(results) == 4
    lines = (tmp_path / "samples-node-a.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"ts": "2026-11-23T19:45:11.250Z", "kind": "ssh", "node": 3, "jvm": None, "counter": 7,
         "stamp": "20261123194510", "value": 0.42},
        {"ts": "2026-11-23T19:45:11.250Z", "kind": "jmx", "node": 3, "jvm": 2, "counter": 11,
         "stamp": "20261123194510", "value": 1024.0},
        {"ts": "2026-11-23T19:45:11.250Z", "kind": "ssh", "node": 3, "jvm": None, "counter": 8,
         "stamp": None, "error": "output is not a number", "output": "Permission denied \"x\"\n"},
        {"ts": "2026-11-23T19:45:11.250Z", "kind": "jmx", "node": 4, "jvm": 5, "counter": None,
         "stamp": None, "error": "JVM unreachable", "output": ""},
    ]
    assert list(log.records()) == [json.loads(line) for line in lines]


def test_non_finite_values_stay_valid_json(tmp_path: Path) -> None:
    log = SampleLog(tmp_path, host="h")
    log.write([Sample(SeriesRef("ssh", 1, 1), T0, float("nan")),
               Sample(SeriesRef("ssh", 1, 2), T0, float("inf"))])
    assert [r["value"] for r in log.records()] == ["nan", "inf"]


def test_it_rotates_by_size_and_keeps_the_configured_backups(tmp_path: Path) -> None:
    log = SampleLog(tmp_path, max_bytes=1000, backups=3, host="h")
    for i in range(40):
        log.write([Sample(SeriesRef("ssh", 1, 1), T0 + timedelta(seconds=10 * i), float(i))])
    files = log.files()
    assert [p.name for p in files] == [
        "samples-h.jsonl.3", "samples-h.jsonl.2", "samples-h.jsonl.1", "samples-h.jsonl"]
    assert all(p.stat().st_size <= 1000 for p in files)
    values = [r["value"] for r in log.records()]
    # The newest lines, in order, without a gap; the oldest went with the dropped backup.
    assert values == [float(i) for i in range(40 - len(values), 40)]
    assert len(values) > 20


def test_it_rotates_when_the_day_changes(tmp_path: Path) -> None:
    log = SampleLog(tmp_path, host="h")
    log.write([Sample(SeriesRef("ssh", 1, 1), T0, 1.0)])
    yesterday = time.time() - 86400
    os.utime(log.path, (yesterday, yesterday))
    log.write([Sample(SeriesRef("ssh", 1, 1), T0, 2.0)])
    assert [p.name for p in log.files()] == ["samples-h.jsonl.1", "samples-h.jsonl"]
    assert [r["value"] for r in log.records()] == [1.0, 2.0]


def _writer(directory: str, worker: int, batches: int) -> None:
    log = SampleLog(directory, max_bytes=4000, backups=500, host="shared")
    for batch in range(batches):
        log.write([Sample(SeriesRef("ssh", worker, batch), T0, float(line)) for line in range(3)])


def test_several_processes_rotating_one_log_lose_and_garble_nothing(tmp_path: Path) -> None:
    # The parent writes first, so forked children inherit its descriptors:
    # they must reopen rather than share its lock.
    parent = SampleLog(tmp_path, max_bytes=4000, backups=500, host="shared")
    parent.write([Sample(SeriesRef("ssh", 0, 0), T0, 0.0)])
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), worker, 150)) for worker in range(1, 5)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    files = parent.files()
    assert len(files) > 20  # it really rotated, many times, under contention
    seen = []
    for path in files:
        for line in path.read_text().splitlines():
            seen.append(json.loads(line))  # every line is whole JSON
    assert len(seen) == 1 + 4 * 150 * 3
    keys = {(r["node"], r["counter"], r["value"]) for r in seen}
    expected = {(w, b, float(v)) for w in range(1, 5) for b in range(150) for v in range(3)}
    assert keys == {(0, 0, 0.0)} | expected
    # A batch is one write: its three lines are adjacent in one file.
    for path in files:
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for i, record in enumerate(records):
            if record["node"] and record["value"] == 0.0:
                assert [r["value"] for r in records[i:i + 3]] == [0.0, 1.0, 2.0]
                batch = {(r["node"], r["counter"]) for r in records[i:i + 3]}
                assert batch == {(record["node"], record["counter"])}


def test_it_raises_an_os_error_when_the_directory_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OSError):
        SampleLog(blocker / "samples", host="h").write([Sample(SeriesRef("ssh", 1, 1), T0, 1.0)])


def test_it_refuses_bad_settings_naming_them(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SAMPLE_LOG_MAX_BYTES"):
        SampleLog(tmp_path, max_bytes=0)
    with pytest.raises(ValueError, match="SAMPLE_LOG_BACKUPS"):
        SampleLog(tmp_path, backups=0)


def test_from_settings(settings, tmp_path: Path) -> None:
    settings.SAMPLE_LOG_DIR = tmp_path / "samples"
    settings.SAMPLE_LOG_MAX_BYTES = 1234
    settings.SAMPLE_LOG_BACKUPS = 2
    log = SampleLog.from_settings()
    assert (log.directory, log.max_bytes, log.backups) == (tmp_path / "samples", 1234, 2)
    assert log.path.parent == tmp_path / "samples"
