"""What one policy evaluation knows: plain, frozen values the decision code
reads and tests build by hand."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

TARGET_TRACKING = "target"
STEP_BANDS = "steps"


@dataclass(frozen=True)
class Band:
    """A range of a counter's value, ``lower <= value < upper`` (an open side
    is None), and the nodes it adds (positive) or removes (negative)."""

    lower: float | None
    upper: float | None
    adjustment: int

    def contains(self, value: float) -> bool:
        return (self.lower is None or value >= self.lower) and (self.upper is None or value < self.upper)

    def describe(self) -> str:
        low = "" if self.lower is None else f"{self.lower:g}"
        high = "" if self.upper is None else f"{self.upper:g}"
        where = f"{low}–{high}" if low and high else (f"≥ {low}" if low else f"< {high}")
        return f"{where} → {self.adjustment:+d}"


def overlapping(bands: list[Band]) -> tuple[Band, Band] | None:
    """The first two bands that share a value, or None."""
    def low(b: Band) -> float:
        return float("-inf") if b.lower is None else b.lower

    def high(b: Band) -> float:
        return float("inf") if b.upper is None else b.upper

    ordered = sorted(bands, key=low)
    for first, second in zip(ordered, ordered[1:]):
        if low(second) < high(first):
            return first, second
    return None


@dataclass(frozen=True)
class Reading:
    """One counter of the policy, as the cluster's in-service nodes report it."""

    counter: str
    #: The average over the nodes that reported; None: no data (or failing).
    value: float | None
    #: The nodes the value came from.
    nodes: tuple[str, ...] = ()
    #: Target tracking: the value to hold the average at.
    target: float | None = None
    #: Step bands: the ranges and their adjustments.
    bands: tuple[Band, ...] = ()
    #: Why there is no value ("no sample from any in-service node", ...).
    error: str = ""


@dataclass(frozen=True)
class Schedule:
    """A scheduled capacity window in force: the sizes it sets (None: not set)."""

    name: str
    min_size: int | None = None
    max_size: int | None = None
    desired_size: int | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class PolicyConfig:
    kind: str = TARGET_TRACKING
    #: Target tracking: no change while value/target is within 1 ± tolerance.
    tolerance: float = 0.1
    scale_out_window_s: int = 0
    scale_in_window_s: int = 300
    scale_out_cooldown_s: int = 60
    scale_in_cooldown_s: int = 300
    #: Most nodes one decision adds or removes.
    max_step: int = 1
    min_size: int = 0
    max_size: int = 10


@dataclass(frozen=True)
class Inputs:
    now: datetime
    #: Running nodes past their warm-up: the nodes the averages come from.
    in_service: int
    #: Running nodes still warming up (left out of the averages).
    warming: int = 0
    #: Launches not running yet (reserved slots, a scale-out chain under way).
    in_flight: int = 0
    #: Nodes a scale-in under way will remove and still running.
    removing: int = 0
    readings: tuple[Reading, ...] = ()
    schedule: Schedule | None = None
    #: Earlier evaluations' recommendations (stamp, size), for stabilization.
    recommendations: tuple[tuple[datetime, int], ...] = ()
    last_scale_out_at: datetime | None = None
    last_scale_in_at: datetime | None = None
    #: An execution that changes the cluster's size and is still under way
    #: (its id): a new one would decide on a stale size, so the policy waits.
    scaling_execution: int | None = None
    #: Nodes of each reading, for the record (not used by the decision).
    notes: dict = field(default_factory=dict)

    @property
    def capacity(self) -> int:
        """What the cluster serves once every launch has warmed up."""
        return max(0, self.in_service + self.warming + self.in_flight - self.removing)
