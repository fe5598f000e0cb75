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

from apps.control.policy.decide import decide
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


def backtest_policy(policy_id: int, start: datetime, end: datetime, start_size: int | None = None
                    ) -> PolicyBacktestReport:
    """Replay policy ``policy_id`` over [start, end] from the 1-minute
    summaries (see the module docstring)."""
    policy = (ScalingPolicy.objects.select_related("cluster").prefetch_related("counters__bands", "schedules")
              .filter(pk=policy_id).first())
    if policy is None:
        raise ValueError(f"policy: no scaling policy with id {policy_id}")
    if (end - start).total_seconds() / 60 > MAX_PERIODS:
        raise ValueError(f"days: at most {MAX_PERIODS // 1440} days of minutes")
    horizon = partitions.horizon(MinuteSummary, end)
    metrics, _ = split_counters(policy)
    broken = [f"{c.name}: {c.error}" for c in metrics if c.error]
    if not metrics or broken:
        raise ValueError("policy: " + ("; ".join(broken) if broken else "it has no metric counter"))
    config = config_of(policy)
    report = PolicyBacktestReport(str(policy), start, end, "1m", NOTE)
    timelines = [minute_timeline(c, policy.cluster_id, start, end) for c in metrics]
    minutes = sorted(set().union(*timelines))
    if not minutes:
        report.note += " No summaries of the policy's counters in the range."
        return report
    first, last = (datetime.fromtimestamp(m, tz=timezone.utc) for m in (minutes[0], minutes[-1]))
    report.note += f" Minutes with data: {len(minutes)}, {first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M} UTC."
    if start < horizon:
        report.note += (f" Minute summaries are kept {partitions.retention_days(MinuteSummary)} days: "
                        f"nothing before {horizon:%Y-%m-%d %H:%M} UTC.")
    capacity = start_size if start_size is not None else max(t.get(minutes[0], (0, 0.0))[0] for t in timelines)
    capacity = min(max(capacity, config.min_size), config.max_size)
    report.start_size = capacity
    warming: list[tuple[datetime, int]] = []  # (in service from, nodes)
    recommendations: list[tuple[datetime, int]] = []
    last_out = last_in = None
    keep = timedelta(seconds=max(policy.scale_in_window_s, policy.scale_out_window_s))
    for minute in minutes:
        # The period's newest sample is seen at its end.
        now = datetime.fromtimestamp(minute, tz=timezone.utc) + timedelta(seconds=60)
        warming = [(ready, n) for ready, n in warming if ready > now]
        warm = sum(n for _, n in warming)
        in_service = max(0, capacity - warm)
        readings = []
        for counter, timeline in zip(metrics, timelines):
            row = counter.row
            bands = tuple(Band(b.lower, b.upper, b.adjustment) for b in row.bands.all())
            target = row.target if config.kind == TARGET_TRACKING else None
            recorded = timeline.get(minute)
            if recorded is None or in_service == 0:
                error = "no summary in this minute" if recorded is None else "no node in service"
                readings.append(Reading(counter.name, None, target=target, bands=bands, error=error))
                continue
            nodes, value = recorded
            readings.append(Reading(counter.name, value * nodes / in_service, target=target, bands=bands))
        recommendations = [(s, r) for s, r in recommendations if s > now - keep]
        inputs = Inputs(now=now, in_service=in_service, warming=warm, readings=tuple(readings),
                        schedule=schedule_in_force(policy, now), recommendations=tuple(recommendations),
                        last_scale_out_at=last_out, last_scale_in_at=last_in)
        decision = decide(config, inputs)
        recommendations.append((now, decision.recommendation))
        report.evaluations += 1
        for effect in decision.blocking:
            report.blocked[effect.guard] = report.blocked.get(effect.guard, 0) + 1
        if decision.direction == "out":
            last_out = now
            warming.append((now + timedelta(seconds=policy.warmup_s), decision.change))
        elif decision.direction == "in":
            last_in = now
            # Warming nodes go first (the newest launches), then serving ones.
            remove = -decision.change
            warming = _remove_warming(warming, remove)
        if decision.direction != "hold":
            report.scalings.append({"time": now.isoformat(), "direction": decision.direction,
                                    "current": decision.current, "desired": decision.desired,
                                    "summary": decision_summary(decision),
                                    "counters": [{"counter": c["counter"], "value": c["value"],
                                                  "desired": c["desired"]} for c in decision.per_counter]})
            capacity = decision.desired
        recorded_nodes = max(t.get(minute, (0, 0.0))[0] for t in timelines)
        report.sizes.append((minute, recorded_nodes, capacity))
    return report


def _remove_warming(warming: list[tuple[datetime, int]], count: int) -> list[tuple[datetime, int]]:
    out = []
    for ready, nodes in sorted(warming, reverse=True):
        taken = min(nodes, count)
        count -= taken
        if nodes - taken:
            out.append((ready, nodes - taken))
    return sorted(out)
