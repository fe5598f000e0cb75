"""The values collection produces and the memcached keys they are stored under.

Keys follow the seed (004): ``ssh_sshcounter.<nodeId>.<counterId>.<stamp>`` and
``jmx_jmxcounter.<nodeId>.<jvmId>.<counterId>.<stamp>``; the same key without
the stamp holds the breach count. The stamp is the sample time in UTC floored
to the counter's interval, so the keys of any time range can be computed and
read with one batched get_many (memcached cannot scan keys).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

STAMP_FORMAT = "%Y%m%d%H%M%S"
SSH_PREFIX = "ssh_sshcounter"  # SSHCounter._meta.db_table
JMX_PREFIX = "jmx_jmxcounter"  # JMXCounter._meta.db_table
KIND_PREFIX = {"ssh": SSH_PREFIX, "jmx": JMX_PREFIX}


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
    """One counter on one node (for JMX, through one JVM): a time series."""

    kind: str  # "ssh" or "jmx"
    node_id: int
    counter_id: int
    jvm_id: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KIND_PREFIX:
            raise ValueError(f"unknown counter kind {self.kind!r}")
        if (self.kind == "jmx") != (self.jvm_id is not None):
            raise ValueError("a JMX series needs a jvm_id; an SSH series has none")

    @property
    def count_key(self) -> str:
        """The key of the breach count (the seed's key without the stamp)."""
        if self.kind == "ssh":
            return f"{SSH_PREFIX}.{self.node_id}.{self.counter_id}"
        return f"{JMX_PREFIX}.{self.node_id}.{self.jvm_id}.{self.counter_id}"

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
    (or JVM) failed, e.g. unreachable; then every due counter is missing."""

    node_id: int
    message: str
    series: SeriesRef | None = None
    jvm_id: int | None = None
    output: str = ""  # offending output, truncated
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    MAX_OUTPUT = 500

    def __post_init__(self) -> None:
        if len(self.output) > self.MAX_OUTPUT:
            object.__setattr__(self, "output", self.output[: self.MAX_OUTPUT] + "…[truncated]")
