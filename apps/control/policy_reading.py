"""What a policy evaluation reads: the cluster's nodes split into in service,
warming and in flight, each counter's newest cluster average over the
in-service nodes (with the nodes it came from), and the schedule in force.

Samples are read from the sample store through the counter-source registry,
as the trigger evaluator does (trigger_series.py): a node's value is its
newest sample among the last ``LOOKBACK_STAMPS`` stamps of the counter's
interval, so a sample still being collected does not make the node look
absent. A counter no in-service node reported is *missing* (it blocks
scale-in, never causes one).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from apps.monitoring import sources
from apps.monitoring.choices import breaches
from apps.monitoring.counters import config_error
from apps.monitoring.samples import floor_stamp, format_stamp

from . import breach
from .choices import ExecutionStatus, NodeState, PolicyCounterRole, PolicyDirection, PolicyKind
from .models import Execution, Node
from .policy.inputs import STEP_BANDS, TARGET_TRACKING, Band, Reading, Schedule
from .policy.schedule import Window, in_force
from .policy_models import PolicyCounter, ScalingPolicy
from .trigger_series import Store, store_errors

#: Stamps of a counter's interval looked at for each node's newest sample.
LOOKBACK_STAMPS = 3


@dataclass
class NodeCounts:
    in_service: list[tuple[int, str]] = field(default_factory=list)
    warming: list[str] = field(default_factory=list)
    in_flight: int = 0
    removing: int = 0

    def as_dict(self) -> dict:
        return {"in_service": len(self.in_service), "in_service_nodes": [n for _, n in self.in_service],
                "warming": len(self.warming), "warming_nodes": self.warming, "in_flight": self.in_flight,
                "removing": self.removing}


@dataclass
class _Counter:
    row: PolicyCounter
    source: Any = None
    counter: Any = None
    error: str = ""

    @property
    def name(self) -> str:
        return self.counter.name if self.counter is not None else f"{self.row.source} #{self.row.counter_id}"

    def base(self, node_id: int) -> str:
        return self.source.count_key(node_id, self.counter.pk, self.source.endpoint_id(self.counter))


def resolve(row: PolicyCounter) -> _Counter:
    """The policy counter's source and row, or why it cannot be read."""
    try:
        source = sources.get(row.source)
    except sources.UnknownSource:
        return _Counter(row, error=f"no counter source {row.source!r}")
    counter = source.model.objects.filter(pk=row.counter_id).first()
    if counter is None:
        return _Counter(row, source, error="the counter was deleted")
    if not counter.enabled:
        return _Counter(row, source, counter, error="the counter is disabled")
    return _Counter(row, source, counter, error=config_error(counter))


def load_policies(policy_ids=None) -> list[ScalingPolicy]:
    qs = ScalingPolicy.objects.filter(enabled=True).select_related("cluster").prefetch_related(
        "counters__bands", "schedules").order_by("pk")
    if policy_ids is not None:
        qs = qs.filter(pk__in=policy_ids)
    return list(qs)


def schedule_in_force(policy: ScalingPolicy, now: datetime) -> Schedule | None:
    """The policy's windows open at ``now``, read in the server's time zone."""
    windows = [Window(w.name, w.cron, w.duration_minutes, w.min_size, w.max_size, w.desired_size)
               for w in policy.schedules.all()]
    return in_force(windows, timezone.localtime(now)) if windows else None


def read_values(store: Store, counter: _Counter, nodes: list[tuple[int, str]], now: datetime
                ) -> tuple[dict[str, float], str]:
    """Each node's newest value of the counter, and the store's error if any."""
    interval = int(counter.counter.interval_s)
    newest = floor_stamp(now, interval)
    stamps = [format_stamp(newest - timedelta(seconds=interval * i)) for i in range(LOOKBACK_STAMPS)]
    keys = {node_id: [f"{counter.base(node_id)}.{s}" for s in stamps] for node_id, _ in nodes}
    try:
        raw = store.get_many([k for ks in keys.values() for k in ks]) if keys else {}
    except store_errors() as exc:
        return {}, f"sample store unavailable ({exc})"
    values = {}
    for node_id, name in nodes:
        for key in keys[node_id]:
            value = breach.parse_value(raw.get(key))
            if value is not None:
                values[name] = value
                break
    return values, ""


def node_counts(policy: ScalingPolicy, readiness: list[_Counter], store: Store, now: datetime) -> NodeCounts:
    """Running nodes in service or warming; launches in flight."""
    counts = NodeCounts()
    running = list(Node.objects.filter(cluster_id=policy.cluster_id, state=NodeState.RUNNING)
                   .order_by("pk").values_list("pk", "name", "created", "launched_by_pyscaler"))
    young = now - timedelta(seconds=policy.warmup_s)
    unsettled: set[str] = set()
    for counter in readiness:
        if counter.error:
            continue
        values, _ = read_values(store, counter, [(pk, name) for pk, name, *_ in running], now)
        c = counter.counter
        unsettled |= {name for _, name, *_ in running
                      if name not in values or breaches(values[name], c.comparison, float(c.threshold))}
    for pk, name, created, ours in running:
        if (ours and created > young) or name in unsettled:
            counts.warming.append(name)
        else:
            counts.in_service.append((pk, name))
    pending = Node.objects.filter(cluster_id=policy.cluster_id, state=NodeState.PENDING).count()
    draining = Node.objects.filter(cluster_id=policy.cluster_id, state=NodeState.DRAINING).count()
    counts.in_flight = max(pending, _planned(policy, PolicyDirection.OUT))
    counts.removing = max(0, _planned(policy, PolicyDirection.IN) - draining)
    return counts


def scaling_execution(policy: ScalingPolicy) -> int | None:
    """An execution under way on the policy's cluster that changes its size."""
    from .executions import scaling_in_progress

    running = scaling_in_progress(policy.cluster)
    return running.pk if running is not None else None


def _planned(policy: ScalingPolicy, direction: str) -> int:
    """Nodes the policy's executions under way add or remove."""
    active = Execution.objects.filter(policy=policy, status__in=ExecutionStatus.active(),
                                      data__direction=str(direction)).values_list("data", flat=True)
    return sum(int((data or {}).get("node_count") or 0) for data in active)


def readings(policy: ScalingPolicy, metrics: list[_Counter], counts: NodeCounts, store: Store,
             now: datetime) -> tuple[Reading, ...]:
    """Each metric counter's average over the in-service nodes."""
    out = []
    for counter in metrics:
        row = counter.row
        bands = tuple(Band(b.lower, b.upper, b.adjustment) for b in row.bands.all())
        target = row.target if policy.kind == PolicyKind.TARGET_TRACKING else None
        if counter.error:
            out.append(Reading(counter.name, None, target=target, bands=bands, error=counter.error))
            continue
        values, error = read_values(store, counter, counts.in_service, now)
        if not values:
            error = error or (f"no sample from any in-service node in the last {LOOKBACK_STAMPS} intervals"
                              if counts.in_service else "no node in service")
            out.append(Reading(counter.name, None, target=target, bands=bands, error=error))
            continue
        value = sum(values.values()) / len(values)
        out.append(Reading(counter.name, value, tuple(sorted(values)), target=target, bands=bands))
    return tuple(out)


def split_counters(policy: ScalingPolicy) -> tuple[list[_Counter], list[_Counter]]:
    """The policy's metric and readiness counters, resolved."""
    rows = list(policy.counters.all())
    return ([resolve(r) for r in rows if r.role == PolicyCounterRole.METRIC],
            [resolve(r) for r in rows if r.role == PolicyCounterRole.READINESS])


def kind_of(policy: ScalingPolicy) -> str:
    return STEP_BANDS if policy.kind == PolicyKind.STEP_BANDS else TARGET_TRACKING
