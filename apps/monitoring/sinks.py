"""Sample sinks: what else wants each round's samples once they are stored.

Collection knows nothing about its consumers beyond this list: an app that
keeps something derived from samples (apps.history's persisted summaries)
registers a callable in its ``AppConfig.ready()``, and monitoring never imports
it (the import contract in .importlinter). A sink runs in the collect task
right after the memcached write and the sample log, so it must be quick (hand
the work on, e.g. to a task) and must not raise: a failing sink is logged and
costs collection nothing.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from apps.monitoring.samples import Sample

log = logging.getLogger(__name__)

Sink = Callable[[Sequence[Sample]], None]

_sinks: dict[str, Sink] = {}


def register(name: str, sink: Sink) -> None:
    """Add (or replace) the sink called ``name``."""
    _sinks[name] = sink


def unregister(name: str) -> None:
    _sinks.pop(name, None)


def registered() -> list[str]:
    return list(_sinks)


def deliver(samples: Sequence[Sample]) -> None:
    """Hand a round's samples to every sink; never raises."""
    if not samples:
        return
    for name, sink in list(_sinks.items()):
        try:
            sink(samples)
        except Exception:  # noqa: BLE001 - a consumer's failure must not cost collection
            log.exception("sample sink %s failed; its copy of %d sample(s) is lost (the sample log keeps them)",
                          name, len(samples))
