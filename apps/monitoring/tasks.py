"""Thin Celery wrappers over apps.monitoring.collection."""
from __future__ import annotations

import functools
import logging
from datetime import datetime, timezone

from celery import shared_task
from django.conf import settings

from apps.monitoring import collection
from apps.monitoring.collection import NodeWork, signing, worker
from apps.monitoring.collection.consumers import live_consumers, namespace

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def dispatch_collection_task() -> int:
    """Run by beat every COLLECT_TICK_S on the control queue."""
    consumers = None
    if settings.COLLECT_AFFINITY:
        space = namespace(dispatch_collection_task.app.conf.broker_url)
        consumers = functools.partial(live_consumers, collection._store(), space)
    return collection.dispatch_round(datetime.now(timezone.utc), _enqueue, consumers)


def collect_args(message: dict, at: str) -> tuple[dict, str]:
    """A collect task's arguments: the message signed for the round ``at``."""
    return signing.sign(message, at), at


def _enqueue(message: dict, at: str, expires: int | None, queue: str | None = None) -> None:
    if queue is None:
        collect_task.apply_async(args=collect_args(message, at), expires=expires)
        return
    # A worker's own queue, by routing key on the collect exchange; never
    # declared here, so a message for a worker whose queue is gone is dropped
    # (its nodes hash elsewhere once its heartbeat lapses).
    collect_task.apply_async(args=collect_args(message, at), expires=expires,
                             exchange=worker.SHARED_QUEUE, routing_key=queue)


@shared_task(bind=True, ignore_result=True)
def collect_task(self, message: dict | list[dict], at: str) -> dict:
    """Collect one batch of nodes for the round dispatched at ``at``.

    ``message`` is the dispatcher's signed envelope (collection.signing):
    anything else that carries rows is rejected before a command runs or a
    secret is resolved. A list of node/counter ids is the message of a
    dispatcher from before collect messages, still queued during an upgrade:
    it carries no command (the rows are read from the database), so it is
    collected as before."""
    when = datetime.fromisoformat(at)
    if isinstance(message, list):
        return collection.collect_batch([NodeWork.from_legacy(w) for w in message], when).as_dict()
    try:
        opened = signing.open_signed(message, at)
    except signing.ForgedMessage as exc:
        log.error("collect task %s rejected, nothing run: %s", self.request.id, exc)
        return {"rejected": str(exc)}
    return collection.collect_message(opened, when).as_dict()
