"""From inputs to a decision: each counter's desired size, then the guards
in order, each a small class that may change the size and says why.

Sizes are capacities: in-service + warming + in-flight nodes. A counter's
desired size is computed from the in-service nodes only (their average over
their count), so a JVM's start-up spike on a warming node neither asks for
more nodes nor, once the node serves, hides the need (the warming node is
already counted as capacity).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from .inputs import STEP_BANDS, Inputs, PolicyConfig, Reading

#: Below this, a ratio is taken as equal (ceil(3 × 70 / 70) must be 3).
EPSILON = 1e-9


@dataclass(frozen=True)
class GuardEffect:
    guard: str
    before: int
    after: int
    note: str
    #: The guard blocked or reduced a change the decision wanted.
    blocked: bool = False
    until: datetime | None = None

    def as_dict(self) -> dict:
        return {"guard": self.guard, "before": self.before, "after": self.after, "note": self.note,
                "blocked": self.blocked, "until": self.until.isoformat() if self.until else None}


@dataclass
class Decision:
    current: int
    #: The counters' answer before any guard.
    raw_desired: int
    #: What this evaluation recommends to later ones (stabilization's memory).
    recommendation: int
    desired: int
    per_counter: list[dict] = field(default_factory=list)
    effects: list[GuardEffect] = field(default_factory=list)

    @property
    def change(self) -> int:
        return self.desired - self.current

    @property
    def direction(self) -> str:
        return "out" if self.change > 0 else ("in" if self.change < 0 else "hold")

    @property
    def blocking(self) -> list[GuardEffect]:
        return [e for e in self.effects if e.blocked]


# ---------------------------------------------------------------------------
# Counters
# ---------------------------------------------------------------------------
def counter_desired(config: PolicyConfig, reading: Reading, inputs: Inputs) -> int | None:
    """One counter's desired capacity, None when it has no value."""
    if reading.value is None:
        return None
    if config.kind == STEP_BANDS:
        for band in reading.bands:
            if band.contains(reading.value):
                return max(0, inputs.in_service + band.adjustment) if band.adjustment else inputs.capacity
        return inputs.capacity
    if not reading.target or reading.target <= 0:
        return None
    ratio = reading.value / reading.target
    if abs(ratio - 1) <= config.tolerance + EPSILON:
        return inputs.capacity
    return max(0, math.ceil(inputs.in_service * ratio - EPSILON))


def crosses_out(config: PolicyConfig, reading: Reading, value: float) -> bool:
    """Whether ``value`` of the counter would ask for a scale-out."""
    if config.kind == STEP_BANDS:
        return any(b.adjustment > 0 and b.contains(value) for b in reading.bands)
    return bool(reading.target) and value / reading.target > 1 + config.tolerance + EPSILON


# ---------------------------------------------------------------------------
# Guards: each sees the size so far and returns its effect
# ---------------------------------------------------------------------------
class Guard:
    name = ""

    def apply(self, size: int, d: Decision, config: PolicyConfig, inputs: Inputs) -> GuardEffect | None:
        raise NotImplementedError

    def effect(self, before: int, after: int, note: str, *, blocked: bool | None = None,
               until: datetime | None = None) -> GuardEffect:
        return GuardEffect(self.name, before, after, note, before != after if blocked is None else blocked, until)


class MissingData(Guard):
    """An absent or failing counter blocks scale-in and never causes it."""

    name = "missing data"

    def apply(self, size, d, config, inputs):
        missing = [r for r in inputs.readings if r.value is None]
        if not missing:
            return None
        names = ", ".join(f"{r.counter} ({r.error or 'no data'})" for r in missing)
        if size < d.current:
            return self.effect(size, d.current, f"scale-in blocked: no value from {names}")
        return self.effect(size, size, f"no value from {names}", blocked=False)


class WarmUp(Guard):
    """Warming nodes and launches in flight count as capacity (and nodes a
    scale-in under way removes do not); while there are any, the cluster does
    not scale in (their need was just decided)."""

    name = "warm-up"

    def apply(self, size, d, config, inputs):
        pending = inputs.warming + inputs.in_flight + inputs.removing
        if not pending:
            return None
        counted = f"{inputs.warming} warming and {inputs.in_flight} in flight counted as capacity"
        if inputs.removing:
            counted += f", {inputs.removing} being removed not counted"
        if size < d.current:
            return self.effect(size, d.current, f"scale-in waits: {counted}")
        covered = inputs.in_service < size <= d.current
        return self.effect(size, size, counted + (f"; {size} already covered" if covered else ""),
                           blocked=covered and d.raw_desired > inputs.in_service)


class Stabilization(Guard):
    """Scale in only to the highest recommendation of the scale-in window and
    out only to the lowest of the scale-out window (Kubernetes HPA)."""

    name = "stabilization"

    def apply(self, size, d, config, inputs):
        if size == d.current:
            return None
        scale_in = size < d.current
        window = config.scale_in_window_s if scale_in else config.scale_out_window_s
        if window <= 0:
            return None
        since = inputs.now - timedelta(seconds=window)
        recent = [(s, r) for s, r in inputs.recommendations if s > since] + [(inputs.now, size)]
        pick = max if scale_in else min
        best = pick(r for _, r in recent)
        stable = min(d.current, best) if scale_in else max(d.current, best)
        if stable == size:
            return None
        until = max(s for s, r in recent if r == best) + timedelta(seconds=window)
        side = "scale-in" if scale_in else "scale-out"
        return self.effect(size, stable, f"{side} stabilization: {best} recommended within {window} s",
                           until=until)


class ScheduleWindow(Guard):
    name = "schedule"

    def apply(self, size, d, config, inputs):
        s = inputs.schedule
        if s is None:
            return None
        after = s.desired_size if s.desired_size is not None else size
        if s.min_size is not None:
            after = max(after, s.min_size)
        if s.max_size is not None:
            after = min(after, s.max_size)
        parts = [f"{label} {v}" for label, v in (("min", s.min_size), ("max", s.max_size),
                                                 ("desired", s.desired_size)) if v is not None]
        return self.effect(size, after, f"schedule {s.name!r} in force ({', '.join(parts)})",
                           blocked=False, until=s.until)


class Bounds(Guard):
    name = "bounds"

    def apply(self, size, d, config, inputs):
        low, high = effective_bounds(config, inputs)
        after = min(max(size, low), high)
        if after == size:
            return None
        return self.effect(size, after, f"kept within {low}..{high}", blocked=after != size and
                           abs(after - d.current) < abs(size - d.current))


class FlapCheck(Guard):
    """Before scaling in k nodes, project each counter onto the smaller
    cluster (value × N / (N − k)); scale in fewer, or none, if it would then
    ask for a scale-out."""

    name = "flap check"

    def apply(self, size, d, config, inputs):
        if size >= d.current:
            return None
        _, high = effective_bounds(config, inputs)
        n = inputs.in_service
        safe = size
        while safe < d.current and not self._safe(config, inputs, n, d.current - safe):
            safe += 1
        safe = min(safe, max(high, size))
        if safe == size:
            return None
        k = d.current - size
        projected = ", ".join(f"{r.counter} {r.value:g} → {_project(r.value, n, k):g}"
                              for r in inputs.readings if r.value is not None and n - k > 0)
        note = f"removing {k} would ask for a scale-out again ({projected or 'no node left'})"
        return self.effect(size, safe, note)

    @staticmethod
    def _safe(config: PolicyConfig, inputs: Inputs, n: int, k: int) -> bool:
        if n - k <= 0:
            return False
        return not any(crosses_out(config, r, _project(r.value, n, k))
                       for r in inputs.readings if r.value is not None)


class StepCap(Guard):
    name = "step cap"

    def apply(self, size, d, config, inputs):
        cap = max(1, config.max_step)
        after = min(max(size, d.current - cap), d.current + cap)
        if after == size:
            return None
        return self.effect(size, after, f"at most {cap} node(s) per decision")


class Cooldown(Guard):
    """Per direction: a scale-out waits for the scale-out cooldown of the last
    scale-out only; a scale-in for the scale-in cooldown of the last scaling
    either way (so a scale-in never undoes a fresh scale-out)."""

    name = "cooldown"

    def apply(self, size, d, config, inputs):
        if size == d.current:
            return None
        if inputs.scaling_execution is not None:
            return self.effect(size, d.current, f"execution #{inputs.scaling_execution} is still changing the "
                                                "cluster's size")
        if size > d.current:
            last, cooldown, side = inputs.last_scale_out_at, config.scale_out_cooldown_s, "scale-out"
        else:
            stamps = [s for s in (inputs.last_scale_out_at, inputs.last_scale_in_at) if s is not None]
            last, cooldown, side = (max(stamps) if stamps else None), config.scale_in_cooldown_s, "scale-in"
        if last is None or cooldown <= 0:
            return None
        until = last + timedelta(seconds=cooldown)
        if inputs.now >= until:
            return None
        return self.effect(size, d.current, f"{side} cooldown", until=until)


#: The guards, in the order they apply.
GUARDS: tuple[Guard, ...] = (MissingData(), WarmUp(), Stabilization(), ScheduleWindow(), Bounds(),
                             FlapCheck(), StepCap(), Cooldown())


def _project(value: float, n: int, k: int) -> float:
    return value * n / (n - k)


def effective_bounds(config: PolicyConfig, inputs: Inputs) -> tuple[int, int]:
    """The cluster's bounds narrowed by the schedule in force."""
    low, high = config.min_size, config.max_size
    s = inputs.schedule
    if s is not None:
        low = max(low, s.min_size) if s.min_size is not None else low
        high = min(high, s.max_size) if s.max_size is not None else high
    return min(low, high), high


# ---------------------------------------------------------------------------
# The decision
# ---------------------------------------------------------------------------
def decide(config: PolicyConfig, inputs: Inputs, guards: tuple[Guard, ...] = GUARDS) -> Decision:
    """The largest scale-out any counter asks for wins; a scale-in needs every
    counter to agree (the missing-data guard enforces that an absent counter
    blocks it), and goes to the largest size any counter wants."""
    current = inputs.capacity
    per_counter = []
    wanted = []
    for reading in inputs.readings:
        desired = counter_desired(config, reading, inputs)
        per_counter.append({"counter": reading.counter, "value": reading.value, "nodes": list(reading.nodes),
                            "target": reading.target, "desired": desired, "error": reading.error})
        if desired is not None:
            wanted.append(desired)
    raw = max(wanted) if wanted else current
    d = Decision(current=current, raw_desired=raw, recommendation=raw, desired=raw, per_counter=per_counter)
    size = raw
    for guard in guards:
        effect = guard.apply(size, d, config, inputs)
        if effect is None:
            continue
        d.effects.append(effect)
        size = effect.after
        if guard.name in (MissingData.name, WarmUp.name):
            d.recommendation = size
    d.desired = size
    return d


def with_now(inputs: Inputs, now: datetime) -> Inputs:
    return replace(inputs, now=now)
