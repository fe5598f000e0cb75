"""A collect worker's side of node affinity, hooked to Celery's worker signals
(connected by apps.monitoring.tasks, so every worker loads them).

A worker consuming the shared ``collect`` queue also consumes a queue of its
own, ``collect.<worker name>``, bound to the ``collect`` exchange under its
own name, and advertises itself in the registry (consumers.py) once it
consumes. Its queue is not durable and expires (x-expires) once no consumer
has used it for COLLECT_QUEUE_EXPIRES_S, so a dead worker's queue vanishes
with what was routed to it. A worker run with ``--concurrency 1`` is one
collecting process, so a node's collection stays in one process; with more
processes a worker's nodes are spread over its processes without affinity
among them (see README, "How collection is spread").
"""
from __future__ import annotations

import logging

from celery import signals
from django.conf import settings
from kombu import Exchange, Queue

from .consumers import Consumer, Heartbeat, namespace, queue_name

log = logging.getLogger(__name__)

SHARED_QUEUE = "collect"
_state: dict[str, object] = {}


def own_queue(worker_name: str) -> Queue:
    name = queue_name(worker_name)
    return Queue(name, Exchange(SHARED_QUEUE, type="direct", durable=True), routing_key=name, durable=False,
                 queue_arguments={"x-expires": int(settings.COLLECT_QUEUE_EXPIRES_S * 1000)})


@signals.celeryd_after_setup.connect
def _add_own_queue(sender: str, instance, **kwargs) -> None:
    queues = instance.app.amqp.queues
    if not settings.COLLECT_AFFINITY or SHARED_QUEUE not in queues.consume_from:
        return
    queues.select_add(own_queue(sender))
    _state["consumer"] = Consumer(sender, max(1, int(getattr(instance, "concurrency", 1) or 1)))
    _state["space"] = namespace(instance.app.conf.broker_url)


@signals.worker_ready.connect
def _advertise(sender, **kwargs) -> None:
    consumer = _state.get("consumer")
    if consumer is None or "heartbeat" in _state:
        return
    from apps.monitoring.store import SampleStore

    heartbeat = Heartbeat(consumer, _state["space"], SampleStore.from_settings, float(settings.COLLECT_HEARTBEAT_S),
                          int(settings.COLLECT_CONSUMER_TTL_S))
    heartbeat.start()
    _state["heartbeat"] = heartbeat
    log.info("collect worker %s consumes %s and advertises itself for node affinity",
             consumer.name, consumer.queue)


@signals.worker_shutting_down.connect
@signals.worker_shutdown.connect
def _withdraw(**kwargs) -> None:
    heartbeat = _state.pop("heartbeat", None)
    if heartbeat is not None:
        heartbeat.withdraw()
