"""The live collect workers, as the dispatcher sees them: a registry of
heartbeats in memcached.

Each collect worker (its main process, which consumes the broker) claims one
of SLOTS keys with an atomic ``add`` and rewrites it every COLLECT_HEARTBEAT_S
with an expiry of COLLECT_CONSUMER_TTL_S; a worker that stops cleanly deletes
its key, one that dies simply stops renewing it. The dispatcher reads all
slots in one batched get every tick — cheaper and steadier than asking the
workers over the broker (``inspect``), and a dead worker drops out within
the TTL, after which its nodes hash onto the others. Memcached unreachable
reads as "no registry": batches then go to the shared ``collect`` queue.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

#: How many collect workers can advertise at once (one memcached key each).
SLOTS = 128
SLOT_KEY = "pyscaler:collect:consumer:{}:{}"
#: The per-worker queue's name: the shared queue's, then the worker's name.
QUEUE_PREFIX = "collect."


@dataclass(frozen=True)
class Consumer:
    """One collect worker: its Celery node name and pool processes."""

    name: str
    processes: int = 1

    @property
    def queue(self) -> str:
        return queue_name(self.name)

    def encode(self) -> str:
        return f"{self.processes} {self.name}"

    @classmethod
    def decode(cls, text: str) -> Consumer | None:
        processes, _, name = text.partition(" ")
        if not processes.isdigit() or not name:
            return None
        return cls(name, max(1, int(processes)))


def queue_name(worker_name: str) -> str:
    return f"{QUEUE_PREFIX}{worker_name}"


def namespace(broker_url: str) -> str:
    """The registry's namespace: the broker's virtual host. Workers of one
    installation share it however each host names the broker; installations
    (or test sessions) on other vhosts sharing a memcached never see each
    other's workers, whose queues their broker does not have."""
    first = str(broker_url).split(";")[0]
    return urlsplit(first).path.lstrip("/") or "/"


def slot_keys(space: str) -> list[str]:
    tag = hashlib.blake2b(space.encode(), digest_size=6).hexdigest()  # memcached keys: no spaces
    return [SLOT_KEY.format(tag, slot) for slot in range(SLOTS)]


def live_consumers(store, space: str) -> list[Consumer] | None:
    """The advertised workers, by name; None when the registry cannot be read."""
    try:
        found = store.get_many(slot_keys(space))
    except Exception as exc:  # noqa: BLE001 - no registry: the shared queue serves
        log.warning("collect workers' registry unreadable (%s): batches go to the shared queue", exc)
        return None
    consumers = {}
    for text in found.values():
        consumer = Consumer.decode(text)
        if consumer is not None:
            consumers[consumer.name] = consumer
    return [consumers[name] for name in sorted(consumers)]


class Heartbeat:
    """A worker's entry in the registry, renewed by a daemon thread."""

    def __init__(self, consumer: Consumer, space: str, store_factory: Callable, period_s: float,
                 ttl_s: int) -> None:
        self.consumer = consumer
        self.space = space
        self.store_factory = store_factory
        self.period_s = period_s
        self.ttl_s = max(1, int(ttl_s))
        self.slot: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> bool:
        """Advertise once; True when the entry is in place."""
        store = self.store_factory()
        value = self.consumer.encode()
        try:
            if self.slot is not None and store.get_many([self.slot]).get(self.slot) == value:
                store.set_many({self.slot: value}, expire=self.ttl_s)
                return True
            self.slot = None  # lapsed (or taken over while this process stalled): claim afresh
            for key in slot_keys(self.space):
                if store.add(key, value, expire=self.ttl_s):
                    self.slot = key
                    return True
        except Exception as exc:  # noqa: BLE001 - memcached down: try again next period
            log.warning("collect worker %s cannot advertise itself: %s", self.consumer.name, exc)
            return False
        log.error("collect worker %s cannot advertise itself: all %d registry slots are taken",
                  self.consumer.name, SLOTS)
        return False

    def start(self) -> None:
        self.beat()
        self._thread = threading.Thread(target=self._run, name="collect-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.beat()

    def withdraw(self) -> None:
        """Stop advertising: the dispatcher moves this worker's nodes at its next tick."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * self.period_s + 1)
        if self.slot is None:
            return
        try:
            store = self.store_factory()
            if store.get_many([self.slot]).get(self.slot) == self.consumer.encode():
                store.delete(self.slot)
        except Exception as exc:  # noqa: BLE001 - the entry expires by itself
            log.warning("collect worker %s cannot withdraw from the registry: %s", self.consumer.name, exc)
        self.slot = None
