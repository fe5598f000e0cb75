"""Replaying a trigger over recorded history: which firings it would have made.

The replay is PyScaler's own evaluator (apps.control.evaluator.Evaluator), not
a copy of its rules: ``BacktestEvaluator`` runs the evaluator's phases —
resume (breach.reading_start), count (breach.advance), fire, write states — at
each stamp of a simulated clock, against an in-memory store holding the
history instead of memcached. Only two things differ from a live evaluation:

* the configuration is loaded once (the trigger as it is now, with its
  counters and running nodes), not at every step;
* firing claims nothing in the database and runs no action: it checks the
  cooldown, records the firing (time, the series that reached and their
  values, from the evaluator's own ``_reasons``) and sets the simulated
  trigger's ``last_fired_at``, so resets and cooldowns follow as live. A
  trigger that reached during its cooldown is recorded as suppressed.

Resolution: raw samples while memcached still holds the whole range
(SAMPLE_RETENTION_S), else the 1-minute summaries. From summaries every minute
is one sample, and it breaches only when every sample of that minute did (its
min for ``>``/``>=``, its max for ``<``/``<=``): "timing minutes in a row" keeps
its meaning, but a trigger counting in samples shorter than a minute (timing
0, or a breach lasting less than a minute) is seen at minute granularity: a
breach that did not fill a whole minute is not seen, and a firing is placed at
the end of the minute that completed the run.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from django.conf import settings

from apps.control import breach
from apps.control.evaluator import EvaluationReport, Evaluator, _Run
from apps.control.models import Trigger
from apps.control.trigger_series import SeriesPlan, StampGrid, build_plans, load_nodes, load_triggers
from apps.monitoring.choices import breaches
from apps.monitoring.samples import floor_stamp, parse_stamp, stamps_between

from .models import MinuteSummary
from .placement import database_for

#: A live evaluator runs every EVALUATE_TICK_S (1 s): it sees a sample about
#: this long after its stamp. The simulated clock evaluates then.
SEEN_AFTER_S = 1.0


class HistoryStore:
    """The evaluator's Store over recorded values: sample keys answer from
    ``series`` (base key -> {stamp epoch -> value}); states live in a dict."""

    def __init__(self, series: dict[str, dict[int, float]]) -> None:
        self.series = series
        self.states: dict[str, Any] = {}

    @staticmethod
    @lru_cache(maxsize=None)
    def _epoch(stamp: str) -> int | None:
        """A stamp's epoch seconds (cached per stamp text: a replay has few)."""
        if len(stamp) != 14 or not stamp.isdigit():
            return None
        return int(parse_stamp(stamp).timestamp())

    def _split(self, key: str) -> tuple[str, int] | None:
        base, _, stamp = key.rpartition(".")
        epoch = self._epoch(stamp)
        return None if epoch is None else (base, epoch)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        out = {}
        for key in keys:
            if key in self.states:
                out[key] = self.states[key]
                continue
            split = self._split(key)
            if split is not None and (value := self.series.get(split[0], {}).get(split[1])) is not None:
                out[key] = value
        return out

    def set_many(self, mapping: dict[str, Any], expire: int = 0, noreply: bool = False) -> list:
        self.states.update(mapping)
        return []


@dataclass
class BacktestReport:
    trigger: str
    start: datetime
    end: datetime
    resolution: str  # "raw" or "1m"
    note: str
    evaluations: int = 0
    skipped: int = 0  # quiet stamps not evaluated (backtest._quiet_stamps)
    firings: list[dict] = field(default_factory=list)
    # Reached during a cooldown: one entry per cooldown (first and last
    # evaluation that reached, how many did).
    suppressed: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"trigger": self.trigger, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "resolution": self.resolution, "note": self.note, "evaluations": self.evaluations,
                "skipped": self.skipped,
                "firings": self.firings, "suppressed": self.suppressed}


def _hit_summary(reasons: dict) -> list[dict]:
    return [{"node": b["node"], "counter": b["counter"], "aggregation": b["aggregation"],
             "values": [v["value"] for v in b["values"]]} for b in reasons["breaches"]]


class BacktestEvaluator(Evaluator):
    """The live evaluator on a simulated clock (module docstring)."""

    def __init__(self, store: HistoryStore, trigger: Trigger, plans: list[SeriesPlan],
                 report: BacktestReport) -> None:
        super().__init__(store=store, fire=None)
        self.trigger, self.plans, self.backtest = trigger, plans, report
        self.state_keys = list(dict.fromkeys(p.key for p in plans))
        self._all_zero = True

    @property
    def all_zero(self) -> bool:
        """Every breach count is 0 (what the last evaluation wrote)."""
        return self._all_zero

    def step(self, now: datetime) -> None:
        run = _Run(now, EvaluationReport(now=now, triggers=1, series=len(self.plans)), [self.trigger],
                   self.plans, StampGrid(now), self.state_keys)
        self._read_states(run)
        self._resume(run)
        self._count(run)
        self._fire_reached(run)
        self._write_states(run)
        self._all_zero = all(state.count == 0 for states in run.new_states.values() for state in states.values())
        self.backtest.evaluations += 1

    def _fire_one(self, trigger, hits, now, report, grid) -> bool:
        reasons = self._reasons(trigger, hits, now, grid, report)
        seen = trigger.last_fired_at
        if seen is not None and now < seen + timedelta(seconds=trigger.cooldown_s):
            until = (seen + timedelta(seconds=trigger.cooldown_s)).isoformat()
            held = self.backtest.suppressed
            if held and held[-1]["cooldown_until"] == until:  # still the same cooldown: one entry
                held[-1]["evaluations"] += 1
                held[-1]["last"] = now.isoformat()
            else:
                held.append({"time": now.isoformat(), "last": now.isoformat(), "evaluations": 1,
                             "cooldown_until": until, "breaches": _hit_summary(reasons)})
            return False
        trigger.last_fired_at = now
        self.backtest.firings.append({"time": now.isoformat(), "breaches": _hit_summary(reasons)})
        return True


def choose_resolution(start: datetime, now: datetime) -> str:
    return "raw" if start >= now - timedelta(seconds=int(settings.SAMPLE_RETENTION_S)) else "1m"


def _plans_for(trigger: Trigger, resolution: str) -> list[SeriesPlan]:
    nodes = load_nodes([trigger.cluster_id]).get(trigger.cluster_id, [])
    plans = build_plans(trigger, nodes)
    if resolution == "1m":
        for plan in plans:
            plan.counter = dataclasses.replace(plan.counter, interval_s=60)
            plan.needed = breach.samples_needed(trigger.timing_minutes, 60)
    return plans


def _raw_series(plans: list[SeriesPlan], start: datetime, end: datetime, store) -> dict[str, dict[int, float]]:
    from apps.monitoring.samples import SeriesRef

    out: dict[str, dict[int, float]] = {}
    for plan in plans:
        for member in plan.members:
            if member.base in out:
                continue
            ref = SeriesRef(plan.counter.kind, member.node_id, plan.counter.id, plan.counter.jvm_id)
            found = store.read_series(ref, plan.counter.interval_s, start, end)
            out[member.base] = {int(s.timestamp()): v for s, v in found if v is not None}
    return out


def _minute_series(plans: list[SeriesPlan], cluster_id: int, start: datetime,
                   end: datetime) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for plan in plans:
        upward = plan.counter.comparison.startswith(">")
        bases = {m.node_id: m.base for m in plan.members}
        rows = (MinuteSummary.objects.using(database_for(cluster_id))
                .filter(kind=plan.counter.kind, counter_id=plan.counter.id, endpoint_id=plan.counter.jvm_id or 0,
                        node_id__in=list(bases), bucket__gte=start, bucket__lte=end)
                .values_list("node_id", "bucket", "min", "max"))
        for node_id, bucket, low, high in rows.iterator(chunk_size=5000):
            out.setdefault(bases[node_id], {})[int(bucket.timestamp())] = low if upward else high
    return out


def backtest(trigger_id: int, start: datetime, end: datetime, resolution: str | None = None,
             sample_store=None) -> BacktestReport:
    """Replay trigger ``trigger_id`` over [start, end] (see the module docstring)."""
    triggers = load_triggers([trigger_id], enabled_only=False)
    if not triggers:
        raise ValueError(f"no trigger with id {trigger_id}")
    trigger = triggers[0]
    forced = resolution is not None
    resolution = resolution or choose_resolution(start, datetime.now(timezone.utc))
    # The simulated trigger: never fired, counting from the start of the range.
    trigger.last_fired_at, trigger.counting_since, trigger.enabled = None, start, True
    plans = _plans_for(trigger, resolution)
    report = BacktestReport(str(trigger), start, end, resolution, NOTES[resolution])
    if not plans:
        report.note += " The trigger counts no series (no counters, or no running nodes)."
        return report
    if resolution == "raw":
        from apps.monitoring.store import SampleStore, StoreUnavailable

        try:
            series = _raw_series(plans, start, end, sample_store or SampleStore.from_settings())
        except StoreUnavailable as exc:
            if forced:
                raise
            report.resolution, report.note = "1m", f"memcached unavailable ({exc}): {NOTES['1m']}"
            plans = _plans_for(trigger, "1m")
            series = _minute_series(plans, trigger.cluster_id, start, end)
    else:
        series = _minute_series(plans, trigger.cluster_id, start, end)
    evaluator = BacktestEvaluator(HistoryStore(series), trigger, plans, report)
    step_s = min(plan.counter.interval_s for plan in plans)
    quiet = _quiet_stamps(plans, series)
    for stamp in stamps_between(floor_stamp(start, step_s), end, step_s):
        if evaluator.all_zero and int(stamp.timestamp()) in quiet:
            report.skipped += 1
            continue
        evaluator.step(stamp + timedelta(seconds=SEEN_AFTER_S))
    return report


def _quiet_stamps(plans: list[SeriesPlan], series: dict[str, dict[int, float]]) -> set[int]:
    """Stamps at which every series has a sample that does not breach. While
    every count is 0, evaluating such a stamp changes nothing but the stamp
    last counted, so the replay skips it: the next evaluation resumes after
    the last stamp it counted or, further back than its look-back, rebuilds
    its state over the look-back — counting the same non-breaching samples
    to the same 0 (breach.reading_start, breach.advance). Aggregating
    triggers are never skipped."""
    if any(plan.node_id is None for plan in plans):
        return set()
    quiet: set[int] | None = None
    for plan in plans:
        values = series.get(plan.members[0].base, {})
        mine = {stamp for stamp, value in values.items()
                if not breaches(value, plan.counter.comparison, plan.counter.threshold)}
        quiet = mine if quiet is None else quiet & mine
    return quiet or set()


NOTES = {
    "raw": "Raw samples (memcached still holds the range): counted sample by sample, as live.",
    "1m": ("1-minute summaries (the range is older than memcached's retention): each minute is one sample, "
           "breaching only if every sample in it breached; breaches shorter than a whole minute are not seen, "
           "and triggers with timing under a minute are judged per minute."),
}
