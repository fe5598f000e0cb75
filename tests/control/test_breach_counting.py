"""The pure breach-counting core (apps/control/breach.py): timing, reset,
counted-once, missing-data policies, pending stamps. No servers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from apps.control.breach import (
    BreachState,
    advance,
    samples_needed,
    settled_until,
)

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)
FAR_FUTURE = T0 + timedelta(days=1)  # everything settled


def obs(values, interval_s=60, start=T0):
    return [(start + timedelta(seconds=i * interval_s), v) for i, v in enumerate(values)]


def run(values, *, missing="ignore", state=None, threshold=1.0, comparison=">=", settled=FAR_FUTURE,
        interval_s=60):
    return advance(state or BreachState(), obs(values, interval_s), comparison=comparison,
                   threshold=threshold, missing_data=missing, settled=settled)


# ---------------------------------------------------------------- timing
@pytest.mark.parametrize(
    ("timing", "interval", "needed"),
    [(0, 10, 1), (0, 60, 1), (1, 60, 1), (1, 10, 6), (5, 60, 5), (5, 10, 30), (2, 45, 3), (3, 7, 26),
     (1, 3600, 1)],
)
def test_it_needs_timing_minutes_worth_of_samples(timing, interval, needed):
    assert samples_needed(timing, interval) == needed


@pytest.mark.parametrize("interval", [10, 60])
@pytest.mark.parametrize("timing", [0, 1, 3])
def test_it_reaches_needed_exactly_after_timing_worth_of_breaching_samples(timing, interval):
    needed = samples_needed(timing, interval)
    state = BreachState()
    reached_at = None
    for i, (stamp, value) in enumerate(obs([5.0] * 50, interval)):
        state = advance(state, [(stamp, value)], comparison=">=", threshold=1.0, missing_data="ignore",
                        settled=FAR_FUTURE)
        if reached_at is None and state.count >= needed:
            reached_at = i + 1
    assert reached_at == needed
    # The samples cover the timing, and one fewer would not (0 minutes: one sample).
    assert needed * interval >= timing * 60
    assert needed == 1 or (needed - 1) * interval < timing * 60


def test_it_rejects_bad_timing_and_interval():
    with pytest.raises(ValueError, match="interval_s"):
        samples_needed(1, 0)
    with pytest.raises(ValueError, match="timing_minutes"):
        samples_needed(-1, 60)


# ---------------------------------------------------------------- counting
def test_it_counts_consecutive_breaches_and_resets_on_a_non_breaching_sample():
    assert run([2, 2, 2]).count == 3
    assert run([2, 2, 0.5]).count == 0
    assert run([2, 0.5, 2, 2]).count == 2
    assert run([2, 2, 0.5]).last_stamp == T0 + timedelta(minutes=2)


@pytest.mark.parametrize(
    ("comparison", "value", "breach"),
    [(">=", 1.0, True), (">=", 0.99, False), (">", 1.0, False), (">", 1.01, True),
     ("<=", 1.0, True), ("<=", 1.01, False), ("<", 1.0, False), ("<", 0.99, True)],
)
def test_it_applies_the_counters_comparison(comparison, value, breach):
    assert run([value], comparison=comparison).count == (1 if breach else 0)


def test_each_sample_is_counted_once_however_often_it_is_evaluated():
    first = run([2, 2])
    again = advance(first, obs([2, 2]), comparison=">=", threshold=1.0, missing_data="breaching",
                    settled=FAR_FUTURE)
    assert again == first
    # Overlapping windows: only the new stamp counts.
    more = advance(first, obs([2, 2, 2]), comparison=">=", threshold=1.0, missing_data="ignore",
                   settled=FAR_FUTURE)
    assert (more.count, more.last_stamp) == (3, T0 + timedelta(minutes=2))


def test_it_keeps_the_firing_mark():
    state = BreachState(2, T0 - timedelta(minutes=1), fired=123)
    assert run([2], state=state).fired == 123
    assert state.reset(456) == BreachState(0, state.last_stamp, 456)


# ---------------------------------------------------------------- missing data
@pytest.mark.parametrize(
    ("policy", "expected"),
    [("ignore", 3), ("breaching", 4), ("not_breaching", 1)],
)
def test_a_missing_sample_follows_the_policy(policy, expected):
    # breach, breach, missing, breach
    assert run([2, 2, None, 2], missing=policy).count == expected


def test_missing_samples_after_counting_began():
    counting = BreachState(0, T0 - timedelta(minutes=1))
    assert run([None, None], missing="ignore", state=counting).count == 0
    assert run([None, None], missing="ignore", state=counting).last_stamp == T0 + timedelta(minutes=1)
    assert run([None, None], missing="breaching", state=counting).count == 2
    assert run([2, None, None], missing="not_breaching").count == 0
    assert run([2, None, None], missing="ignore").count == 1


def test_bad_policy_is_refused():
    with pytest.raises(ValueError):
        run([None], missing="sometimes")


def test_an_unsettled_absent_sample_is_pending_and_counted_when_it_arrives():
    # Stamps 0, 1, 2; stamp 2 not settled yet and absent.
    settled = T0 + timedelta(minutes=1)
    state = run([2, 2, None], missing="not_breaching", settled=settled)
    assert (state.count, state.last_stamp) == (2, T0 + timedelta(minutes=1))
    # Later the sample for stamp 2 arrives, with a new one for stamp 3.
    state = advance(state, obs([2, 2, 2, 2]), comparison=">=", threshold=1.0,
                    missing_data="not_breaching", settled=settled)
    assert (state.count, state.last_stamp) == (4, T0 + timedelta(minutes=3))


def test_counting_stops_at_the_first_pending_stamp_even_if_newer_ones_are_present():
    settled = T0  # only stamp 0 settled
    state = run([2, None, 0.5], missing="not_breaching", settled=settled)
    # Stamp 1 pending: stamp 2's non-breaching sample is not counted yet.
    assert (state.count, state.last_stamp) == (1, T0)


def test_settled_until_is_one_interval_plus_grace_back():
    now = T0 + timedelta(seconds=100)
    assert settled_until(now, 10, grace_s=5) == T0 + timedelta(seconds=85)
    # A stamp becomes missing only after its whole interval and the grace.
    stamp = T0
    assert stamp <= settled_until(T0 + timedelta(seconds=65), 60, grace_s=5)
    assert not stamp <= settled_until(T0 + timedelta(seconds=64), 60, grace_s=5)


def test_unchanged_state_is_returned_as_is():
    state = run([2])
    assert advance(state, [], comparison=">=", threshold=1.0, missing_data="ignore",
                   settled=FAR_FUTURE) is state


def test_absent_samples_before_counting_began_are_the_unknown_past_not_missing():
    # A new trigger (or a lost state): its first window reaches back before any
    # sample; under "breaching" those stamps must not fire it.
    state = run([None, None, None, 2], missing="breaching")
    assert (state.count, state.last_stamp) == (1, T0 + timedelta(minutes=3))
    # Nothing present at all: counting starts at the newest settled stamp...
    state = run([None, None], missing="breaching")
    assert (state.count, state.last_stamp) == (0, T0 + timedelta(minutes=1))
    # ...and from then on a missing sample follows the policy.
    later = advance(state, obs([None, None, None]), comparison=">=", threshold=1.0,
                    missing_data="breaching", settled=FAR_FUTURE)
    assert later.count == 1
    # After the first present sample, missing samples count in the same call.
    assert run([None, 2, None], missing="breaching").count == 2
    assert run([None, 2, None], missing="not_breaching").count == 0
