"""Thin Celery wrappers over apps.monitoring.collection."""
from __future__ import annotations

from datetime import datetime, timezone

from celery import shared_task

from apps.monitoring import collection
from apps.monitoring.scheduling import NodeWork


@shared_task(name="pyscaler.control.dispatch_collection", ignore_result=True)
def dispatch_collection_task() -> int:
    """Run by beat every COLLECT_TICK_S on the control queue."""
    return collection.dispatch_round(datetime.now(timezone.utc), _enqueue)


def _enqueue(work: list[dict], at: str, expires: int | None) -> None:
    collect_task.apply_async(args=(work, at), expires=expires)


@shared_task(name="pyscaler.monitoring.collect", ignore_result=True)
def collect_task(work: list[dict], at: str) -> dict:
    """Collect one batch of nodes for the round dispatched at ``at``."""
    report = collection.collect_batch([NodeWork(**w) for w in work], datetime.fromisoformat(at))
    return report.as_dict()
