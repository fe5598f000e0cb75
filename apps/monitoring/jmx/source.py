"""JMX as a counter source: MBean attributes read from a JVM on every node of
the JVM's cluster. A JVM is an endpoint: a level of the keys, of health and
of a collect message (its rows travel once per batch)."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from apps.monitoring.sources import CounterSource, instances, rows_by_id

#: JMXCounter._meta.db_table: the seed's memcached key prefix.
KEY_PREFIX = "jmx_jmxcounter"
#: What the connector reads of a JVM (endpoint_for).
JVM_FIELDS = ("id", "cluster_id", "name", "jmx_port", "username", "password_ref", "tls")
JVM_TABLE = "jvms"


class JMXSource(CounterSource):
    kind = "jmx"
    label = "JMX"
    model_label = "jmx.JMXCounter"
    key_prefix = KEY_PREFIX
    cluster_path = "jvm__cluster"
    endpoint_attr = "jvm"
    endpoint_label = "JVM"
    trigger_accessor = "jmx_counters"
    message_fields = ("id", "jvm_id", "name", "mbean", "attribute", "composite_key", "interval_s")

    def message_rows(self, counter_ids: set[int]) -> dict[str, dict[int, dict]]:
        tables = super().message_rows(counter_ids)
        jvm_ids = {row["jvm_id"] for row in tables[self.message_table].values()}
        tables[JVM_TABLE] = rows_by_id(self.model.jvm.field.related_model, JVM_FIELDS, jvm_ids)
        return tables

    def message_tables(self) -> tuple[str, ...]:
        return (self.message_table, JVM_TABLE)

    def rows_of(self, tables: dict[str, dict[int, dict]], counter_id: int) -> Iterator[tuple[str, dict]]:
        yield from super().rows_of(tables, counter_id)
        yield JVM_TABLE, tables[JVM_TABLE][tables[self.message_table][counter_id]["jvm_id"]]

    def restore(self, message: dict) -> dict[int, object]:
        counters = super().restore(message)
        jvms = instances(self.model.jvm.field.related_model, JVM_FIELDS, message.get(JVM_TABLE, []))
        for counter in counters.values():
            counter.jvm = jvms[counter.jvm_id]
        return counters

    def describe(self, counter) -> str:
        key = f".{counter.composite_key}" if counter.composite_key else ""
        return f"{counter.mbean} {counter.attribute}{key}"

    def collect(self, node, counters: list, at: datetime) -> list:
        from .collector import collect_jvm

        by_jvm: dict = {}
        for counter in counters:
            by_jvm.setdefault(counter.jvm, []).append(counter)
        return [result for jvm, group in by_jvm.items() for result in collect_jvm(node, jvm, group, at)]
