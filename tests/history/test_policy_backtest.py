"""manage.py backtest --policy: a scaling policy replayed over the 1-minute
summaries with the policy evaluator's own decision code, its decisions taking
effect on a simulated cluster (recorded load spread over the simulated
nodes)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.core.management import CommandError, call_command

from apps.history import ingest
from apps.history.policy_backtest import backtest_policy
from tests.factories import make_cluster, make_policy, ssh_counter

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]

NOW = datetime.now(timezone.utc)
T0 = int((NOW - timedelta(minutes=110)).timestamp()) // 60 * 60


def _load(minute: int) -> float:
    """Per node on the 4 recorded nodes: 50, doubled for half an hour."""
    return 100.0 if 40 <= minute < 70 else 50.0


@pytest.fixture
def recorded():
    cluster, nodes = make_cluster("web", nodes=4, max_size=10, max_step_size=10)
    cpu = ssh_counter(cluster, "cpu", interval_s=60)
    policy = make_policy(cluster, [(cpu, 50.0)], name="size-by-cpu")
    ingest.apply_rows([("ssh", node.pk, 0, cpu.pk, T0 + 60 * m + 5, _load(m)) for m in range(100) for node in nodes])
    return policy


def test_it_scales_out_with_the_load_and_back_in_when_it_falls(recorded):
    report = backtest_policy(recorded.pk, NOW - timedelta(hours=2), NOW)
    assert report.resolution == "1m" and report.evaluations == 100 and report.start_size == 4
    moves = [(s["direction"], s["current"], s["desired"],
              (datetime.fromisoformat(s["time"]) - datetime.fromtimestamp(T0, timezone.utc)).total_seconds() // 60)
             for s in report.scalings]
    # Minute 40's doubled load, seen at its end: 4 -> 8; then, on 8 nodes, the
    # same load reads 50 (held); minute 70's return to 50 reads 25: 8 -> 4.
    assert moves == [("out", 4, 8, 41), ("in", 8, 4, 71)]
    assert report.scalings[0]["counters"][0]["value"] == 100.0
    assert {(n, size) for _, n, size in report.sizes[45:65]} == {(4, 8)}


def test_cooldowns_and_windows_of_the_policy_hold_the_replay(recorded):
    recorded.scale_in_window_s = 600  # stabilization: scale in only to the highest recommendation of 10 min
    recorded.save()
    report = backtest_policy(recorded.pk, NOW - timedelta(hours=2), NOW)
    times = [(s["direction"], (datetime.fromisoformat(s["time"]).timestamp() - T0) // 60) for s in report.scalings]
    assert times == [("out", 41), ("in", 80)]  # once the last 10 minutes all recommend 4
    assert report.blocked["stabilization"] == 9  # minutes 71-79 wanted 4 and were held at 8


def test_the_command_prints_the_scalings_and_refuses_bad_input(recorded, capsys):
    call_command("backtest", "--policy", "size-by-cpu", "--days", "1", "--start-size", "8")
    out = capsys.readouterr().out
    assert "starting at 8 node(s)" in out and "SCALE IN" in out and "rescaled" in out
    assert "Minutes with data: 100," in out
    with pytest.raises(CommandError, match="policy: no scaling policy 'nope'"):
        call_command("backtest", "--policy", "nope")
    with pytest.raises(CommandError, match="--policy: give a policy or a trigger"):
        call_command("backtest", "1", "--policy", "size-by-cpu")
    with pytest.raises(CommandError, match="--samplelog: a policy replays the 1-minute summaries only"):
        call_command("backtest", "--policy", "size-by-cpu", "--samplelog", "/nonexistent")
    with pytest.raises(CommandError, match="--days must be at most 30 for a policy"):
        call_command("backtest", "--policy", "size-by-cpu", "--days", "60")
    with pytest.raises(CommandError, match="--start-size must be 0 or more"):
        call_command("backtest", "--policy", "size-by-cpu", "--start-size", "-1")
    with pytest.raises(CommandError, match="trigger: give a trigger"):
        call_command("backtest")


def test_the_policy_admin_page_has_a_backtest_button_and_page(recorded, admin_client_in_group, client):
    page = admin_client_in_group.get(f"/admin/control/scalingpolicy/{recorded.pk}/change/").content.decode()
    assert f'href="/admin/history/backtest/policy/{recorded.pk}/?days=7"' in page and ">Backtest<" in page
    answer = admin_client_in_group.get(f"/admin/history/backtest/policy/{recorded.pk}/", {"days": "1"})
    body = answer.content.decode()
    assert answer.status_code == 200 and 'id="backtest-resolution">1m<' in body
    assert body.count('<tr class="out">') == 1 and body.count('<tr class="in">') == 1 and "4 → 8" in body
    assert 'class="simulated"' in body and 'class="recorded"' in body
    for params, error in [({"days": "31"}, "days must be at most 30 for a policy"),
                          ({"start_size": "x"}, "start_size: &#x27;x&#x27; is not a whole number")]:
        bad = admin_client_in_group.get(f"/admin/history/backtest/policy/{recorded.pk}/", params)
        assert bad.status_code == 400 and error in bad.content.decode()
    client.logout()
    assert client.get(f"/admin/history/backtest/policy/{recorded.pk}/").status_code == 302  # to the login page
