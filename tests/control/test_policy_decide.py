"""The pure policy decision code (apps/control/policy): no database, no store."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from apps.control.policy.decide import decide
from apps.control.policy.inputs import STEP_BANDS, Band, Inputs, PolicyConfig, Reading, Schedule, overlapping
from apps.control.policy.schedule import Window, cron_error, in_force
from apps.control.policy.words import decision_summary

NOW = datetime(2026, 11, 30, 14, 0, tzinfo=timezone.utc)
CFG = PolicyConfig(tolerance=0.1, scale_in_window_s=300, scale_out_cooldown_s=60, scale_in_cooldown_s=300,
                   max_step=10, min_size=1, max_size=20, scale_out_window_s=0)


def cpu(value, target=50.0, name="cpu"):
    return Reading(name, value, ("n1",), target=target)


def guards(d):
    return [e.guard for e in d.effects]


def test_it_tracks_the_target():
    d = decide(CFG, Inputs(NOW, in_service=4, readings=(cpu(80),)))
    assert (d.raw_desired, d.desired, d.direction) == (7, 7, "out")  # ceil(4 × 80 / 50) = 7


def test_it_keeps_the_size_within_the_tolerance_band():
    assert decide(CFG, Inputs(NOW, in_service=4, readings=(cpu(54),))).desired == 4
    assert decide(CFG, Inputs(NOW, in_service=4, readings=(cpu(56),))).desired == 5


def test_an_exact_ratio_does_not_round_up():
    d = decide(PolicyConfig(tolerance=0, max_step=10, max_size=20), Inputs(NOW, 3, readings=(cpu(70, 70),)))
    assert d.desired == 3


def test_it_scales_in_when_every_counter_agrees():
    d = decide(CFG, Inputs(NOW, in_service=6, readings=(cpu(20), cpu(10, name="heap"))))
    assert d.desired == 3  # cpu wants ceil(6 × 0.4) = 3, heap 2: the larger wins


def test_the_largest_scale_out_wins():
    d = decide(CFG, Inputs(NOW, in_service=4, readings=(cpu(20), cpu(100, name="heap"))))
    assert d.desired == 8


def test_a_missing_counter_blocks_scale_in_but_not_scale_out():
    gone = Reading("heap", None, error="no sample")
    held = decide(CFG, Inputs(NOW, in_service=6, readings=(cpu(20), gone)))
    assert held.desired == 6 and held.effects[0].guard == "missing data" and held.effects[0].blocked
    assert "heap (no sample)" in held.effects[0].note
    out = decide(CFG, Inputs(NOW, in_service=4, readings=(cpu(80), gone)))
    assert out.desired == 7


def test_no_data_at_all_holds():
    d = decide(CFG, Inputs(NOW, in_service=4, readings=(Reading("cpu", None, target=50),)))
    assert d.desired == 4


def test_step_bands():
    bands = (Band(70, 85, 1), Band(85, None, 3), Band(None, 30, -1))
    cfg = PolicyConfig(kind=STEP_BANDS, max_step=10, max_size=20, scale_in_window_s=0, scale_in_cooldown_s=0)
    for value, size in ((75, 5), (90, 7), (50, 4), (20, 3)):
        assert decide(cfg, Inputs(NOW, 4, readings=(Reading("cpu", value, bands=bands),))).desired == size


def test_overlapping_bands_are_found():
    assert overlapping([Band(70, 85, 1), Band(80, None, 3)]) == (Band(70, 85, 1), Band(80, None, 3))
    assert overlapping([Band(70, 85, 1), Band(85, None, 3), Band(None, 30, -1)]) is None


def test_scale_in_stabilization_keeps_the_highest_recommendation_of_the_window():
    recs = ((NOW - timedelta(seconds=400), 9), (NOW - timedelta(seconds=200), 7),
            (NOW - timedelta(seconds=60), 6))
    d = decide(CFG, Inputs(NOW, in_service=7, readings=(cpu(20),), recommendations=recs))
    effect = d.effects[-1]
    assert d.desired == 7 and effect.guard == "stabilization"
    assert effect.until == NOW - timedelta(seconds=200) + timedelta(seconds=300)
    assert decision_summary(d) == "wanted 3, held at 7: scale-in stabilization: 7 recommended within 300 s until 14:01"
    partly = decide(CFG, Inputs(NOW, in_service=8, readings=(cpu(20),), recommendations=recs))
    assert partly.desired == 7


def test_warming_nodes_count_as_capacity_so_a_spike_does_not_launch_again():
    # 3 in service at 60 % of a 50 % target want 4; one node already warms up.
    d = decide(CFG, Inputs(NOW, in_service=3, warming=1, readings=(cpu(60),)))
    assert d.desired == 4 and d.direction == "hold"
    assert any(e.guard == "warm-up" and e.blocked for e in d.effects)
    # With launches in flight too.
    assert decide(CFG, Inputs(NOW, in_service=3, in_flight=1, readings=(cpu(60),))).direction == "hold"
    # The need beyond the warming capacity is still met.
    assert decide(CFG, Inputs(NOW, in_service=3, warming=1, readings=(cpu(100),))).desired == 6


def test_no_scale_in_while_nodes_warm_up():
    d = decide(CFG, Inputs(NOW, in_service=4, warming=1, readings=(cpu(10),)))
    assert d.desired == 5 and "scale-in waits" in d.effects[-1].note


def test_flap_check_scales_in_fewer_or_none():
    cfg = PolicyConfig(tolerance=0.1, max_step=10, max_size=20, scale_in_window_s=0, scale_in_cooldown_s=0)
    # 4 nodes at 30 % of 50: target tracking wants ceil(2.4) = 3 (→ 40 %, fine).
    assert decide(cfg, Inputs(NOW, 4, readings=(cpu(30),))).desired == 3
    # Step bands: < 30 → −2, but on 2 nodes 28 % becomes 56 %, in the +1 band: only one goes (→ 37 %).
    bands = (Band(None, 30, -2), Band(50, None, 1))
    steps = PolicyConfig(kind=STEP_BANDS, max_step=10, max_size=20, scale_in_window_s=0, scale_in_cooldown_s=0)
    d = decide(steps, Inputs(NOW, 4, readings=(Reading("cpu", 28, bands=bands),)))
    assert d.desired == 3 and d.effects[-1].guard == "flap check"
    # 2 nodes at 28 %: removing one gives 56 %: none goes.
    none = decide(steps, Inputs(NOW, 2, readings=(Reading("cpu", 28, bands=(Band(None, 30, -1), Band(50, None, 1))),)))
    assert none.desired == 2 and "would ask for a scale-out" in none.effects[-1].note


def test_cooldowns_are_per_direction():
    recent = NOW - timedelta(seconds=30)
    out = decide(CFG, Inputs(NOW, 4, readings=(cpu(80),), last_scale_in_at=recent))
    assert out.desired == 7  # a scale-in's cooldown never holds a scale-out
    held = decide(CFG, Inputs(NOW, 4, readings=(cpu(80),), last_scale_out_at=recent))
    assert held.desired == 4 and held.effects[-1].until == recent + timedelta(seconds=60)
    cfg = PolicyConfig(scale_in_window_s=0, scale_in_cooldown_s=300, max_step=10, max_size=20)
    assert decide(cfg, Inputs(NOW, 6, readings=(cpu(20),), last_scale_out_at=recent)).desired == 6


def test_bounds_and_step_cap():
    cfg = PolicyConfig(max_step=2, min_size=2, max_size=6, scale_in_window_s=0, scale_in_cooldown_s=0)
    assert decide(cfg, Inputs(NOW, 4, readings=(cpu(200),))).desired == 6
    assert [e.guard for e in decide(cfg, Inputs(NOW, 4, readings=(cpu(200),))).effects] == ["bounds"]
    assert decide(cfg, Inputs(NOW, 2, readings=(cpu(200),))).desired == 4
    assert decide(cfg, Inputs(NOW, 3, readings=(cpu(1),))).desired == 2


def test_a_schedule_raises_the_minimum():
    sched = Schedule("office hours", min_size=10, until=NOW + timedelta(hours=6))
    d = decide(CFG, Inputs(NOW, 4, readings=(cpu(50),), schedule=sched))
    assert d.desired == 10 and guards(d) == ["schedule"]
    assert decide(CFG, Inputs(NOW, 4, readings=(cpu(50),), schedule=Schedule("night", max_size=2))).desired == 2
    assert decide(CFG, Inputs(NOW, 4, readings=(cpu(50),), schedule=Schedule("x", desired_size=8))).desired == 8


def test_schedule_windows_with_cron():
    office = Window("office", "0 8 * * 1-5", 720, min_size=10)
    monday_noon = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    assert office.in_force(monday_noon).until == datetime(2026, 11, 30, 20, 0, tzinfo=timezone.utc)
    assert office.in_force(datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)) is not None
    assert office.in_force(datetime(2026, 11, 30, 20, 0, tzinfo=timezone.utc)) is None
    assert office.in_force(datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)) is None  # Sunday
    both = in_force([office, Window("peak", "0 11 * * *", 120, min_size=12, max_size=15)], monday_noon)
    assert (both.min_size, both.max_size) == (12, 15)
    assert cron_error("0 8 * *") and cron_error("0 25 * * *") and not cron_error("0 8 * * 1-5")


@pytest.mark.parametrize("current,raw,desired,expected", [
    (5, 5, 5, "at 5, as wanted"),
    (5, 7, 7, "wanted 7, scaling out 5 → 7"),
    (5, 3, 4, "wanted 3, scaling in 5 → 4"),
])
def test_words(current, raw, desired, expected):
    from apps.control.policy.words import summary

    assert summary(current, raw, desired, []) == expected


def test_nodes_being_removed_are_not_capacity_and_hold_further_scale_in():
    d = decide(CFG, Inputs(NOW, in_service=4, removing=1, readings=(cpu(10),)))
    assert d.current == 3 and d.desired == 3 and "1 being removed" in d.effects[-1].note


def test_a_scaling_execution_under_way_holds_the_next_change():
    d = decide(CFG, Inputs(NOW, in_service=3, in_flight=1, readings=(cpu(100),), scaling_execution=12))
    assert d.desired == 4 and d.effects[-1].guard == "cooldown" and "#12 is still changing" in d.effects[-1].note
