"""The values collection produces and the memcached keys they are stored under.

Each counter source declares its key format (apps.monitoring.sources; the
seed's ``<table>.<nodeId>[.<jvmId>].<counterId>.<stamp>``); the same key
without the stamp holds the breach count. The stamp is the sample time in UTC
floored to the counter's interval, so the keys of any time range can be
computed and read with one batched get_many (memcached cannot scan keys).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from apps.monitoring import sources

STAMP_FORMAT = "%Y%m%d%H%M%S"


class NotANumber(ValueError):
    """What a counter read cannot be a sample (a command's output, an
    attribute's value); the message says why."""


def floor_stamp(when: datetime, interval_s: int) -> datetime:
    """The sample time floored to the interval, in UTC, so every worker that
    samples within one interval writes the same key (one sample per round)."""
    if when.tzinfo is None:
        raise ValueError("floor_stamp needs an aware datetime")
    epoch = int(when.timestamp())
    return datetime.fromtimestamp(epoch - epoch % interval_s, tz=timezone.utc)


def format_stamp(stamp: datetime) -> str:
    return stamp.astimezone(timezone.utc).strftime(STAMP_FORMAT)


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, STAMP_FORMAT).replace(tzinfo=timezone.utc)


def stamps_between(start: datetime, end: datetime, interval_s: int) -> list[datetime]:
    """Every stamp of the interval grid within [start, end], oldest first."""
    first = floor_stamp(start, interval_s)
    if first < start:
        first += timedelta(seconds=interval_s)
    stamps = []
    current = first
    while current <= end:
        stamps.append(current)
        current += timedelta(seconds=interval_s)
    return stamps


@dataclass(frozen=True)
class SeriesRef:
    """One counter on one node (for a source with endpoints, through one
    endpoint: a JMX counter's JVM): a time series.

    ``jvm_id`` is the endpoint's id, None for a source without endpoints; it
    keeps the name of the first source that had them, as the health table
    and firing reasons do."""

    kind: str  # a registered source's kind (apps.monitoring.sources)
    node_id: int
    counter_id: int
    jvm_id: int | None = None

    def __post_init__(self) -> None:
        try:
            source = sources.get(self.kind)
        except sources.UnknownSource as exc:
            raise ValueError(str(exc)) from None
        if (source.endpoint_attr is not None) != (self.jvm_id is not None):
            raise ValueError(f"a {source.label} series needs a {source.endpoint_attr} id"
                             if source.endpoint_attr else f"a {source.label} series has no jvm_id")
        # Every series is made to be read or written: its key is needed anyway.
        object.__setattr__(self, "_count_key", source.count_key(self.node_id, self.counter_id, self.jvm_id))

    @property
    def count_key(self) -> str:
        """The key of the breach count (the seed's key without the stamp)."""
        return self._count_key

    def sample_key(self, stamp: datetime) -> str:
        return f"{self.count_key}.{format_stamp(stamp)}"

    def sample_keys(self, stamps: list[datetime]) -> list[str]:
        base = self.count_key
        return [f"{base}.{format_stamp(s)}" for s in stamps]


@dataclass(frozen=True)
class Sample:
    series: SeriesRef
    stamp: datetime  # already floored to the counter's interval
    value: float
    collected_at: datetime | None = None

    @property
    def key(self) -> str:
        return self.series.sample_key(self.stamp)


@dataclass(frozen=True)
class CollectionError:
    """A sample that could not be taken. ``series`` is None when the whole node
    (or endpoint) failed, e.g. unreachable; then every due counter is missing.
    ``kind`` is the source's (taken from ``series`` when not given; an error
    naming neither belongs to the first source with, or without, endpoints
    as it names a ``jvm_id`` or not)."""

    node_id: int
    message: str
    series: SeriesRef | None = None
    jvm_id: int | None = None
    output: str = ""  # offending output, truncated
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    kind: str | None = None

    MAX_OUTPUT = 500

    def __post_init__(self) -> None:
        if len(self.output) > self.MAX_OUTPUT:
            object.__setattr__(self, "output", self.output[: self.MAX_OUTPUT] + "…[truncated]")
        if self.kind is None:
            if self.series is not None:
                kind = self.series.kind
            else:
                kind = sources.fallback_kind(self.jvm_id is not None)
            object.__setattr__(self, "kind", kind)
