"""The evaluator: reads the newest samples, updates breach counts, fires triggers.

One call of :func:`evaluate` handles every enabled trigger:

1. load the triggers with their enabled counters and the clusters' running
   nodes with collection enabled (four queries, whatever the number of
   triggers);
2. read every state key and the newest ``PREFETCH_STAMPS`` sample keys of
   every series in one batched ``get_many``. A series whose state is lost or
   older than that window (first run, memcached restart, evaluator stopped
   for a while) needs a second read for its look-back (``breach.reading_start``);
3. count the new samples (``breach.advance``), decide which triggers reach
   their needed count, claim and fire them, write the changed states with one
   ``set_many``.

Where the state lives
    ``<seed count key>`` for a trigger that looks at each node on its own
    (``ssh_sshcounter.<nodeId>.<counterId>``,
    ``jmx_jmxcounter.<nodeId>.<jvmId>.<counterId>``), and for an aggregating
    trigger (avg/max) a cluster-level key: ``ssh_sshcounter.cluster<clusterId>.<counterId>``
    and ``jmx_jmxcounter.cluster<clusterId>.<jvmId>.<counterId>``. Node ids are
    integers, so ``cluster<id>`` never collides with a node key, and the key has
    no trailing stamp, so it never collides with a sample key. The value holds
    one entry per trigger using the series (``breach.encode_states``).

One firing, even with several evaluators
    The claim is a conditional UPDATE of ``Trigger.last_fired_at`` that must
    change exactly one row (healthchecks' sendalerts pattern): the trigger is
    still enabled, out of its cooldown, *and* its ``last_fired_at`` is still the
    value this evaluation loaded. The last condition is a compare-and-swap: an
    evaluator that counted the same samples as one that has just fired finds
    the row changed and does nothing, even with a cooldown of 0. The claim and
    the execution record commit in one transaction, so a firing is never
    claimed without being recorded (a failing ``fire`` rolls the claim back and
    the next evaluation tries again).

Reset on firing
    A firing resets the counts of *every* series of the trigger (each counter
    on each node, or the aggregate), not only the ones that reached: the
    firing acts on the whole cluster, and counts built before it describe the
    situation the action has just changed. It is written at once, and it also
    follows from ``last_fired_at``: a state remembers the firing it accounts
    for, and a state older than the trigger's last firing counts from 0 (a
    losing evaluator's late write cannot undo the reset).

Dry run
    A dry-run trigger goes through the same claim, cooldown and reset and hands
    ``dry_run=True`` to ``fire`` (which records a "would fire" execution and
    runs nothing). So its history is exactly the firings the live trigger
    would have made, once per cooldown rather than at every evaluation; the
    cluster, its nodes and the actions are untouched.

memcached unreachable
    Every sample read fails, so every settled stamp is missing and the trigger's
    missing-data policy applies (``ignore``, the default, fires nothing). The
    states cannot be read either: the evaluator continues from the states it
    last knew in this process (``Evaluator.memory``); a process that knows
    none starts counting afresh (the stamps before it are the unknown past,
    see ``breach.advance``), so even ``breaching`` fires only after ``timing``
    minutes of outage. Nothing raises; ``EvaluationReport.store_error`` says
    what failed. When memcached is back, counting continues from the stored
    states, or, if it restarted empty, from the samples collected since.

Timing of a stamp
    A present sample is counted at the first evaluation that sees it. An
    absent one is *pending* until ``stamp + interval + EVALUATOR_GRACE_S``
    (default 5 s) and counting of that series waits for it; after that it is
    missing. A sample written later than that is not counted (its stamp
    already counted as missing).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch, Q
from django.utils import timezone

from apps.monitoring.jmx.models import JMXCounter
from apps.monitoring.samples import KIND_PREFIX, SeriesRef, floor_stamp, format_stamp, stamps_between
from apps.monitoring.ssh.models import SSHCounter

from . import breach
from .breach import BreachState
from .choices import Aggregation, NodeState
from .models import Node, Trigger

logger = logging.getLogger(__name__)

# Newest stamps of every series read with the states in the first get_many.
# Evaluating at least once per collection interval leaves at most one or two
# stamps to count (the newest may still be pending), so one read suffices in
# the steady state.
PREFETCH_STAMPS = 3
# Most breaching values per series copied into a firing's reasons.
REASON_VALUES = 20


class Store(Protocol):
    """What the evaluator needs of apps.monitoring.store.SampleStore."""

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]: ...

    def set_many(self, mapping: dict[str, Any], expire: int = 0) -> Any: ...


FireCallable = Callable[..., Any]


def _store_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "memcached is unreachable"."""
    from apps.monitoring.store import StoreUnavailable

    return (StoreUnavailable,)


def _default_store() -> Store:
    from apps.monitoring.store import SampleStore

    return SampleStore.from_settings()


def _default_fire() -> FireCallable:
    from apps.control.executions import fire_trigger

    return fire_trigger


def grace_s() -> float:
    return float(getattr(settings, "EVALUATOR_GRACE_S", breach.DEFAULT_GRACE_S))


def cluster_count_key(kind: str, cluster_id: int, counter_id: int, jvm_id: int | None = None) -> str:
    """The state key of an aggregating trigger's cluster-level series."""
    prefix = KIND_PREFIX[kind]
    if kind == "jmx":
        return f"{prefix}.cluster{cluster_id}.{jvm_id}.{counter_id}"
    return f"{prefix}.cluster{cluster_id}.{counter_id}"


# ---------------------------------------------------------------------------
# Plans: what to read and count, built from the configuration
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CounterSpec:
    kind: str
    id: int
    name: str
    jvm_id: int | None
    comparison: str
    threshold: float
    interval_s: int

    @classmethod
    def of(cls, counter: SSHCounter | JMXCounter) -> CounterSpec:
        kind = "jmx" if isinstance(counter, JMXCounter) else "ssh"
        return cls(kind, counter.pk, counter.name, getattr(counter, "jvm_id", None), counter.comparison,
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
    """Triggers with their enabled counters (three queries)."""
    qs = Trigger.objects.select_related("cluster").prefetch_related(
        Prefetch("ssh_counters", queryset=SSHCounter.objects.filter(enabled=True).order_by("pk")),
        Prefetch("jmx_counters", queryset=JMXCounter.objects.filter(enabled=True).order_by("pk")),
    ).order_by("pk")
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


def build_plans(trigger: Trigger, nodes: list[tuple[int, str]]) -> list[SeriesPlan]:
    counters = [CounterSpec.of(c) for c in (*trigger.ssh_counters.all(), *trigger.jmx_counters.all())]
    plans: list[SeriesPlan] = []
    aggregating = trigger.aggregation != Aggregation.ANY_NODE
    for spec in counters:
        needed = breach.samples_needed(trigger.timing_minutes, spec.interval_s)
        members = tuple(
            Member(SeriesRef(spec.kind, node_id, spec.id, spec.jvm_id).count_key, node_id, name)
            for node_id, name in nodes
        )
        if aggregating:
            if members:
                key = cluster_count_key(spec.kind, trigger.cluster_id, spec.id, spec.jvm_id)
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
class _Stamps:
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


def _observations(plan: SeriesPlan, stamps: list[datetime], values: dict[str, Any], grid: _Stamps,
                  settled: datetime) -> list[tuple[datetime, float | None]]:
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


def _text(raw: Any) -> str | None:
    return raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw


def _sample_keys(plan: SeriesPlan, stamps: Iterable[datetime], grid: _Stamps) -> Iterable[str]:
    for stamp in stamps:
        text = grid.text(stamp)
        for m in plan.members:
            yield f"{m.base}.{text}"


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------
@dataclass
class Firing:
    trigger_id: int
    trigger: str
    dry_run: bool
    execution_id: int | None
    reasons: dict


@dataclass
class EvaluationReport:
    now: datetime
    triggers: int = 0
    series: int = 0
    keys_read: int = 0
    reads: int = 0
    states_written: int = 0
    fired: list[Firing] = field(default_factory=list)
    cooling_down: list[int] = field(default_factory=list)  # reached, but in cooldown
    claim_lost: list[int] = field(default_factory=list)  # reached, another evaluator fired
    fire_errors: dict[int, str] = field(default_factory=dict)
    store_error: str | None = None
    duration_s: float = 0.0

    def as_dict(self) -> dict:
        return {
            "now": self.now.isoformat(), "triggers": self.triggers, "series": self.series,
            "keys_read": self.keys_read, "reads": self.reads, "states_written": self.states_written,
            "fired": [f.trigger_id for f in self.fired if not f.dry_run],
            "would_fire": [f.trigger_id for f in self.fired if f.dry_run],
            "cooling_down": self.cooling_down, "claim_lost": self.claim_lost,
            "fire_errors": self.fire_errors, "store_error": self.store_error,
            "duration_s": round(self.duration_s, 4),
        }


# ---------------------------------------------------------------------------
# The evaluator
# ---------------------------------------------------------------------------
class Evaluator:
    """Evaluates triggers against a sample store.

    Holds ``memory``: the states this process last read or wrote, used only
    while memcached is unreachable so that a missing-data policy counts the
    outage's stamps from where counting was (a fresh process rebuilds instead).
    """

    def __init__(self, store: Store | None = None, fire: FireCallable | None = None) -> None:
        self._store = store
        self._fire = fire
        self.memory: dict[str, str] = {}

    @property
    def store(self) -> Store:
        # Without an explicit store, this thread's client for the current
        # settings (SampleStore.from_settings caches one per thread and process).
        return self._store if self._store is not None else _default_store()

    @property
    def fire(self) -> FireCallable:
        return self._fire if self._fire is not None else _default_fire()

    # -- store access that never raises -----------------------------------
    def _read(self, keys: list[str], report: EvaluationReport) -> dict[str, Any] | None:
        if not keys:
            return {}
        report.reads += 1
        report.keys_read += len(keys)
        try:
            return self.store.get_many(keys)
        except _store_errors() as exc:
            report.store_error = report.store_error or f"reading: {exc}"
            logger.warning("evaluator: sample store unavailable (%s); data treated as missing", exc)
            return None

    def _write(self, mapping: dict[str, str], report: EvaluationReport) -> None:
        if not mapping:
            return
        try:
            self.store.set_many(mapping, expire=int(settings.SAMPLE_RETENTION_S))
            report.states_written += len(mapping)
        except _store_errors() as exc:
            report.store_error = report.store_error or f"writing: {exc}"
            logger.warning("evaluator: could not write %d breach states (%s)", len(mapping), exc)

    # -- one evaluation -----------------------------------------------------
    def run(self, now: datetime | None = None, *, trigger_ids: Sequence[int] | None = None) -> EvaluationReport:
        started = time.perf_counter()
        now = now or timezone.now()
        if timezone.is_naive(now):
            raise ValueError("evaluate() needs an aware datetime for now")
        report = EvaluationReport(now=now)
        triggers = load_triggers(trigger_ids)
        nodes = load_nodes(t.cluster_id for t in triggers)
        plans = [p for t in triggers for p in build_plans(t, nodes.get(t.cluster_id, []))]
        report.triggers, report.series = len(triggers), len(plans)
        grid = _Stamps(now)
        grace = grace_s()

        # 1. States and the newest samples, in one read.
        state_keys = list(dict.fromkeys(p.key for p in plans))
        first_keys = set(state_keys)
        for plan in plans:
            first_keys.update(_sample_keys(plan, grid.recent(plan.counter.interval_s, PREFETCH_STAMPS), grid))
        values = self._read(list(first_keys), report)
        store_up = values is not None
        if values is None:
            values = {k: self.memory[k] for k in state_keys if k in self.memory}
        old_raw = {k: values.get(k) for k in state_keys}
        old_states = {k: breach.decode_states(v) for k, v in old_raw.items()}

        # 2. Where each plan resumes; a second read for look-backs beyond the window.
        starts: list[tuple[SeriesPlan, datetime, BreachState]] = []
        extra: set[str] = set()
        for plan in plans:
            interval = plan.counter.interval_s
            start, state = breach.reading_start(
                old_states[plan.key].get(plan.trigger.pk),
                newest=grid.newest(interval),
                interval_s=interval,
                needed=plan.needed,
                last_fired_at=plan.trigger.last_fired_at,
            )
            starts.append((plan, start, state))
            window_first = grid.recent(interval, PREFETCH_STAMPS)[0]
            if store_up and start < window_first:
                older = [s for s in stamps_between(start, window_first, interval) if s < window_first]
                extra.update(_sample_keys(plan, older, grid))
        if extra:
            more = self._read(list(extra), report)
            if more is not None:
                values.update(more)

        # 3. Count.
        new_states: dict[str, dict[int, BreachState]] = {k: {} for k in state_keys}
        reached: dict[int, list[tuple[SeriesPlan, BreachState]]] = {}
        for plan, start, state in starts:
            interval = plan.counter.interval_s
            settled = breach.settled_until(now, interval, grace)
            stamps = grid.between(start, interval)
            state = breach.advance(
                state,
                _observations(plan, stamps, values, grid, settled),
                comparison=plan.counter.comparison,
                threshold=plan.counter.threshold,
                missing_data=plan.trigger.missing_data,
                settled=settled,
            )
            new_states[plan.key][plan.trigger.pk] = state
            if state.count >= plan.needed:
                reached.setdefault(plan.trigger.pk, []).append((plan, state))

        # 4. Fire.
        by_id = {t.pk: t for t in triggers}
        for trigger_id, hits in reached.items():
            trigger = by_id[trigger_id]
            if self._fire_one(trigger, hits, now, report, grid):
                mark = breach.fired_mark(now)
                for plan in plans:
                    if plan.trigger.pk == trigger_id:
                        new_states[plan.key][trigger_id] = new_states[plan.key][trigger_id].reset(mark)

        # 5. Write what changed.
        encoded = {key: breach.encode_states(states) for key, states in new_states.items()}
        changed = {key: raw for key, raw in encoded.items() if raw != _text(old_raw.get(key))}
        self.memory = encoded
        self._write(changed, report)
        report.duration_s = time.perf_counter() - started
        return report

    def _fire_one(self, trigger: Trigger, hits: list[tuple[SeriesPlan, BreachState]], now: datetime,
                  report: EvaluationReport, grid: _Stamps) -> bool:
        seen = trigger.last_fired_at
        if seen is not None and now < seen + timedelta(seconds=trigger.cooldown_s):
            report.cooling_down.append(trigger.pk)
            return False
        reasons = self._reasons(trigger, hits, now, grid, report)
        cutoff = now - timedelta(seconds=trigger.cooldown_s)
        unchanged = Q(last_fired_at__isnull=True) if seen is None else Q(last_fired_at=seen)
        try:
            with transaction.atomic():
                claimed = (
                    Trigger.objects.filter(pk=trigger.pk, enabled=True)
                    .filter(unchanged)
                    .filter(Q(last_fired_at__isnull=True) | Q(last_fired_at__lte=cutoff))
                    .update(last_fired_at=now)
                )
                if claimed != 1:
                    report.claim_lost.append(trigger.pk)
                    return False
                trigger.last_fired_at = now
                execution = self.fire(trigger, reasons=reasons, dry_run=trigger.dry_run)
        except Exception as exc:  # noqa: BLE001 - one trigger's failure must not stop the others
            trigger.last_fired_at = seen
            report.fire_errors[trigger.pk] = f"{type(exc).__name__}: {exc}"
            logger.exception("evaluator: firing trigger %s failed; it will be retried", trigger)
            return False
        report.fired.append(Firing(trigger.pk, str(trigger), trigger.dry_run,
                                   getattr(execution, "pk", None), reasons))
        logger.info("evaluator: trigger %s %s (%s)", trigger, "would fire" if trigger.dry_run else "fired",
                    "; ".join(p.label for p, _ in hits))
        return True

    def _reasons(self, trigger: Trigger, hits: list[tuple[SeriesPlan, BreachState]], now: datetime,
                 grid: _Stamps, report: EvaluationReport) -> dict:
        """Why the trigger fires: every series that reached, with its recent
        values (one extra read, only when firing)."""
        windows = []
        for plan, state in hits:
            interval = plan.counter.interval_s
            shown = min(plan.needed, state.count, REASON_VALUES)
            last = state.last_stamp
            stamps = [last - timedelta(seconds=interval * i) for i in range(shown - 1, -1, -1)] if last else []
            windows.append((plan, state, stamps))
        keys = list({k for plan, _, stamps in windows for k in _sample_keys(plan, stamps, grid)})
        values = self._read(keys, report) or {}
        breaches = []
        for plan, state, stamps in windows:
            obs = _observations(plan, stamps, values, grid, settled=now)
            breaches.append({
                "kind": plan.counter.kind,
                "counter_id": plan.counter.id,
                "counter": plan.counter.name,
                "jvm_id": plan.counter.jvm_id,
                "node_id": plan.node_id,
                "node": plan.node_name,
                "aggregation": plan.aggregation,
                "nodes": len(plan.members),
                "comparison": plan.counter.comparison,
                "threshold": plan.counter.threshold,
                "interval_s": plan.counter.interval_s,
                "count": state.count,
                "needed": plan.needed,
                "values": [{"stamp": s.isoformat(), "value": v} for s, v in obs],
            })
        first = breaches[0]
        return {
            "trigger_id": trigger.pk,
            "trigger": trigger.name,
            "cluster": trigger.cluster.name,
            "evaluated_at": now.isoformat(),
            "timing_minutes": trigger.timing_minutes,
            "aggregation": trigger.aggregation,
            "missing_data": trigger.missing_data,
            "dry_run": trigger.dry_run,
            "counter": first["counter"],
            "node": first["node"],
            "node_id": first["node_id"],
            "values": first["values"],
            "breaches": breaches,
        }


_default_evaluator: Evaluator | None = None


def evaluate(now: datetime | None = None, store: Store | None = None,
             fire: FireCallable | None = None) -> EvaluationReport:
    """Evaluate every enabled trigger once (the body of the control-queue task).

    With neither ``store`` nor ``fire`` given, a per-process evaluator is reused
    so that its memory of states bridges a memcached outage.
    """
    global _default_evaluator
    if store is None and fire is None:
        if _default_evaluator is None:
            _default_evaluator = Evaluator()
        return _default_evaluator.run(now)
    return Evaluator(store, fire).run(now)
