"""Breach state encoding, rebuilding after a lost state, aggregation and value
parsing (apps/control/breach.py). No servers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from apps.control.breach import (
    LOOKBACK_EXTRA,
    BreachState,
    aggregate,
    decode_states,
    encode_states,
    fired_mark,
    parse_value,
    reading_start,
)

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------- encoding
def test_states_round_trip_per_trigger():
    states = {
        7: BreachState(3, T0, 0),
        12: BreachState(0, None, fired_mark(T0 + timedelta(seconds=1, microseconds=5))),
    }
    raw = encode_states(states)
    assert raw == f"7=3:20261123120000:0;12=0:-:{fired_mark(T0) + 1_000_005}"
    assert decode_states(raw) == states
    assert decode_states(raw.encode()) == states


@pytest.mark.parametrize("raw", [None, "", b"", "garbage", "7=3:2026:0", "7=x:-:0", "7=-1:-:0",
                                 b"\xff\xfe", "7=3:20261123120000"])
def test_absent_or_malformed_state_is_no_state(raw):
    assert decode_states(raw) == {}


def test_fired_mark_is_microseconds_and_zero_for_never():
    assert fired_mark(None) == 0
    a = T0
    b = T0 + timedelta(microseconds=1)
    assert fired_mark(b) - fired_mark(a) == 1


# ---------------------------------------------------------------- where counting resumes
def start(state, *, needed=3, fired=None, newest=T0, interval=60):
    return reading_start(state, newest=newest, interval_s=interval, needed=needed, last_fired_at=fired)


def test_a_recent_state_resumes_after_its_last_stamp():
    state = BreachState(2, T0 - timedelta(minutes=1), 0)
    begin, resumed = start(state)
    assert resumed is state
    assert begin == T0 - timedelta(minutes=1) + timedelta(seconds=1)


def test_a_lost_state_is_rebuilt_from_the_last_needed_plus_extra_stamps():
    begin, resumed = start(None, needed=3)
    assert resumed == BreachState(0, None, 0)
    assert begin == T0 - timedelta(minutes=3 + LOOKBACK_EXTRA - 1)


def test_a_state_older_than_the_look_back_is_rebuilt():
    old = BreachState(2, T0 - timedelta(hours=1), 0)
    begin, resumed = start(old, needed=3)
    assert resumed == BreachState(0, None, 0)
    assert begin == T0 - timedelta(minutes=3 + LOOKBACK_EXTRA - 1)


def test_a_rebuilt_state_never_counts_samples_a_firing_used():
    fired = T0 - timedelta(minutes=1, seconds=30)
    begin, resumed = start(None, needed=5, fired=fired)
    assert begin == fired + timedelta(seconds=1)
    assert resumed.fired == fired_mark(fired)


def test_a_state_written_before_the_triggers_last_firing_is_reset():
    fired = T0 - timedelta(seconds=30)
    stale = BreachState(9, T0 - timedelta(minutes=1), 0)
    begin, resumed = start(stale, fired=fired)
    assert resumed == BreachState(0, stale.last_stamp, fired_mark(fired))
    assert begin == stale.last_stamp + timedelta(seconds=1)


def test_a_state_newer_than_our_view_of_the_trigger_is_kept():
    # Another evaluator fired and reset after we loaded the trigger.
    fired = T0 - timedelta(seconds=30)
    state = BreachState(0, T0 - timedelta(minutes=1), fired_mark(fired))
    _, resumed = start(state, fired=None)
    assert resumed is state


# ---------------------------------------------------------------- aggregation
def test_average_and_maximum_of_the_nodes_present():
    assert aggregate([1.0, 2.0, 6.0], "avg", settled=True) == 3.0
    assert aggregate([1.0, 2.0, 6.0], "max", settled=True) == 6.0
    assert aggregate([1.0, None, 3.0], "avg", settled=True) == 2.0
    assert aggregate([None, None], "max", settled=True) is None
    assert aggregate([], "avg", settled=True) is None


def test_a_partial_unsettled_stamp_is_pending():
    assert aggregate([1.0, None], "avg", settled=False) is None
    assert aggregate([1.0, 3.0], "avg", settled=False) == 2.0


def test_any_node_is_not_an_aggregate():
    with pytest.raises(KeyError):
        aggregate([1.0], "any", settled=True)


# ---------------------------------------------------------------- values
@pytest.mark.parametrize(
    ("raw", "value"),
    [("1.5", 1.5), (b"2", 2.0), (3, 3.0), (0.25, 0.25), (" 4 ", 4.0), ("nan", None), ("inf", None),
     ("abc", None), (b"\xff", None), (None, None), (True, None)],
)
def test_stored_values_parse_or_count_as_missing(raw, value):
    assert parse_value(raw) == value
