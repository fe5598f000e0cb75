"""Collect a JVM's due JMX counters on one node: one ``getAttributes`` per MBean.

Failures are per counter (a missing MBean or attribute, a value that is not a
number) or per JVM (down, hung, credentials refused: every counter of the JVM
gets the error); nothing raises into the caller, and every wait is bounded
(see connector.py).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import jpype

from apps.monitoring.samples import CollectionError, NotANumber, Sample, SeriesRef, floor_stamp
from pyscaler.secretrefs import SecretUnavailable

from . import connector as jmx
from . import jvmruntime


@functools.cache
def _java_types() -> tuple[Any, Any, Any]:
    jvmruntime.ensure_started()
    return (
        jpype.JClass("java.lang.Boolean"),
        jpype.JClass("java.lang.Number"),
        jpype.JClass("javax.management.openmbean.CompositeData"),
    )


def to_float(value: Any, composite_key: str = "") -> float:
    """The sample value of an attribute value read through jpype: numbers as
    they are, booleans as 1.0/0.0, one key of a CompositeData."""
    boolean, number_class, _ = _java_types()
    if composite_key:
        if not _is_composite(value):
            raise NotANumber(f"value is {_type_name(value)}, not a composite: clear composite_key")
        if not value.containsKey(composite_key):
            keys = ", ".join(sorted(str(k) for k in value.getCompositeType().keySet()))
            raise NotANumber(f"composite has no key {composite_key!r} (keys: {keys})")
        value = value.get(composite_key)
    elif _is_composite(value):
        keys = ", ".join(sorted(str(k) for k in value.getCompositeType().keySet()))
        raise NotANumber(f"value is a composite: set composite_key to one of {keys}")
    if value is None:
        raise NotANumber("value is null")
    if isinstance(value, (bool, boolean)):
        return 1.0 if bool(value) else 0.0
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, number_class):  # BigDecimal, AtomicLong, ...
        number = float(value.doubleValue())
    else:
        text = str(value)
        raise NotANumber(f"value is {_type_name(value)}, not a number: {text[:100]!r}")
    if not math.isfinite(number):
        raise NotANumber(f"value is not a finite number ({number})")
    return number


def _is_composite(value: Any) -> bool:
    return isinstance(value, _java_types()[2])


def _type_name(value: Any) -> str:
    if isinstance(value, jpype.JObject):
        return str(value.getClass().getName())
    return type(value).__name__


def _group_by_mbean(counters: Iterable[Any]) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for counter in counters:
        groups.setdefault(counter.mbean, []).append(counter)
    return groups


def collect_jvm(node: Any, jvm: Any, counters: Sequence[Any],
                now: datetime) -> list[Sample | CollectionError]:
    """One sample or one error for each of ``counters`` (all of ``jvm``), read
    from ``jvm`` on ``node``. Takes at most JMX_CONNECT_TIMEOUT_S plus twice
    JMX_READ_TIMEOUT_S, however the JVM fails (down, hung, restarted)."""
    for counter in counters:
        if counter.jvm_id != jvm.id:
            raise ValueError(f"counter {counter.pk} belongs to JVM {counter.jvm_id}, not {jvm.id}")
    if not counters:
        return []
    return _JvmRound(node, jvm, counters, now).run()


class _JvmLost(Exception):
    """The JVM cannot be reached for the rest of this round."""


class _JvmRound:
    """One collect_jvm call: the JVM's connection (replaced once when a
    connection reused from an earlier round turns out dead) and its
    pipelined reads, one per MBean."""

    def __init__(self, node: Any, jvm: Any, counters: Sequence[Any], now: datetime) -> None:
        self.node, self.jvm, self.counters, self.now = node, jvm, counters, now
        self._stamps: dict[int, datetime] = {}

    def error(self, counter: Any, message: str) -> CollectionError:
        return CollectionError(node_id=self.node.id, message=message, series=self.series(counter),
                               jvm_id=self.jvm.id, at=self.now)

    def series(self, counter: Any) -> SeriesRef:
        return SeriesRef("jmx", self.node.id, counter.id, jvm_id=self.jvm.id)

    def failed(self, message: str, counters: Iterable[Any]) -> list[CollectionError]:
        return [self.error(c, message) for c in counters]

    def run(self) -> list[Sample | CollectionError]:
        try:
            self.endpoint = jmx.endpoint_for(self.node, self.jvm)
        except SecretUnavailable as exc:
            return self.failed(f"JMX password of JVM {self.jvm.name}: {exc}", self.counters)
        try:
            self.connection, self.reused = jmx.get_connection(self.endpoint)
        except jvmruntime.JvmUnavailable as exc:
            return self.failed(f"JMX unavailable in this worker: {exc}", self.counters)
        except jmx.JmxConnectionError as exc:
            return self.failed(str(exc), self.counters)
        groups = [(mbean, group, tuple(dict.fromkeys(c.attribute for c in group)))
                  for mbean, group in _group_by_mbean(self.counters).items()]
        # All MBeans of the JVM are asked at once; each answer is awaited in turn.
        self.pending: list | None = [self.connection.submit_read(mbean, names) for mbean, _, names in groups]
        results: list[Sample | CollectionError] = []
        for index, (mbean, group, names) in enumerate(groups):
            try:
                values = self._read(index, mbean, names)
            except _JvmLost as lost:
                return results + self.failed(str(lost), (c for _, g, _ in groups[index:] for c in g))
            except jmx.JmxError as exc:
                results += self.failed(str(exc), group)
                continue
            results += self._results(mbean, group, values)
        return results

    def _read(self, index: int, mbean: str, names: tuple[str, ...]) -> dict:
        """The MBean's attribute values. Raises _JvmLost when the JVM is gone
        for this round, JmxError when only this MBean could not be read."""
        try:
            if self.pending is not None:
                return self.connection.finish_read(self.pending[index], mbean, names)
            return self.connection.get_attributes(mbean, names)
        except jmx.JmxConnectionError as exc:
            if self.pending is not None:
                for future in self.pending[index + 1:]:
                    self.connection.cancel_read(future)
                self.pending = None  # the rest is read one by one, on the new connection
            jmx.discard(self.endpoint)
            if not self.reused or exc.timed_out:
                raise _JvmLost(str(exc)) from exc
        # A connection from an earlier round may have died with a JVM that is
        # back now (restarted): reconnect once and read again.
        self.reused = False
        try:
            self.connection, _ = jmx.get_connection(self.endpoint)
            return self.connection.get_attributes(mbean, names)
        except jmx.JmxConnectionError as exc:
            jmx.discard(self.endpoint)
            raise _JvmLost(str(exc)) from exc

    def _results(self, mbean: str, group: list[Any], values: dict) -> list[Sample | CollectionError]:
        results: list[Sample | CollectionError] = []
        reasons: dict[str, str] = {}
        for counter in group:
            if counter.attribute not in values:
                if counter.attribute not in reasons:
                    reasons[counter.attribute] = self.connection.why_unreadable(mbean, counter.attribute)
                reason = reasons[counter.attribute]
                results.append(self.error(counter, f"{mbean} {counter.attribute}: {reason}"))
                continue
            try:
                value = to_float(values[counter.attribute], counter.composite_key)
            except NotANumber as exc:
                key = f".{counter.composite_key}" if counter.composite_key else ""
                label = f"{counter.attribute}{key}"
                results.append(self.error(counter, f"{mbean} {label}: {exc}"))
                continue
            stamp = self._stamps.get(counter.interval_s)
            if stamp is None:
                stamp = self._stamps[counter.interval_s] = floor_stamp(self.now, counter.interval_s)
            results.append(Sample(self.series(counter), stamp, value, collected_at=self.now))
        return results
