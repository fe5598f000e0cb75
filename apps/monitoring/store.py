"""The sample store: samples and evaluator state in memcached, spread over servers
(the clients and their failover: apps.monitoring.memcached).

What callers need to tell apart, and how:

* a key that is simply absent (never written, expired, lost in a restart) —
  reads return no value for it;
* memcached unreachable — reads raise ``StoreUnavailable`` when no server
  could answer, so the evaluator applies its missing-data policy instead of
  mistaking an outage for "no breach"; ``ReadResult.unavailable`` lists the
  keys of a partial outage for callers that care;
* writes from collection (``put_many``) never raise: the sample log keeps the
  record, and memcached is volatile anyway.

Values are short ASCII text (a sample is its float's shortest repr), which
every memcached tool can read and the seed's consumers parse with ``float``.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from apps.monitoring.memcached import Crc32RendezvousHash  # noqa: F401 - part of the store's interface
from apps.monitoring.memcached import (
    MEMCACHED_ERRORS,
    ReadResult,
    ServerRing,
    SingleServer,
    StoreUnavailable,
)
from apps.monitoring.samples import Sample, SeriesRef, format_stamp, stamps_between

log = logging.getLogger(__name__)

# Keys per get_many round trip: bounds the size of one reply (and the time a
# hung server can hold a reader) on long graph ranges.
READ_CHUNK = 1000


# ---------------------------------------------------------------------------
# Value encoding
# ---------------------------------------------------------------------------
def encode_value(value: object) -> bytes:
    """Short text: floats by their shortest round-trip repr ("12" for 12.0)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, float):
        text = repr(value)
        return (text[:-2] if text.endswith(".0") else text).encode()
    return str(value).encode()


def parse_sample(raw: bytes | str | None) -> float | None:
    """A stored sample's value, or None when absent or not a number (a value
    is never invented)."""
    if raw is None:
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        log.warning("sample store: unparsable value %r ignored", raw[:40])
        return None


# ---------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------
_shared = threading.local()


class SampleStore:
    """Samples by the seed's keys, plus a small key/value API for the evaluator.

    Not thread-safe (pymemcache clients are not): use one per thread, as
    ``from_settings`` hands out.
    """

    def __init__(self, servers: Sequence[str], retention_s: int, timeout_s: float = 0.5,
                 retry_timeout_s: float = 1.0, dead_timeout_s: float = 10.0) -> None:
        if not servers:
            raise ValueError("MEMCACHED_SERVERS: at least one host:port is needed")
        for server in servers:
            host, sep, port = server.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"MEMCACHED_SERVERS: {server!r} is not host:port")
        if retention_s <= 0:
            raise ValueError(f"SAMPLE_RETENTION_S must be positive, not {retention_s}")
        self.servers = list(servers)
        self.retention_s = int(retention_s)
        client_kwargs = {"connect_timeout": timeout_s, "timeout": timeout_s, "no_delay": True}
        self._backend: SingleServer | ServerRing
        if len(self.servers) == 1:
            self._backend = SingleServer(self.servers[0], client_kwargs, retry_timeout_s)
        else:
            self._backend = ServerRing(self.servers, client_kwargs, retry_timeout_s, dead_timeout_s)

    @classmethod
    def from_settings(cls) -> SampleStore:
        """This thread's store for the current settings (made after a fork, so
        a Celery pool process never shares its parent's sockets)."""
        from django.conf import settings

        config = (
            tuple(settings.MEMCACHED_SERVERS), int(settings.SAMPLE_RETENTION_S),
            float(settings.MEMCACHED_TIMEOUT_S), float(settings.MEMCACHED_RETRY_TIMEOUT_S),
            float(settings.MEMCACHED_DEAD_TIMEOUT_S),
        )
        cached = getattr(_shared, "store", None)
        if cached is not None and _shared.key == (os.getpid(), config):
            return cached
        store = cls(list(config[0]), config[1], timeout_s=config[2], retry_timeout_s=config[3],
                    dead_timeout_s=config[4])
        _shared.store, _shared.key = store, (os.getpid(), config)
        return store

    # -- samples ----------------------------------------------------------------
    def put_many(self, samples: Iterable[Sample]) -> int:
        """Store samples (one set_many per server, noreply, expiry = retention).
        Returns how many went to a reachable server; never raises."""
        mapping = {}
        stamp_text: dict[datetime, str] = {}  # a round has one or a few stamps
        for sample in samples:
            text = stamp_text.get(sample.stamp)
            if text is None:
                text = stamp_text[sample.stamp] = format_stamp(sample.stamp)
            value = repr(float(sample.value))  # encode_value, inlined: this loop is the hot path
            if value.endswith(".0"):
                value = value[:-2]
            mapping[f"{sample.series.count_key}.{text}"] = value.encode()
        if not mapping:
            return 0
        try:
            failed = self._backend.set_many(mapping, self.retention_s, True)
        except MEMCACHED_ERRORS as exc:  # defensive: the backends already swallow these
            log.warning("sample store: write of %d samples failed: %s", len(mapping), exc)
            return 0
        return len(mapping) - len(failed)

    def read(self, keys: Iterable[str]) -> ReadResult:
        """Raw values of ``keys`` in chunked get_many calls. Raises
        StoreUnavailable when no server answered, or when not one of the keys'
        servers could be asked (as good as all down, for this read)."""
        keys = list(dict.fromkeys(keys))
        result = ReadResult()
        for i in range(0, len(keys), READ_CHUNK):
            part = self._backend.get_many(keys[i:i + READ_CHUNK])
            result.values.update(part.values)
            result.unavailable |= part.unavailable
        if keys and len(result.unavailable) == len(keys):
            raise StoreUnavailable(f"the memcached server(s) of all {len(keys)} keys read are down")
        return result

    def get_values(self, keys: Iterable[str]) -> dict[str, float | None]:
        """Sample values of ``keys`` (None when absent or unreadable)."""
        keys = list(keys)
        found = self.read(keys).values
        return {k: parse_sample(found.get(k)) for k in keys}

    def read_series(self, series: SeriesRef, interval_s: int, start: datetime,
                    end: datetime) -> list[tuple[datetime, float | None]]:
        """Every stamp of the interval grid in [start, end] with its value, or
        None where no sample is stored. Keys computed, one batched read."""
        return self.read_many([series], interval_s, start, end)[series]

    def read_many(self, refs: Sequence[SeriesRef], interval_s: int, start: datetime,
                  end: datetime) -> dict[SeriesRef, list[tuple[datetime, float | None]]]:
        """``read_series`` for several series on one grid, in one batched read."""
        stamps = stamps_between(start, end, interval_s)
        keys_of = {ref: ref.sample_keys(stamps) for ref in refs}
        found = self.read(k for keys in keys_of.values() for k in keys).values
        return {
            ref: [(stamp, parse_sample(found.get(key))) for stamp, key in zip(stamps, keys)]
            for ref, keys in keys_of.items()
        }

    def read_latest(self, series: SeriesRef, interval_s: int, now: datetime,
                    lookback: int = 3) -> tuple[datetime, float] | None:
        """The newest sample among the last ``lookback`` stamps, if any."""
        start = now - timedelta(seconds=(lookback - 1) * interval_s)
        for stamp, value in reversed(self.read_series(series, interval_s, start, now)):
            if value is not None:
                return stamp, value
        return None

    # -- key/value API for the evaluator and dispatcher ------------------------------
    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """Found keys' values as text; absent keys are left out. Raises
        StoreUnavailable when no server answered."""
        return self.read(keys).values

    def set_many(self, mapping: Mapping[str, object], expire: int = 0, noreply: bool = False) -> list[str]:
        """Store values, waiting for memcached's replies unless ``noreply``
        (then only keys whose server is unreachable count as not stored).
        Returns the keys not stored; raises StoreUnavailable when nothing
        could be stored."""
        encoded = {k: encode_value(v) for k, v in mapping.items()}
        if not encoded:
            return []
        failed = self._backend.set_many(encoded, int(expire), noreply)
        if failed and len(failed) == len(encoded):
            raise StoreUnavailable(f"none of {len(encoded)} keys could be stored")
        return failed

    def add(self, key: str, value: object, expire: int = 0) -> bool:
        """Atomically store ``key`` only if absent: True for the one caller that
        wins (a "one firing" claim), False for the others. Raises
        StoreUnavailable when the key's server cannot be asked."""
        return self._backend.add(key, encode_value(value), int(expire))

    def delete(self, key: str) -> bool:
        """True when the key existed. Raises StoreUnavailable when its server
        cannot be asked."""
        return self._backend.delete(key)

    def servers_down(self) -> set[str]:
        """Servers currently failing or out of the ring ("host:port")."""
        return self._backend.servers_down()

    def close(self) -> None:
        self._backend.close()

    def __repr__(self) -> str:
        return f"SampleStore({','.join(self.servers)}, retention={self.retention_s}s)"
