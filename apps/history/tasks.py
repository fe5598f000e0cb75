"""Thin Celery wrappers over apps.history."""
from __future__ import annotations

from celery import shared_task

from . import ingest, maintenance


@shared_task(ignore_result=True)
def summarise_task(batch_id: str, rows: list[list]) -> int:
    """Merge one collect round's samples (feed.enqueue_samples) into the
    summaries; a redelivered message is merged once (ingest)."""
    return ingest.apply_rows([tuple(row) for row in rows], batch_id=batch_id)


@shared_task(ignore_result=True)
def maintain_task() -> dict:
    """Run by beat: partitions ahead, retention, old batch ids."""
    return maintenance.run()
