#!/usr/bin/env python
"""Seed-style triggers against a target-tracking policy on a two-day load trace.

The trace: one-minute steps over two days, a daily cycle, two sudden spikes
and noise, demand in "node units" (one node serves one unit at 100 % CPU).
A launched node serves after 3 minutes and runs at twice the CPU for its
first 5 minutes of service (a JVM's start-up), so the cluster's average CPU
rises when it scales out.

(a) fixed: the seed's pair of triggers, counted by PyScaler's own breach code
    (apps/control/breach.py, cluster average): +1 node when the average CPU is
    >= 70 % for 5 minutes, -1 node when it is <= 30 % for 10 minutes, each with
    the default 300 s cooldown.
(b) policy: a target-tracking policy decided by PyScaler's own decision code
    (apps/control/policy/decide.py) with its guards: warm-up, scale-in
    stabilization, per-direction cooldowns, flap check, step cap, bounds.

Both run on a simulated clock; nothing here re-implements a decision. For
each it prints under- and over-provisioned node-minutes (demand above the
serving nodes; nodes running above the demand), scaling actions and flaps
(opposite actions within 10 minutes), writes a PNG of both runs (demand and
capacity) and ends with one JSON line of the figures.

Run:  .venv/bin/python bench/policy.py [--png test-artifacts/bench/policy.png]
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from apps.control import breach  # noqa: E402
from apps.control.policy.decide import decide  # noqa: E402
from apps.control.policy.inputs import Inputs, PolicyConfig, Reading  # noqa: E402
from bench.pngdraw import Canvas  # noqa: E402

T0 = datetime(2030, 1, 7, 0, 0, tzinfo=timezone.utc)  # a Monday
MINUTES = 2 * 24 * 60
BOOT_MIN, HOT_MIN, HOT_FACTOR = 3, 5, 2.0
START_NODES, MIN_SIZE, MAX_SIZE = 3, 1, 20
FLAP_WINDOW_MIN = 10
#: The policy under test (the guards PyScaler ships, tuned for this trace).
POLICY = PolicyConfig(kind="target", tolerance=0.1, scale_out_window_s=0, scale_in_window_s=900,
                      scale_out_cooldown_s=0, scale_in_cooldown_s=600, max_step=5, min_size=MIN_SIZE,
                      max_size=MAX_SIZE)
POLICY_TARGET = 70.0  # the fixed scale-out trigger's threshold
POLICY_WARMUP_MIN = BOOT_MIN + HOT_MIN


def demand_trace(seed: int = 12) -> list[float]:
    """Node units wanted at each minute: day cycle, two spikes, noise."""
    rng = random.Random(seed)
    out = []
    for m in range(MINUTES):
        hour = (m / 60) % 24
        day = 2.0 + 5.0 * max(0.0, math.sin(math.pi * (hour - 6) / 16)) if 6 <= hour <= 22 else 2.0
        spike = 6.0 if 10 * 60 + 30 <= m < 11 * 60 + 15 else 0.0  # day 1, 10:30, 45 minutes
        spike += 5.0 if 24 * 60 + 16 * 60 <= m < 24 * 60 + 16 * 60 + 30 else 0.0  # day 2, 16:00, 30 minutes
        out.append(max(0.5, day + spike + rng.gauss(0, 0.25)))
    return out


@dataclass
class Cluster:
    """Simulated nodes: the minute each was launched."""

    launched: list[int] = field(default_factory=lambda: [-1000] * START_NODES)

    def serving(self, m: int) -> list[int]:
        return [t for t in self.launched if m - t >= BOOT_MIN]

    def cpu(self, m: int, demand: float) -> dict[int, float]:
        """CPU % of each serving node (by index): a hot node runs at twice."""
        serving = [i for i, t in enumerate(self.launched) if m - t >= BOOT_MIN]
        if not serving:
            return {}
        base = 100.0 * demand / len(serving)
        return {i: min(100.0, base * (HOT_FACTOR if m - self.launched[i] < BOOT_MIN + HOT_MIN else 1.0))
                for i in serving}

    def scale(self, m: int, change: int) -> None:
        if change > 0:
            self.launched += [m] * change
        elif change < 0:
            self.launched.sort()
            del self.launched[len(self.launched) + change:]  # the newest go first


@dataclass
class Run:
    name: str
    capacity: list[int] = field(default_factory=list)
    actions: list[tuple[int, int]] = field(default_factory=list)  # (minute, +n / -n)
    under: float = 0.0
    over: float = 0.0

    def account(self, m: int, cluster: Cluster, demand: float) -> None:
        serving = len(cluster.serving(m))
        self.capacity.append(serving)
        self.under += max(0.0, demand - serving)
        self.over += max(0.0, len(cluster.launched) - demand)

    @property
    def flaps(self) -> int:
        return sum(1 for (m1, c1), (m2, c2) in zip(self.actions, self.actions[1:])
                   if (c1 > 0) != (c2 > 0) and m2 - m1 < FLAP_WINDOW_MIN)

    def figures(self) -> dict:
        return {"under_node_min": round(self.under, 1), "over_node_min": round(self.over, 1),
                "actions": len(self.actions), "flaps": self.flaps}


def at(m: int) -> datetime:
    return T0 + timedelta(minutes=m)


@dataclass
class SeedTrigger:
    """One seed-style trigger, counted by breach.advance on the cluster average."""

    comparison: str
    threshold: float
    timing_minutes: int
    change: int
    cooldown_s: int = 300
    state: breach.BreachState = field(default_factory=breach.BreachState)
    last_fired: datetime | None = None

    def fires(self, m: int, average: float | None) -> bool:
        now = at(m)
        self.state = breach.advance(self.state, [(now, average)], comparison=self.comparison,
                                    threshold=self.threshold, missing_data="ignore", settled=now)
        needed = breach.samples_needed(self.timing_minutes, 60)
        cooling = self.last_fired is not None and now < self.last_fired + timedelta(seconds=self.cooldown_s)
        if self.state.count < needed or cooling:
            return False
        self.last_fired = now
        self.state = self.state.reset(breach.fired_mark(now))
        return True


def run_fixed(demand: list[float]) -> Run:
    run, cluster = Run("fixed"), Cluster()
    up = SeedTrigger(">=", 70.0, 5, +1)
    down = SeedTrigger("<=", 30.0, 10, -1)
    for m, load in enumerate(demand):
        cpu = cluster.cpu(m, load)
        average = sum(cpu.values()) / len(cpu) if cpu else None  # every node with a sample
        for trigger in (up, down):
            if trigger.fires(m, average):
                size = len(cluster.launched)
                change = max(MIN_SIZE, min(MAX_SIZE, size + trigger.change)) - size  # the bounds lock
                if change:
                    cluster.scale(m, change)
                    run.actions.append((m, change))
        run.account(m, cluster, load)
    return run


def policy_inputs(m: int, cluster: Cluster, load: float, recs: list, last_out, last_in,
                  target: float) -> Inputs:
    cpu = cluster.cpu(m, load)
    in_service = [i for i, t in enumerate(cluster.launched) if m - t >= POLICY_WARMUP_MIN]
    values = [cpu[i] for i in in_service if i in cpu]
    reading = Reading("cpu", sum(values) / len(values) if values else None, target=target,
                      error="" if values else "no node in service")
    return Inputs(now=at(m), in_service=len(in_service), warming=len(cluster.launched) - len(in_service),
                  readings=(reading,), recommendations=tuple(recs), last_scale_out_at=last_out,
                  last_scale_in_at=last_in)


def run_policy(demand: list[float], target: float = POLICY_TARGET) -> Run:
    run, cluster = Run("policy"), Cluster()
    recs: list[tuple[datetime, int]] = []
    last_out = last_in = None
    keep = timedelta(seconds=max(POLICY.scale_in_window_s, POLICY.scale_out_window_s))
    for m, load in enumerate(demand):
        decision = decide(POLICY, policy_inputs(m, cluster, load, recs, last_out, last_in, target))
        recs = [(s, r) for s, r in recs if s > at(m) - keep] + [(at(m), decision.recommendation)]
        if decision.change:
            cluster.scale(m, decision.change)
            run.actions.append((m, decision.change))
            if decision.change > 0:
                last_out = at(m)
            else:
                last_in = at(m)
        run.account(m, cluster, load)
    return run


def draw(demand: list[float], runs: list[Run], path: Path) -> None:
    width, panel, margin = 1400, 300, 40
    canvas = Canvas(width, margin + len(runs) * (panel + margin))
    top = max(max(demand), *(max(r.capacity) for r in runs)) + 1
    for k, run in enumerate(runs):
        y0 = margin + k * (panel + margin)
        canvas.rect(60, y0, width - 20, y0 + panel, (246, 246, 246))
        for level in range(0, int(top) + 1, 2):
            y = y0 + panel - int(level / top * panel)
            canvas.line(60, y, width - 20, y, (220, 220, 220))
            canvas.text(30, y - 5, str(level))
        scale_x = (width - 80) / len(demand)
        for series, color, w in ((demand, (30, 30, 30), 1), (run.capacity, (31, 119, 180), 2)):
            points = [(60 + int(i * scale_x), y0 + panel - int(v / top * panel))
                      for i, v in enumerate(series)]
            for (xa, ya), (xb, yb) in zip(points, points[1:]):
                canvas.line(xa, ya, xb, yb, color, w)
        f = run.figures()
        canvas.text(70, y0 - 24, f"{run.name}: under {f['under_node_min']:.0f} node-min, over "
                                 f"{f['over_node_min']:.0f}, actions {f['actions']}, flaps {f['flaps']}")
        canvas.text(width - 420, y0 - 24, "demand", (30, 30, 30))
        canvas.text(width - 300, y0 - 24, "serving nodes", (31, 119, 180))
    canvas.save(path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", type=Path, default=REPO / "test-artifacts" / "bench" / "policy.png")
    parser.add_argument("--target", type=float, default=POLICY_TARGET, help="the policy's CPU target (%%)")
    args = parser.parse_args(argv)
    demand = demand_trace()
    fixed, policy = run_fixed(demand), run_policy(demand, args.target)
    for run in (fixed, policy):
        f = run.figures()
        print(f"{run.name:6}  under-provisioned {f['under_node_min']:8.1f} node-min  over-provisioned "
              f"{f['over_node_min']:8.1f} node-min  actions {f['actions']:4d}  flaps {f['flaps']:3d}")
    draw(demand, [fixed, policy], args.png)
    print(f"picture: {args.png}")
    result = {f"{run.name}_{key}": value for run in (fixed, policy) for key, value in run.figures().items()}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
