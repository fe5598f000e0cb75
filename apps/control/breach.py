"""Breach counting: the pure core of the trigger semantics (no I/O).

The evaluator (``evaluator.py``) reads samples and states from memcached and
hands them here; everything that decides *what a sample means* lives in this
module so it can be tested exhaustively without servers.

Semantics (architecture.md, "Trigger semantics"):

* A sample breaches when ``value <comparison> threshold`` holds.
* The breach count is the number of consecutive breaching samples up to the
  newest counted one; a non-breaching sample resets it to 0.
* Counting starts when the trigger is created or enabled, or its counters
  change (``Trigger.counting_since``): samples stamped before that never count.
* Each stamp is counted once: a state carries the stamp it last counted, and
  ``advance`` skips every stamp at or before it, so running the evaluator
  twice on the same samples changes nothing.
* A missing sample follows the trigger's missing-data policy: ``ignore``
  (neither breaches nor resets), ``breaching`` or ``not_breaching``. When
  counting (re)starts with no state (a new trigger, a lost state), the absent
  samples before the first present one are the unknown past, not failed
  collections: they are passed over whatever the policy.
* A stamp whose sample is absent is only *missing* once it is settled, i.e.
  once collection for it must have finished (``stamp + interval + grace``).
  Before that it is *pending*: counting stops there and resumes at the next
  evaluation, so a late sample is still counted, in order. Present samples
  are counted at once, which keeps the reaction time at one collection
  interval plus the evaluation period.
* Aggregated triggers (avg/max) count one cluster-level series whose value at
  a stamp is the average/maximum of the nodes' values present at that stamp;
  no node present -> missing. While the stamp is unsettled and some node has
  not reported yet the aggregate is pending (a partial average would be
  counted once and never corrected).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from apps.control.choices import Aggregation, MissingData
from apps.monitoring.choices import breaches
from apps.monitoring.samples import format_stamp, parse_stamp

# A stamp is settled (its absence means "missing") this long after its
# interval ended. Collection of stamp S runs during [S, S + interval); the
# grace covers a slow SSH round or a late beat tick.
DEFAULT_GRACE_S = 5.0

# On top of the `needed` stamps, how many stamps a reconstruction (state lost
# or too old) looks back: the newest stamp or two may still be pending.
LOOKBACK_EXTRA = 2


def samples_needed(timing_minutes: int, interval_s: int) -> int:
    """Timing minutes' worth of samples of a counter: how many consecutive
    breaching samples make a trigger fire. ``timing`` 0 means the first
    breaching sample (1)."""
    if interval_s < 1:
        raise ValueError(f"interval_s must be at least 1, not {interval_s!r}")
    if timing_minutes < 0:
        raise ValueError(f"timing_minutes must not be negative, not {timing_minutes!r}")
    return max(1, math.ceil(timing_minutes * 60 / interval_s))


def settled_until(now: datetime, interval_s: int, grace_s: float = DEFAULT_GRACE_S) -> datetime:
    """The newest stamp whose collection must be over at ``now``: a stamp at or
    before it with no sample is missing; a later one is pending."""
    return now - timedelta(seconds=interval_s + grace_s)


def fired_mark(last_fired_at: datetime | None) -> int:
    """A trigger's firing as an integer (µs since the epoch, 0: never fired).

    A state remembers the firing it has accounted for; when the trigger's
    ``last_fired_at`` shows a newer firing, the state's count is reset. This
    makes the reset on firing hold even when a concurrent evaluator writes a
    stale count after the firing evaluator reset it.
    """
    if last_fired_at is None:
        return 0
    return round(last_fired_at.timestamp() * 1_000_000)


# ---------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------
# Thousands of states share a handful of stamps per evaluation; strptime and
# strftime per state would dominate the evaluator's CPU time.
_stamp_text = lru_cache(maxsize=4096)(format_stamp)
_stamp_of = lru_cache(maxsize=4096)(parse_stamp)


@dataclass(frozen=True, slots=True)
class BreachState:
    """One trigger's breach count on one series."""

    count: int = 0
    last_stamp: datetime | None = None  # newest stamp counted; None: none yet
    fired: int = 0  # fired_mark() of the trigger's firing this state accounts for

    def reset(self, fired: int) -> BreachState:
        """The state right after a firing: count 0, the same last stamp, so the
        samples the firing used are never counted again."""
        return BreachState(0, self.last_stamp, fired)


def encode_states(states: dict[int, BreachState]) -> str:
    """The value stored under a series' count key.

    Several triggers may use one counter, each with its own missing-data
    policy and its own firings (a firing resets only its trigger's counts),
    so the seed's count key holds one entry per trigger:
    ``<triggerId>=<count>:<lastStamp>:<firedMark>`` joined by ``;``, e.g.
    ``7=3:20261123192000:0``. ``lastStamp`` is ``-`` before anything counted.
    """
    return ";".join(
        f"{tid}={s.count}:{_stamp_text(s.last_stamp) if s.last_stamp else '-'}:{s.fired}"
        for tid, s in sorted(states.items())
    )


def decode_states(raw: str | bytes | None) -> dict[int, BreachState]:
    """Parse ``encode_states``' output. An absent or malformed value (an
    evicted key, an old format) gives no states: counting restarts from the
    samples still present, which is what a memcached restart requires anyway."""
    if raw is None:
        return {}
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError:
            return {}
    states: dict[int, BreachState] = {}
    if not raw:
        return states
    try:
        for entry in raw.split(";"):
            tid, rest = entry.split("=", 1)
            count, stamp, fired = rest.split(":")
            states[int(tid)] = BreachState(
                count=int(count),
                last_stamp=None if stamp == "-" else _stamp_of(stamp),
                fired=int(fired),
            )
    except ValueError:
        return {}
    if any(s.count < 0 for s in states.values()):
        return {}
    return states


# ---------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------
def advance(
    state: BreachState,
    observations: Iterable[tuple[datetime, float | None]],
    *,
    comparison: str,
    threshold: float,
    missing_data: str,
    settled: datetime,
) -> BreachState:
    """Count the observations (stamp, value or None), oldest first, into the
    state and return the new state.

    Stamps at or before ``state.last_stamp`` were counted before and are
    skipped. A None value at a stamp after ``settled`` is pending: counting
    stops there (the sample may still arrive). A None value at a settled
    stamp is missing and follows ``missing_data`` -- except before anything
    was ever counted (a new trigger, a rebuilt state): there the absent
    samples are the unknown past, not failed collections, and are passed
    over, so that ``breaching`` does not fire on the history of a trigger
    created a minute ago or of a memcached that has just restarted.
    """
    policy = MissingData(missing_data)
    count, last, fired = state.count, state.last_stamp, state.fired
    known = last is not None
    for stamp, value in observations:
        if last is not None and stamp <= last:
            continue
        if value is None:
            if stamp > settled:
                break
            if not known:
                pass  # the unknown past
            elif policy is MissingData.BREACHING:
                count += 1
            elif policy is MissingData.NOT_BREACHING:
                count = 0
            # IGNORE: neither breaches nor resets.
        elif breaches(value, comparison, threshold):
            count += 1
        else:
            count = 0
        if value is not None:
            known = True
        last = stamp
    if last == state.last_stamp and count == state.count:
        return state
    return BreachState(count, last, fired)


def aggregate(values: Sequence[float | None], how: str, *, settled: bool) -> float | None:
    """The cluster value at one stamp from the nodes' values there.

    Missing nodes are left out; no node present gives None (missing). While
    the stamp is not settled, any absent node gives None so that ``advance``
    treats the stamp as pending rather than counting a partial value.
    """
    present = [v for v in values if v is not None]
    if not present or (not settled and len(present) < len(values)):
        return None
    return _AGGREGATORS[Aggregation(how)](present)


_AGGREGATORS = {
    Aggregation.AVERAGE: lambda vs: math.fsum(vs) / len(vs),
    Aggregation.MAXIMUM: max,
}


def parse_value(raw: str | bytes | float | int | None) -> float | None:
    """A stored sample as a number; anything unreadable counts as missing
    (the sample log keeps the original)."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@lru_cache(maxsize=1024)  # one value per trigger, asked for each of its series (thousands a run)
def counting_mark(last_fired_at: datetime | None, counting_since: datetime | None = None) -> int:
    """The reset a state must account for: the trigger's last firing or the
    moment its counting (re)started (Trigger.counting_since), the later one."""
    return fired_mark(max((t for t in (last_fired_at, counting_since) if t is not None), default=None))


def reading_start(
    state: BreachState | None,
    *,
    newest: datetime,
    interval_s: int,
    needed: int,
    last_fired_at: datetime | None,
    counting_since: datetime | None = None,
) -> tuple[datetime, BreachState]:
    """Where counting resumes for one series, and the state it resumes from.

    * A known, recent state resumes after its last stamp.
    * A state that is lost (memcached restarted, key evicted), or so old that
      the stamps since exceed the look-back, is rebuilt from the samples still
      present: counting restarts at 0 over the last ``needed + LOOKBACK_EXTRA``
      stamps (absent samples before the first present one are passed over,
      see ``advance``). This bounds the reads (a lost state never costs more
      than its look-back), and a rebuilt count can only be lower than the
      lost one: the trigger may fire later, never earlier.
    * Never before the trigger's last firing: the samples a firing used must
      not be counted again by a rebuilt state.
    * Never before ``counting_since`` (the trigger's creation, enabling or
      change of counters): a sample stamped before it never counts, and a
      count from before it is reset, as by a firing.
    """
    mark = counting_mark(last_fired_at, counting_since)
    window_start = newest - timedelta(seconds=interval_s * (needed + LOOKBACK_EXTRA - 1))
    if state is not None and state.fired < mark:
        # The trigger fired since this state was written: the firing reset it.
        # (A state with a newer mark than ours was written after a firing this
        # evaluation has not seen; it is already reset, and our claim will fail.)
        state = state.reset(mark)
    if state is not None and state.last_stamp is not None and state.last_stamp >= window_start:
        return _not_before(state.last_stamp + timedelta(seconds=1), counting_since), state
    start = window_start
    if last_fired_at is not None and last_fired_at >= start:
        start = last_fired_at + timedelta(seconds=1)
    return _not_before(start, counting_since), BreachState(0, None, mark)


def _not_before(start: datetime, counting_since: datetime | None) -> datetime:
    return counting_since if counting_since is not None and counting_since > start else start
