"""The evaluator: reads the newest samples, updates breach counts, fires triggers.

One call of :func:`evaluate` handles every enabled trigger:

1. load the triggers with their enabled counters and the clusters' running
   nodes with collection enabled (one query, one per counter source and one
   for the nodes, whatever the number of triggers: trigger_series.py);
2. read the states (one batched ``get_many``, or only a token while this
   process wrote them last: state_memory.py), then exactly the sample keys
   each series has left to count: after its last counted stamp (or its
   look-back when the state is lost or too old, ``breach.reading_start``) up
   to the newest, in the steady state one or two stamps a series;
3. count the new samples (``breach.advance``), decide which triggers reach
   their needed count, claim and fire them, write the changed states with one
   ``set_many``.

Where the state lives
    Under each series' count key (or a cluster-level key for avg/max
    triggers): see trigger_series.py, which builds the plans of what to read
    and count from the configuration through the counter-source registry.

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

Counting starts
    when a trigger is created or enabled, or its counters change
    (``Trigger.counting_since``, apps/control/counting.py): samples stamped
    before that never count, so a trigger saved a second ago does not fire
    from the history it was saved into (``breach.reading_start``).

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone


from . import breach
from .breach import BreachState
from .models import Trigger
from .state_memory import WRITER_KEY, StateMemory
from .trigger_series import (  # noqa: F401 - cluster_count_key: the state key, for callers of the evaluator
    SeriesPlan,
    StampGrid,
    Store,
    build_plans,
    cluster_count_key,
    default_store,
    load_nodes,
    load_triggers,
    observations,
    sample_keys,
    store_errors,
)

logger = logging.getLogger(__name__)

# Most breaching values per series copied into a firing's reasons.
REASON_VALUES = 20

FireCallable = Callable[..., Any]


def _default_fire() -> FireCallable:
    from apps.control.executions import fire_trigger

    return fire_trigger


def grace_s() -> float:
    return float(getattr(settings, "EVALUATOR_GRACE_S", breach.DEFAULT_GRACE_S))


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
@dataclass
class _Run:
    """One evaluation's working state, handed from phase to phase."""

    now: datetime
    report: EvaluationReport
    triggers: list[Trigger]
    plans: list[SeriesPlan]
    grid: StampGrid
    state_keys: list[str]
    store_up: bool = True
    values: dict[str, Any] = field(default_factory=dict)  # raw sample values read, by key
    old_raw: dict[str, Any] = field(default_factory=dict)  # states as read, by key
    old_states: dict[str, dict[int, BreachState]] = field(default_factory=dict)
    starts: list[tuple[SeriesPlan, datetime, BreachState]] = field(default_factory=list)
    new_states: dict[str, dict[int, BreachState]] = field(default_factory=dict)
    reached: dict[int, list[tuple[SeriesPlan, BreachState]]] = field(default_factory=dict)

    @classmethod
    def load(cls, now: datetime, trigger_ids: Sequence[int] | None) -> _Run:
        """The triggers, their nodes and plans: a few queries, however many triggers."""
        triggers = load_triggers(trigger_ids)
        nodes = load_nodes(t.cluster_id for t in triggers)
        plans = [p for t in triggers for p in build_plans(t, nodes.get(t.cluster_id, []))]
        report = EvaluationReport(now=now, triggers=len(triggers), series=len(plans))
        return cls(now, report, triggers, plans, StampGrid(now), list(dict.fromkeys(p.key for p in plans)))


def _text(raw: Any) -> str | None:
    return raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw


class Evaluator:
    """Evaluates triggers against a sample store.

    Holds ``memory`` (state_memory.py): the states this process last read or
    wrote, which spare it reading them back while it is the only writer, and
    carry counting through a memcached outage so that a missing-data policy
    counts the outage's stamps from where counting was (a fresh process
    rebuilds instead).
    """

    def __init__(self, store: Store | None = None, fire: FireCallable | None = None) -> None:
        self._store = store
        self._fire = fire
        self.memory = StateMemory()

    @property
    def store(self) -> Store:
        # Without an explicit store, this thread's client for the current
        # settings (SampleStore.from_settings caches one per thread and process).
        return self._store if self._store is not None else default_store()

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
        except store_errors() as exc:
            report.store_error = report.store_error or f"reading: {exc}"
            logger.warning("evaluator: sample store unavailable (%s); data treated as missing", exc)
            return None

    def _write(self, mapping: dict[str, str], report: EvaluationReport, *, states: bool = True) -> bool:
        """Write without waiting for replies (a lost state costs a recount
        from the samples, not a wrong count); False when it could not go out."""
        if not mapping:
            return True
        try:
            self.store.set_many(mapping, expire=int(settings.SAMPLE_RETENTION_S), noreply=True)
            report.states_written += len(mapping) if states else 0
            return True
        except store_errors() as exc:
            report.store_error = report.store_error or f"writing: {exc}"
            logger.warning("evaluator: could not write %d breach states (%s)", len(mapping), exc)
            return False

    # -- one evaluation, in phases sharing one _Run -----------------------------
    def run(self, now: datetime | None = None, *, trigger_ids: Sequence[int] | None = None) -> EvaluationReport:
        started = time.perf_counter()
        now = now or timezone.now()
        if timezone.is_naive(now):
            raise ValueError("evaluate() needs an aware datetime for now")
        run = _Run.load(now, trigger_ids)
        self._read_states(run)
        self._resume(run)
        self._count(run)
        self._fire_reached(run)
        self._write_states(run)
        run.report.duration_s = time.perf_counter() - started
        return run.report

    def _read_states(self, run: _Run) -> None:
        """1. The states: only the writer token when this process wrote them
        last, else in one read; from memory when memcached cannot be read."""
        memory = self.memory
        keys = run.state_keys
        values: dict[str, Any] | None = {}
        if memory.token is not None:
            token = self._read([WRITER_KEY], run.report)
            if token is None:
                values = None
            elif _text(token.get(WRITER_KEY)) == memory.token:
                keys = [k for k in keys if k not in memory.encoded]
        if values is not None and keys:
            values = self._read(keys, run.report)
        run.store_up = values is not None
        remembered = {k: memory.encoded[k] for k in run.state_keys if k in memory.encoded}
        if values is None:
            values = remembered
        elif keys is not run.state_keys:  # the token was ours: memory is what is stored
            values = {**remembered, **values}
        run.old_raw = {k: _text(values.get(k)) for k in run.state_keys}
        run.old_states = {k: memory.decode(k, v) for k, v in run.old_raw.items()}

    def _resume(self, run: _Run) -> None:
        """2. Where each plan resumes counting, and one read of the samples
        from there to the newest stamp. Reading only these (not a fixed window
        prefetched with the states) halves the keys of a steady run, where a
        series has one or two stamps left to count."""
        wanted: set[str] = set()
        for plan in run.plans:
            interval = plan.counter.interval_s
            start, state = breach.reading_start(
                run.old_states[plan.key].get(plan.trigger.pk),
                newest=run.grid.newest(interval),
                interval_s=interval,
                needed=plan.needed,
                last_fired_at=plan.trigger.last_fired_at,
                counting_since=plan.trigger.counting_since,
            )
            run.starts.append((plan, start, state))
            if run.store_up:
                wanted.update(sample_keys(plan, run.grid.between(start, interval), run.grid))
        if wanted:
            run.values = self._read(list(wanted), run.report) or {}

    def _count(self, run: _Run) -> None:
        """3. Count each plan's new stamps; note the triggers that reach."""
        grace = grace_s()
        run.new_states = {k: {} for k in run.state_keys}
        for plan, start, state in run.starts:
            interval = plan.counter.interval_s
            settled = breach.settled_until(run.now, interval, grace)
            state = breach.advance(
                state,
                observations(plan, run.grid.between(start, interval), run.values, run.grid, settled),
                comparison=plan.counter.comparison,
                threshold=plan.counter.threshold,
                missing_data=plan.trigger.missing_data,
                settled=settled,
            )
            run.new_states[plan.key][plan.trigger.pk] = state
            if state.count >= plan.needed:
                run.reached.setdefault(plan.trigger.pk, []).append((plan, state))

    def _fire_reached(self, run: _Run) -> None:
        """4. Claim and fire each trigger that reached; a firing resets the
        counts of all its series."""
        by_id = {t.pk: t for t in run.triggers}
        for trigger_id, hits in run.reached.items():
            if self._fire_one(by_id[trigger_id], hits, run.now, run.report, run.grid):
                mark = breach.fired_mark(run.now)
                for plan in run.plans:
                    if plan.trigger.pk == trigger_id:
                        states = run.new_states[plan.key]
                        states[trigger_id] = states[trigger_id].reset(mark)

    def _write_states(self, run: _Run) -> None:
        """5. Write the states that changed, then a new writer token; remember
        them all (the token only when every write went out)."""
        encoded = {key: breach.encode_states(states) for key, states in run.new_states.items()}
        changed = {key: raw for key, raw in encoded.items() if raw != run.old_raw.get(key)}
        token = None
        if run.store_up and self._write(changed, run.report):
            token = self.memory.new_token()
            if not self._write({WRITER_KEY: token}, run.report, states=False):
                token = None
        self.memory.remember(encoded, run.new_states, token)

    def _fire_one(self, trigger: Trigger, hits: list[tuple[SeriesPlan, BreachState]], now: datetime,
                  report: EvaluationReport, grid: StampGrid) -> bool:
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
                 grid: StampGrid, report: EvaluationReport) -> dict:
        """Why the trigger fires: every series that reached, with its recent
        values (one extra read, only when firing)."""
        windows = []
        for plan, state in hits:
            interval = plan.counter.interval_s
            shown = min(plan.needed, state.count, REASON_VALUES)
            last = state.last_stamp
            stamps = [last - timedelta(seconds=interval * i) for i in range(shown - 1, -1, -1)] if last else []
            windows.append((plan, state, stamps))
        keys = list({k for plan, _, stamps in windows for k in sample_keys(plan, stamps, grid)})
        values = self._read(keys, report) or {}
        breaches = []
        for plan, state, stamps in windows:
            obs = observations(plan, stamps, values, grid, settled=now)
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
            "cooldown_s": trigger.cooldown_s,
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
