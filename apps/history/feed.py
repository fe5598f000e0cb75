"""From collection to the summaries: the sample sink history registers.

Collection calls ``enqueue_samples`` with each round's samples (see
apps.monitoring.sinks). It only packs them into compact rows and publishes one
task per round with a fresh batch id (apps.history.ingest says why an id), so
the collect task spends a message publish on history and no database time.
If the broker refuses the message, the samples are still in the sample log,
from which ``manage.py import_samplelog`` can rebuild the summaries.
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence

from apps.monitoring.samples import Sample

from .summary import Row


def rows_of(samples: Sequence[Sample]) -> list[Row]:
    return [(s.series.kind, s.series.node_id, s.series.jvm_id or 0, s.series.counter_id,
             int(s.stamp.timestamp()), float(s.value)) for s in samples]


def enqueue_samples(samples: Sequence[Sample]) -> None:
    from .tasks import summarise_task

    summarise_task.apply_async(args=(uuid.uuid4().hex, rows_of(samples)), retry=False)
