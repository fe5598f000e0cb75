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


def collect_jvm(node: Any, jvm: Any, counters: Sequence[Any], now: datetime) -> list[Sample | CollectionError]:
    """One sample or one error for each of ``counters`` (all of ``jvm``), read
    from ``jvm`` on ``node``. Takes at most JMX_CONNECT_TIMEOUT_S plus twice
    JMX_READ_TIMEOUT_S, however the JVM fails (down, hung, restarted)."""
    for counter in counters:
        if counter.jvm_id != jvm.id:
            raise ValueError(f"counter {counter.pk} belongs to JVM {counter.jvm_id}, not {jvm.id}")
    if not counters:
        return []

    def series(counter: Any) -> SeriesRef:
        return SeriesRef("jmx", node.id, counter.id, jvm_id=jvm.id)

    def error(counter: Any, message: str) -> CollectionError:
        return CollectionError(node_id=node.id, message=message, series=series(counter), jvm_id=jvm.id, at=now)

    def all_failed(message: str, which: Iterable[Any] = counters) -> list[CollectionError]:
        return [error(c, message) for c in which]

    try:
        endpoint = jmx.endpoint_for(node, jvm)
    except SecretUnavailable as exc:
        return all_failed(f"JMX password of JVM {jvm.name}: {exc}")
    try:
        connection, reused = jmx.get_connection(endpoint)
    except jvmruntime.JvmUnavailable as exc:
        return all_failed(f"JMX unavailable in this worker: {exc}")
    except jmx.JmxConnectionError as exc:
        return all_failed(str(exc))

    stamps: dict[int, datetime] = {}
    results: list[Sample | CollectionError] = []
    groups = list(_group_by_mbean(counters).items())
    names_of = [tuple(dict.fromkeys(c.attribute for c in group)) for _, group in groups]
    # All MBeans of the JVM are asked at once; each answer is awaited in turn.
    pending = [connection.submit_read(mbean, names) for (mbean, _), names in zip(groups, names_of)]
    for index, (mbean, group) in enumerate(groups):
        names = names_of[index]
        try:
            if pending is not None:
                values = connection.finish_read(pending[index], mbean, names)
            else:
                values = connection.get_attributes(mbean, names)
        except jmx.JmxConnectionError as exc:
            if pending is not None:
                for future in pending[index + 1:]:
                    connection.cancel_read(future)
                pending = None  # the rest is read one by one, on the new connection
            jmx.discard(endpoint)
            if not reused or exc.timed_out:
                results += all_failed(str(exc), (c for _, g in groups[index:] for c in g))
                break
            # A connection from an earlier round may have died with a JVM that
            # is back now (restarted): reconnect once and read again.
            reused = False
            try:
                connection, _ = jmx.get_connection(endpoint)
                values = connection.get_attributes(mbean, names)
            except jmx.JmxConnectionError as retry_exc:
                jmx.discard(endpoint)
                results += all_failed(str(retry_exc), (c for _, g in groups[index:] for c in g))
                break
            except jmx.JmxError as retry_exc:
                results += all_failed(str(retry_exc), group)
                continue
        except jmx.JmxError as exc:
            results += all_failed(str(exc), group)
            continue

        reasons: dict[str, str] = {}
        for counter in group:
            if counter.attribute not in values:
                if counter.attribute not in reasons:
                    reasons[counter.attribute] = connection.why_unreadable(mbean, counter.attribute)
                results.append(error(counter, f"{mbean} {counter.attribute}: {reasons[counter.attribute]}"))
                continue
            try:
                value = to_float(values[counter.attribute], counter.composite_key)
            except NotANumber as exc:
                label = f"{counter.attribute}.{counter.composite_key}" if counter.composite_key else counter.attribute
                results.append(error(counter, f"{mbean} {label}: {exc}"))
                continue
            stamp = stamps.get(counter.interval_s)
            if stamp is None:
                stamp = stamps[counter.interval_s] = floor_stamp(now, counter.interval_s)
            results.append(Sample(series(counter), stamp, value, collected_at=now))
    return results
