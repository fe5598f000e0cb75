"""manage.py import_samplelog: summaries from sample-log files written by the
real SampleLog, idempotent (a second import changes nothing), resuming on a
file that grew, and following a file through rotation."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from apps.control.models import Cluster, Node
from apps.history import backfill
from apps.history.models import HourSummary, ImportedLog, MinuteSummary
from apps.monitoring.samplelog import SampleLog
from apps.monitoring.samples import CollectionError, Sample, SeriesRef

pytestmark = pytest.mark.dbbackends
START = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)


@pytest.fixture
def node(db):
    cluster = Cluster.objects.create(name="backfill")
    return Node.objects.create(cluster=cluster, name="b1", address="127.0.0.1")


def _write(log: SampleLog, node, first: int, count: int) -> None:
    ref = SeriesRef("ssh", node.pk, 7)
    log.write([Sample(ref, START + timedelta(seconds=10 * i), float(i)) for i in range(first, first + count)]
              + [CollectionError(node_id=node.pk, message="timed out")])


def _totals():
    return (MinuteSummary.objects.aggregate(n=Sum("count"), s=Sum("sum"))["n"],
            HourSummary.objects.aggregate(n=Sum("count"), s=Sum("sum"))["s"])


def test_importing_twice_changes_nothing_and_a_grown_file_adds_only_its_new_lines(node, tmp_path, capsys):
    log = SampleLog(tmp_path, host="h1")
    _write(log, node, 0, 30)
    call_command("import_samplelog", str(log.path))
    assert _totals() == (30, float(sum(range(30))))
    rows = sorted(MinuteSummary.objects.values_list("bucket", "count", "min", "max", "last"))
    assert rows[0][1:] == (6, 0.0, 5.0, 5.0)

    call_command("import_samplelog", str(log.path))
    assert _totals() == (30, float(sum(range(30))))
    assert sorted(MinuteSummary.objects.values_list("bucket", "count", "min", "max", "last")) == rows
    assert "0 new line(s), 0 sample(s) merged, 31 line(s) already imported" in capsys.readouterr().out

    _write(log, node, 30, 12)  # the log grew
    call_command("import_samplelog", str(log.path))
    assert _totals() == (42, float(sum(range(42))))

    os.replace(log.path, log.path.with_name(log.path.name + ".1"))  # rotated: the same file by content
    call_command("import_samplelog", str(log.path.with_name(log.path.name + ".1")))
    assert _totals() == (42, float(sum(range(42))))
    assert ImportedLog.objects.get().lines == 44


def test_before_leaves_out_what_live_collection_summarised(node, tmp_path):
    log = SampleLog(tmp_path, host="h2")
    _write(log, node, 0, 12)
    cutoff = (START + timedelta(seconds=60)).isoformat()
    call_command("import_samplelog", str(log.path), before=cutoff)
    assert _totals() == (6, float(sum(range(6))))


def test_bad_input_is_refused_naming_it(node, tmp_path):
    with pytest.raises(CommandError, match="not a file"):
        call_command("import_samplelog", str(tmp_path / "nope.jsonl"))
    with pytest.raises(CommandError, match="--before"):
        call_command("import_samplelog", str(tmp_path), before="soon")
    (tmp_path / "garbled.jsonl").write_text('{"kind": "ssh", "node": 1\nnot json\n')
    report = backfill.import_file(tmp_path / "garbled.jsonl")
    assert (report.lines, report.samples) == (2, 0)
