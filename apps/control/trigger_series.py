"""The series triggers count, shared by the evaluator (which counts them) and
trigger_status (which shows how far they got): series plans built from the
configuration through the counter-source registry, their memcached keys, and
the observations read for them.

Where the state lives
    ``<seed count key>`` for a trigger that looks at each node on its own
    (``ssh_sshcounter.<nodeId>.<counterId>``,
    ``jmx_jmxcounter.<nodeId>.<jvmId>.<counterId>``: each source's key format,
    apps.monitoring.sources), and for an aggregating trigger (avg/max) a
    cluster-level key: ``ssh_sshcounter.cluster<clusterId>.<counterId>`` and
    ``jmx_jmxcounter.cluster<clusterId>.<jvmId>.<counterId>``. Node ids are
    integers, so ``cluster<id>`` never collides with a node key, and the key has
    no trailing stamp, so it never collides with a sample key. The value holds
    one entry per trigger using the series (``breach.encode_states``).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.db.models import Prefetch

from apps.monitoring import sources
from apps.monitoring.counters import config_error, report_once
from apps.monitoring.samples import floor_stamp, format_stamp, stamps_between

from . import breach
from .choices import Aggregation, NodeState
from .models import MAX_COOLDOWN_S, MAX_TIMING_MINUTES, Node, Trigger

log = logging.getLogger(__name__)


class Store(Protocol):
    """What the evaluator needs of apps.monitoring.store.SampleStore."""

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]: ...

    def set_many(self, mapping: dict[str, Any], expire: int = 0, noreply: bool = False) -> Any: ...


def store_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "memcached is unreachable"."""
    from apps.monitoring.store import StoreUnavailable

    return (StoreUnavailable,)


def default_store() -> Store:
    from apps.monitoring.store import SampleStore

    return SampleStore.from_settings()


def cluster_count_key(kind: str, cluster_id: int, counter_id: int, jvm_id: int | None = None) -> str:
    """The state key of an aggregating trigger's cluster-level series."""
    return sources.get(kind).cluster_count_key(cluster_id, counter_id, jvm_id)


# ---------------------------------------------------------------------------
# Plans: what to read and count, built from the configuration
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CounterSpec:
    kind: str
    id: int
    name: str
    jvm_id: int | None  # the counter's endpoint (apps.monitoring.samples.SeriesRef)
    comparison: str
    threshold: float
    interval_s: int

    @classmethod
    def of(cls, source: sources.CounterSource, counter) -> CounterSpec:
        return cls(source.kind, counter.pk, counter.name, source.endpoint_id(counter), counter.comparison,
                   float(counter.threshold), int(counter.interval_s))


@dataclass(frozen=True, slots=True)
class Member:
    """One node's series feeding a plan."""

    base: str  # the seed's count key; sample keys are base + "." + stamp
    node_id: int
    node_name: str


@dataclass(slots=True)
class SeriesPlan:
    """One series one trigger counts: a (node, counter), or a cluster aggregate."""

    trigger: Trigger
    counter: CounterSpec
    key: str  # the state key
    members: tuple[Member, ...]
    needed: int
    aggregation: str
    node_id: int | None = None
    node_name: str | None = None

    @property
    def label(self) -> str:
        where = self.node_name if self.node_name is not None else f"cluster {self.aggregation}"
        return f"{self.counter.name} on {where}"


def load_triggers(trigger_ids: Sequence[int] | None = None, *, enabled_only: bool = True) -> list[Trigger]:
    """Triggers with their counters (one query, plus one per source); disabled
    counters too, so a status can tell "no counters" from "all disabled"."""
    qs = Trigger.objects.select_related("cluster").prefetch_related(*(
        Prefetch(source.trigger_accessor, queryset=source.model.objects.order_by("pk"))
        for source in sources.all()
    )).order_by("pk")
    if enabled_only:
        qs = qs.filter(enabled=True)
    if trigger_ids is not None:
        qs = qs.filter(pk__in=trigger_ids)
    return list(qs)


def load_nodes(cluster_ids: Iterable[int]) -> dict[int, list[tuple[int, str]]]:
    """Running nodes with collection on, by cluster: the nodes samples come from."""
    nodes: dict[int, list[tuple[int, str]]] = {}
    rows = Node.objects.filter(
        cluster_id__in=set(cluster_ids), state=NodeState.RUNNING, collection_enabled=True
    ).order_by("pk").values_list("pk", "cluster_id", "name")
    for pk, cluster_id, name in rows:
        nodes.setdefault(cluster_id, []).append((pk, name))
    return nodes


def trigger_config_error(trigger: Trigger) -> str:
    """Why a stored trigger's own numbers cannot be used ("" when they can):
    admin refuses such values, an UPDATE or an older release may not have."""
    if not 0 <= trigger.cooldown_s <= MAX_COOLDOWN_S:
        return f"cooldown out of range ({trigger.cooldown_s} s; allowed 0..{MAX_COOLDOWN_S} s)"
    if not 0 <= trigger.timing_minutes <= MAX_TIMING_MINUTES:
        return f"timing out of range ({trigger.timing_minutes} min; allowed 0..{MAX_TIMING_MINUTES} min)"
    return ""


def counter_problems(trigger: Trigger) -> list[str]:
    """The trigger's enabled counters that cannot be counted, each with why
    (loaded by load_triggers: no query)."""
    return [f"counter {counter.name}: {error}"
            for source in sources.all() for counter in getattr(trigger, source.trigger_accessor).all()
            if counter.enabled and (error := config_error(counter))]


def never_fires(trigger: Trigger) -> str:
    """Why the trigger can never fire as configured ("" when it can)."""
    if error := trigger_config_error(trigger):
        return error
    counters = [c for source in sources.all() for c in getattr(trigger, source.trigger_accessor).all()]
    if not counters:
        return "no counters"
    enabled = [c for c in counters if c.enabled]
    if not enabled:
        return "every counter is disabled"
    if all(config_error(c) for c in enabled):
        return "no usable counter"
    return ""


def build_plans(trigger: Trigger, nodes: list[tuple[int, str]]) -> list[SeriesPlan]:
    """The series ``trigger`` counts (loaded by load_triggers), source by
    source: none when the trigger's own numbers are out of range, and none
    for a disabled counter or one whose numbers are (logged once each)."""
    if error := trigger_config_error(trigger):
        report_once(log, "the evaluator", trigger, error)
        return []
    plans: list[SeriesPlan] = []
    aggregating = trigger.aggregation != Aggregation.ANY_NODE
    for source in sources.all():
        for counter in getattr(trigger, source.trigger_accessor).all():
            if not counter.enabled:
                continue
            if error := config_error(counter):
                report_once(log, "the evaluator", counter, error)
                continue
            spec = CounterSpec.of(source, counter)
            needed = breach.samples_needed(trigger.timing_minutes, spec.interval_s)
            members = tuple(Member(source.count_key(node_id, spec.id, spec.jvm_id), node_id, name)
                            for node_id, name in nodes)
            if aggregating:
                if members:
                    key = source.cluster_count_key(trigger.cluster_id, spec.id, spec.jvm_id)
                    plans.append(SeriesPlan(trigger, spec, key, members, needed, trigger.aggregation))
            else:
                plans.extend(
                    SeriesPlan(trigger, spec, m.base, (m,), needed, trigger.aggregation, m.node_id, m.node_name)
                    for m in members
                )
    return plans


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------
class StampGrid:
    """Stamp grids per interval, formatted once per evaluation (strftime per
    key would dominate the CPU time at thousands of series)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._text: dict[datetime, str] = {}
        self._recent: dict[tuple[int, int], list[datetime]] = {}
        self._between: dict[tuple[datetime, int], list[datetime]] = {}
        self._newest: dict[int, datetime] = {}

    def newest(self, interval_s: int) -> datetime:
        newest = self._newest.get(interval_s)
        if newest is None:
            newest = self._newest[interval_s] = floor_stamp(self.now, interval_s)
        return newest

    def text(self, stamp: datetime) -> str:
        text = self._text.get(stamp)
        if text is None:
            text = self._text[stamp] = format_stamp(stamp)
        return text

    def between(self, start: datetime, interval_s: int) -> list[datetime]:
        """Stamps from ``start`` to the newest; most series share a start."""
        stamps = self._between.get((start, interval_s))
        if stamps is None:
            stamps = self._between[(start, interval_s)] = stamps_between(start, self.newest(interval_s), interval_s)
        return stamps

    def recent(self, interval_s: int, count: int) -> list[datetime]:
        """The ``count`` newest stamps of the grid, oldest first."""
        stamps = self._recent.get((interval_s, count))
        if stamps is None:
            newest = self.newest(interval_s)
            step = timedelta(seconds=interval_s)
            stamps = self._recent[(interval_s, count)] = [newest - step * i for i in range(count - 1, -1, -1)]
        return stamps


def observations(plan: SeriesPlan, stamps: list[datetime], values: dict[str, Any], grid: StampGrid,
                 settled: datetime) -> list[tuple[datetime, float | None]]:
    """The plan's value at each stamp (an aggregate for a cluster-level plan)."""
    out: list[tuple[datetime, float | None]] = []
    if plan.node_id is not None:
        base = plan.members[0].base
        for stamp in stamps:
            out.append((stamp, breach.parse_value(values.get(f"{base}.{grid.text(stamp)}"))))
        return out
    for stamp in stamps:
        text = grid.text(stamp)
        node_values = [breach.parse_value(values.get(f"{m.base}.{text}")) for m in plan.members]
        out.append((stamp, breach.aggregate(node_values, plan.aggregation, settled=stamp <= settled)))
    return out


def sample_keys(plan: SeriesPlan, stamps: Iterable[datetime], grid: StampGrid) -> Iterable[str]:
    for stamp in stamps:
        text = grid.text(stamp)
        for m in plan.members:
            yield f"{m.base}.{text}"
