"""Replaying a scaling policy over recorded history: the sizes it would have chosen.

The decision is PyScaler's own (apps.control.policy.decide, the same pure code
and guards — stabilization windows, cooldowns, max step, cluster bounds,
schedules — the policy evaluator runs), taken once per period of the history
on a simulated clock. What the replay has to assume, and says in its note:

* **Its own decisions take effect.** A trigger's firing does not change the
  samples it is judged on; a policy's does: it sizes the cluster the samples
  came from. So the replay keeps a simulated cluster — its size starts at the
  nodes that reported in the first period (or ``start_size``), a scale-out's
  nodes warm up for the policy's ``warmup_s`` (capacity, not yet in the
  averages), a scale-in removes at once — and rescales each recorded average
  as load spread evenly over the nodes: value × recorded nodes ÷ simulated
  in-service nodes. That holds for load that divides over nodes (requests,
  CPU of a balanced service), not for per-node constants.
* **No launch fails or lags** beyond the warm-up, and readiness counters are
  not replayed (every simulated node serves once warm).

Per period the recorded average is the nodes' newest value in it (the
summaries' ``last``; from raw samples, the sample at the period's stamp),
averaged over the nodes that reported, as the live reading averages each
node's newest sample.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from django.db.models import Avg, Count

from apps.control.policy.decide import Decision, decide
from apps.control.policy.inputs import TARGET_TRACKING, Band, Inputs, Reading
from apps.control.policy.words import decision_summary
from apps.control.policy_models import ScalingPolicy
from apps.control.policy_reading import schedule_in_force, split_counters
from apps.control.policy_runner import config_of

from . import partitions
from .epoch import Epoch
from .models import MinuteSummary
from .placement import database_for

#: Past this many periods the replay refuses (a year of minutes).
MAX_PERIODS = 366 * 24 * 60


def policy_days_limit() -> int:
    """The longest replay asked for: the minute summaries' retention (no data
    beyond), at most MAX_PERIODS; it also bounds a replay run in a web request."""
    return min(MAX_PERIODS // 1440, partitions.retention_days(MinuteSummary))


@dataclass
class PolicyBacktestReport:
    policy: str
    start: datetime
    end: datetime
    resolution: str
    note: str
    period_s: int = 60
    evaluations: int = 0
    start_size: int = 0
    scalings: list[dict] = field(default_factory=list)
    #: Guard name -> evaluations in which it blocked or cut a change.
    blocked: dict[str, int] = field(default_factory=dict)
    #: For the chart: (epoch s, nodes that reported, simulated capacity).
    sizes: list[tuple[int, int, int]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"policy": self.policy, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "resolution": self.resolution, "note": self.note, "period_s": self.period_s,
                "evaluations": self.evaluations, "start_size": self.start_size, "scalings": self.scalings,
                "blocked": self.blocked, "sizes": self.sizes}


NOTE = ("The policy's decisions take effect in the replay: each recorded average is rescaled as load spread "
        "evenly over the simulated in-service nodes (value × recorded nodes ÷ simulated nodes), new nodes "
        "warm up for the policy's warm-up, launches never fail, readiness counters are not replayed.")


def minute_timeline(counter, cluster_id: int, start: datetime, end: datetime) -> dict[int, tuple[int, float]]:
    """Minute (epoch s) -> (nodes that reported, their average newest value),
    from the 1-minute summaries, aggregated by the database."""
    rows = (MinuteSummary.objects.using(database_for(cluster_id))
            .filter(kind=counter.row.source, counter_id=counter.counter.pk,
                    endpoint_id=counter.source.endpoint_id(counter.counter) or 0,
                    bucket__gte=start, bucket__lte=end)
            .values("bucket").order_by()
            .annotate(epoch=Epoch("bucket"), nodes=Count("node_id"), value=Avg("last"))
            .values_list("epoch", "nodes", "value"))
    return {int(epoch): (int(nodes), float(value)) for epoch, nodes, value in rows}


def _load(policy_id: int):
    policy = (ScalingPolicy.objects.select_related("cluster").prefetch_related("counters__bands", "schedules")
              .filter(pk=policy_id).first())
    if policy is None:
        raise ValueError(f"policy: no scaling policy with id {policy_id}")
    metrics, _ = split_counters(policy)
    broken = [f"{c.name}: {c.error}" for c in metrics if c.error]
    if not metrics or broken:
        raise ValueError("policy: " + ("; ".join(broken) if broken else "it has no metric counter"))
    return policy, metrics


def backtest_policy(policy_id: int, start: datetime, end: datetime, start_size: int | None = None
                    ) -> PolicyBacktestReport:
    """Replay policy ``policy_id`` over [start, end] from the 1-minute
    summaries (see the module docstring)."""
    if (end - start).total_seconds() / 60 > MAX_PERIODS:
        raise ValueError(f"days: at most {MAX_PERIODS // 1440} days of minutes")
    policy, metrics = _load(policy_id)
    report = PolicyBacktestReport(str(policy), start, end, "1m", NOTE)
    timelines = [minute_timeline(c, policy.cluster_id, start, end) for c in metrics]
    minutes = sorted(set().union(*timelines))
    if not minutes:
        report.note += " No summaries of the policy's counters in the range."
        return report
    first, last = (datetime.fromtimestamp(m, tz=timezone.utc) for m in (minutes[0], minutes[-1]))
    report.note += f" Minutes with data: {len(minutes)}, {first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M} UTC."
    horizon = partitions.horizon(MinuteSummary, end)
    if start < horizon:
        report.note += (f" Minute summaries are kept {partitions.retention_days(MinuteSummary)} days: "
                        f"nothing before {horizon:%Y-%m-%d %H:%M} UTC.")
    recorded = [max(t.get(m, (0, 0.0))[0] for t in timelines) for m in minutes]
    cluster = SimulatedCluster(policy, metrics, recorded[0] if start_size is None else start_size)
    report.start_size = cluster.capacity
    for minute, nodes in zip(minutes, recorded):
        # The period's newest sample is seen at its end.
        decision = cluster.decide(datetime.fromtimestamp(minute + 60, tz=timezone.utc),
                                  [timeline.get(minute) for timeline in timelines])
        report.evaluations += 1
        for effect in decision.blocking:
            report.blocked[effect.guard] = report.blocked.get(effect.guard, 0) + 1
        if decision.direction != "hold":
            report.scalings.append({"time": cluster.now.isoformat(), "direction": decision.direction,
                                    "current": decision.current, "desired": decision.desired,
                                    "summary": decision_summary(decision),
                                    "counters": [{"counter": c["counter"], "value": c["value"],
                                                  "desired": c["desired"]} for c in decision.per_counter]})
        report.sizes.append((minute, nodes, cluster.capacity))
    return report


class SimulatedCluster:
    """The cluster the replayed policy sizes: its capacity, the launches still
    warming up, and the policy's memory between evaluations (recommendations
    for the stabilization windows, last scalings for the cooldowns)."""

    def __init__(self, policy: ScalingPolicy, metrics: list, size: int) -> None:
        self.policy, self.metrics, self.config = policy, metrics, config_of(policy)
        self.capacity = min(max(size, self.config.min_size), self.config.max_size)
        self.warming: list[tuple[datetime, int]] = []  # (in service from, nodes)
        self.recommendations: list[tuple[datetime, int]] = []
        self.last_out: datetime | None = None
        self.last_in: datetime | None = None
        self.keep = timedelta(seconds=max(policy.scale_in_window_s, policy.scale_out_window_s))
        self.now = datetime.min.replace(tzinfo=timezone.utc)

    def readings(self, recorded: list[tuple[int, float] | None], in_service: int) -> tuple[Reading, ...]:
        """Each metric as the simulated in-service nodes would read it."""
        out = []
        for counter, found in zip(self.metrics, recorded):
            row = counter.row
            bands = tuple(Band(b.lower, b.upper, b.adjustment) for b in row.bands.all())
            target = row.target if self.config.kind == TARGET_TRACKING else None
            if found is None or in_service == 0:
                error = "no summary in this minute" if found is None else "no node in service"
                out.append(Reading(counter.name, None, target=target, bands=bands, error=error))
                continue
            nodes, value = found
            out.append(Reading(counter.name, value * nodes / in_service, target=target, bands=bands))
        return tuple(out)

    def decide(self, now: datetime, recorded: list[tuple[int, float] | None]) -> Decision:
        """One evaluation at ``now``; its scaling takes effect at once."""
        self.now = now
        self.warming = [(ready, n) for ready, n in self.warming if ready > now]
        warm = sum(n for _, n in self.warming)
        in_service = max(0, self.capacity - warm)
        self.recommendations = [(s, r) for s, r in self.recommendations if s > now - self.keep]
        inputs = Inputs(now=now, in_service=in_service, warming=warm, readings=self.readings(recorded, in_service),
                        schedule=schedule_in_force(self.policy, now), recommendations=tuple(self.recommendations),
                        last_scale_out_at=self.last_out, last_scale_in_at=self.last_in)
        decision = decide(self.config, inputs)
        self.recommendations.append((now, decision.recommendation))
        if decision.direction == "out":
            self.last_out = now
            self.warming.append((now + timedelta(seconds=self.policy.warmup_s), decision.change))
        elif decision.direction == "in":
            self.last_in = now
            # Warming nodes go first (the newest launches), then serving ones.
            self.warming = _remove_warming(self.warming, -decision.change)
        if decision.direction != "hold":
            self.capacity = decision.desired
        return decision


def _remove_warming(warming: list[tuple[datetime, int]], count: int) -> list[tuple[datetime, int]]:
    out = []
    for ready, nodes in sorted(warming, reverse=True):
        taken = min(nodes, count)
        count -= taken
        if nodes - taken:
            out.append((ready, nodes - taken))
    return sorted(out)
