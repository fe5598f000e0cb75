"""Thin Celery wrappers over apps.monitoring.collection."""
from __future__ import annotations

from datetime import datetime, timezone

from celery import shared_task

from apps.monitoring import collection
from apps.monitoring.collection import NodeWork


@shared_task(ignore_result=True)
def dispatch_collection_task() -> int:
    """Run by beat every COLLECT_TICK_S on the control queue."""
    return collection.dispatch_round(datetime.now(timezone.utc), _enqueue)


def _enqueue(message: dict, at: str, expires: int | None) -> None:
    collect_task.apply_async(args=(message, at), expires=expires)


@shared_task(ignore_result=True)
def collect_task(message: dict | list[dict], at: str) -> dict:
    """Collect one batch of nodes for the round dispatched at ``at``. A list
    of node/counter ids is the message of a dispatcher from before collect
    messages (apps.monitoring.collection.message), still queued during an
    upgrade."""
    when = datetime.fromisoformat(at)
    if isinstance(message, list):
        return collection.collect_batch([NodeWork.from_legacy(w) for w in message], when).as_dict()
    return collection.collect_message(message, when).as_dict()
