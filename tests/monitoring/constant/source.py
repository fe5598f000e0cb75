"""The "constant" counter source: no connection, no endpoint, one sample per
counter and node with the counter's value."""
from __future__ import annotations

from datetime import datetime

from apps.monitoring.samples import Sample, floor_stamp
from apps.monitoring.sources import CounterSource

KEY_PREFIX = "constant_constantcounter"


class ConstantSource(CounterSource):
    kind = "constant"
    label = "Constant"
    model_label = "constant.ConstantCounter"
    key_prefix = KEY_PREFIX
    trigger_accessor = "constant_counters"
    message_fields = ("id", "cluster_id", "name", "value", "interval_s")

    def describe(self, counter) -> str:
        return f"always {counter.value:g}"

    def collect(self, node, counters: list, at: datetime) -> list:
        return [Sample(self.series(counter, node.id), floor_stamp(at, counter.interval_s), counter.value,
                       collected_at=at) for counter in counters]
