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
(SAMPLE_RETENTION_S) or from the sample-log files given (``samplelogs``:
the worker hosts' logs, apps.history.logseries), else the 1-minute
summaries. From summaries every minute
is one sample, and it breaches only when every sample of that minute did (its
min for ``>``/``>=``, its max for ``<``/``<=``): "timing minutes in a row" keeps
its meaning, but a trigger counting in samples shorter than a minute (timing
0, or a breach lasting less than a minute) is seen at minute granularity: a
breach that did not fill a whole minute is not seen, and a firing is placed at
the end of the minute that completed the run.
"""
from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connections

from apps.control import breach
from apps.control.evaluator import EvaluationReport, Evaluator, _Run, grace_s
from apps.control.models import Trigger
from apps.control.trigger_series import SeriesPlan, StampGrid, build_plans, load_nodes, load_triggers
from apps.monitoring.choices import OPERATORS, Comparison
from apps.monitoring.samples import floor_stamp, parse_stamp, stamps_between

from .epoch import Epoch
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
        #: The simulated clock (epoch s): a sample is visible SEEN_AFTER_S
        #: after its stamp, as a live evaluator sees it after collection.
        self.now = float("inf")

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
            if (split is not None and split[1] + SEEN_AFTER_S <= self.now
                    and (value := self.series.get(split[0], {}).get(split[1])) is not None):
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
    skipped: int = 0  # stamps where no plan was due (backtest._eventful)
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
        #: Plans whose breach count the last evaluation left above 0.
        self.counting: set[int] = set()

    def step(self, now: datetime, indexes: Iterable[int] | None = None) -> None:
        """Evaluate at ``now`` the plans at ``indexes`` (default all); the
        others keep their stored states (see ``backtest`` for why that is
        the same evaluation)."""
        chosen = range(len(self.plans)) if indexes is None else sorted(indexes)
        plans = [self.plans[i] for i in chosen]
        self.store.now = now.timestamp()
        run = _Run(now, EvaluationReport(now=now, triggers=1, series=len(plans)), [self.trigger],
                   plans, StampGrid(now), list(dict.fromkeys(p.key for p in plans)))
        self._read_states(run)
        self._resume(run)
        self._count(run)
        self._fire_reached(run)
        self._write_states(run)
        for i, plan in zip(chosen, plans):
            if run.new_states[plan.key][self.trigger.pk].count:
                self.counting.add(i)
            else:
                self.counting.discard(i)
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
    """Base key -> {minute (epoch s) -> the value that decides the minute}: its
    min when the counter breaches upward, else its max (module docstring).
    The database picks the column and turns buckets into epoch seconds."""
    out: dict[str, dict[int, float]] = {}
    for plan in plans:
        column = "min" if plan.counter.comparison.startswith(">") else "max"
        bases = {m.node_id: m.base for m in plan.members}
        using = database_for(cluster_id)
        query = (MinuteSummary.objects.using(using)
                 .filter(kind=plan.counter.kind, counter_id=plan.counter.id, endpoint_id=plan.counter.jvm_id or 0,
                         node_id__in=list(bases), bucket__gte=start, bucket__lte=end)
                 .annotate(epoch=Epoch("bucket")).values_list("node_id", "epoch", column))
        # The compiled query on a plain cursor: the columns are plain numbers,
        # and Django's per-value converters cost a second per million rows.
        sql, params = query.query.get_compiler(using).as_sql()
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            while chunk := cursor.fetchmany(20000):
                for node_id, epoch, value in chunk:
                    out.setdefault(bases[node_id], {})[int(epoch)] = value
    return out


def _samplelog_series(plans: list[SeriesPlan], files: list, start: datetime,
                      end: datetime) -> tuple[dict[str, dict[int, float]], str]:
    """The plans' raw samples from sample-log files, and how complete they
    are (a host's log holds only its own worker's nodes)."""
    from .logseries import read_series

    wanted = {(plan.counter.kind, member.node_id, plan.counter.jvm_id or 0, plan.counter.id): member.base
              for plan in plans for member in plan.members}
    series = read_series(files, wanted, start, end)
    expected = sum(len(stamps_between(start, end, plan.counter.interval_s)) for plan in plans for _ in plan.members)
    found = sum(len(values) for values in series.values())
    share = 100.0 * found / expected if expected else 0.0
    return series, (f" Read from {len(files)} sample-log file(s): {len(series)} of {len(wanted)} series "
                    f"found, {found} of {expected} samples ({share:.1f}%).")


def backtest(trigger_id: int, start: datetime, end: datetime, resolution: str | None = None,
             sample_store=None, exhaustive: bool = False, samplelogs: list | None = None) -> BacktestReport:
    """Replay trigger ``trigger_id`` over [start, end] (see the module
    docstring). ``exhaustive`` evaluates every plan at every stamp, as a live
    evaluator would: slower, the same firings (the reference the tests
    compare the replay's shortcut with). ``samplelogs`` (sample-log files,
    apps.history.logseries.log_files) replaces memcached as the source of
    raw samples."""
    triggers = load_triggers([trigger_id], enabled_only=False)
    if not triggers:
        raise ValueError(f"no trigger with id {trigger_id}")
    trigger = triggers[0]
    if samplelogs is not None and resolution == "1m":
        raise ValueError("resolution: sample logs hold raw samples; 1m reads the summaries")
    forced = resolution is not None
    resolution = "raw" if samplelogs is not None else (
        resolution or choose_resolution(start, datetime.now(timezone.utc)))
    # The simulated trigger: never fired, counting from the start of the range.
    trigger.last_fired_at, trigger.counting_since, trigger.enabled = None, start, True
    plans = _plans_for(trigger, resolution)
    report = BacktestReport(str(trigger), start, end, resolution, NOTES[resolution])
    if not plans:
        report.note += " The trigger counts no series (no counters, or no running nodes)."
        return report
    if samplelogs is not None:
        series, coverage = _samplelog_series(plans, samplelogs, start, end)
        report.note = NOTES["samplelog"] + coverage
    elif resolution == "raw":
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
    return replay(trigger, plans, series, start, end, report, exhaustive=exhaustive)


def replay(trigger: Trigger, plans: list[SeriesPlan], series: dict[str, dict[int, float]], start: datetime,
           end: datetime, report: BacktestReport, exhaustive: bool = False) -> BacktestReport:
    """The simulated clock over ``series`` (base key -> {epoch -> value}),
    the firings and suppressions added to ``report``.

    The clock stops where a live evaluator's knowledge changes: SEEN_AFTER_S
    after each stamp (its samples are seen) and, for a stamp some series
    misses, when that stamp settles (interval + grace after it: a missing-data
    policy judges it then). Each series is counted from its first sample:
    before it the replay knows nothing (a node created later, history enabled
    later, a host whose sample log was not given), which a "breaching"
    missing-data policy must not take for an outage. ``exhaustive`` instead
    evaluates every series every second, as the live evaluator's 1 s tick
    does: the reference the tests hold the shortcut to."""
    # Non-finite values are missing to the evaluator (breach.parse_value):
    # dropped here, so that the shortcut's judgement agrees.
    series = {base: {stamp: v for stamp, v in values.items() if math.isfinite(v)}
              for base, values in series.items()}
    begins = _begins(plans, series)
    absent = sum(1 for b in begins if b is None)
    if absent:
        report.note += (f" {absent} of {len(plans)} series have no sample in the range and are left out; "
                        f"each other series is counted from its first sample.")
    if absent == len(plans):
        return report
    evaluator = BacktestEvaluator(HistoryStore(series), trigger, plans, report)
    step_s = min(plan.counter.interval_s for plan in plans)
    stamps = [int(s.timestamp()) for s in stamps_between(floor_stamp(start, step_s), end, step_s)]
    # The clock runs until the last stamp has settled.
    horizon = stamps[-1] + step_s + grace_s()
    if exhaustive:
        first = min(b for b in begins if b is not None)
        moments = {float(t): None for t in range(first, int(horizon) + 1)}
    else:
        moments = _eventful(plans, series, stamps, step_s)
    waiting = sorted((b + SEEN_AFTER_S, i) for i, b in enumerate(begins) if b is not None)
    eligible: set[int] = set()
    queue = list(moments)
    heapq.heapify(queue)
    while queue:
        moment = heapq.heappop(queue)
        while waiting and waiting[0][0] <= moment:
            eligible.add(waiting.pop(0)[1])
        due = eligible if moments[moment] is None else (moments[moment] | evaluator.counting) & eligible
        if not due:
            report.skipped += 1
            continue
        fired = len(report.firings)
        evaluator.step(datetime.fromtimestamp(moment, tz=timezone.utc), due)
        # A series still reached when the cooldown ends fires then: a moment.
        until = moment + trigger.cooldown_s
        if len(report.firings) > fired and until not in moments and until <= horizon:
            moments[until] = set()
            heapq.heappush(queue, until)
    return report


def _begins(plans: list[SeriesPlan], series: dict[str, dict[int, float]]) -> list[int | None]:
    """Per plan, the stamp of its first sample (of any member), or None."""
    out = []
    for plan in plans:
        firsts = [min(values) for m in plan.members if (values := series.get(m.base))]
        out.append(min(firsts) if firsts else None)
    return out


def _eventful(plans: list[SeriesPlan], series: dict[str, dict[int, float]], stamps: list[int],
              step_s: int) -> dict[float, set[int] | None]:
    """Moment (epoch s) -> the plans to evaluate then besides those still
    counting (None: every plan).

    A plan whose count is 0 and whose sample at a stamp does not breach would
    only move its "last counted" stamp: its next evaluation resumes after that
    stamp or, further back than its look-back, rebuilds over the look-back —
    counting the same non-breaching samples to the same 0 — and a firing in
    between resets it on resume as it would have then (breach.reading_start,
    breach.advance). So the replay evaluates a plan only where its sample
    breaches or is missing — for a missing one from a look-back before it
    (a rebuilt state would pass it over as "the unknown past") until after
    it has settled, and at the moment it settles — plus wherever its count
    is above 0; moments where no plan is due are skipped.
    ``test_skipping_quiet_plans_fires_as_the_live_one_second_tick`` holds the
    replay to the exhaustive evaluation. Aggregating plans, and plans on a
    coarser grid than the replay's, are evaluated at every moment."""
    grace = grace_s()
    out: dict[float, set[int] | None] = {stamp + SEEN_AFTER_S: set() for stamp in stamps}
    if any(plan.node_id is None or plan.counter.interval_s != step_s for plan in plans):
        settles = {stamp + plan.counter.interval_s + grace for plan in plans for stamp in stamps}
        return dict.fromkeys([*out, *settles])
    grid = set(stamps)
    for i, plan in enumerate(plans):
        interval = plan.counter.interval_s
        values = series.get(plan.members[0].base, {})
        test = OPERATORS[Comparison(plan.counter.comparison)]
        threshold = plan.counter.threshold
        mine = {stamp for stamp, value in values.items() if test(value, threshold)} & grid
        before = (plan.needed + breach.LOOKBACK_EXTRA) * interval
        after = int(2 * interval + grace) + 1
        for stamp in grid.difference(values):
            mine.update(range(stamp - before, stamp + after, step_s))
            out.setdefault(stamp + interval + grace, set()).add(i)
        for stamp in mine & grid:
            out[stamp + SEEN_AFTER_S].add(i)
    return out


NOTES = {
    "raw": "Raw samples (memcached still holds the range): counted sample by sample, as live.",
    "samplelog": "Raw samples from the sample logs given: counted sample by sample, as live.",
    "1m": ("1-minute summaries (the range is older than memcached's retention): each minute is one sample, "
           "breaching only if every sample in it breached; breaches shorter than a whole minute are not seen, "
           "and triggers with timing under a minute are judged per minute. For raw samples of an older range, "
           "give the worker hosts' sample logs (manage.py backtest --samplelog)."),
}
