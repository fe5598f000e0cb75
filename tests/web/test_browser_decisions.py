"""The cluster page's scaling timeline in a real browser (Chromium through
Playwright, as test_browser_console.py): decisions the real policy runner
made from samples in the real memcached, in words, and the desired-vs-actual
chart drawn with uPlot."""
from __future__ import annotations

import pytest

from apps.control.models import Node, PolicyDecision
from apps.control.policy_runner import evaluate_policies
from tests.evaluatorkit import at, put
from tests.factories import make_action, make_cluster, make_policy, ssh_counter
from tests.web.test_browser_console import SCREENSHOTS, _login, chromium, page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def scaled(transactional_db, sample_store):
    """A cluster whose policy scaled out once, then was held by its cooldown."""
    cluster, nodes = make_cluster("scaled", nodes=3, max_size=10, max_step_size=5)
    cpu = ssh_counter(cluster, "cpu", interval_s=60)
    tell = make_action(cluster, "local_script", {"script": "true"}, name="tell")
    policy = make_policy(cluster, [(cpu, 50.0)], scale_out=[tell], scale_out_cooldown_s=3600)
    for k, value in ((0, 50), (1, 80), (2, 95)):
        for node in nodes:
            put(sample_store, node, cpu, k, value)
        evaluate_policies(at(k), store=sample_store)
        # The chain "launched" nothing: the executions are history, not capacity.
        policy.executions.update(status="succeeded")
    return cluster, policy


def test_the_timeline_shows_decisions_in_words_and_draws_desired_against_actual(page, scaled,  # noqa: F811
                                                                               operator_user):
    cluster, policy = scaled
    expected = list(PolicyDecision.objects.filter(policy=policy).order_by("created"))
    assert len(expected) == 3
    _login(page, "oscar", "oscar-pw-1234")
    page.goto(f"/clusters/{cluster.name}/")
    rows = page.locator("#decisions tr[data-decision]")
    assert rows.count() == 3
    words = [rows.nth(i).locator(".decision-words").text_content() for i in range(3)]
    assert words[2] == "at 3, as wanted"
    assert words[1] == "wanted 5, scaling out 3 → 5"
    assert words[0].startswith("wanted 6, held at 3: scale-out cooldown until 13:01")
    assert rows.nth(1).locator("a").text_content() == f"#{expected[1].execution_id}"
    page.wait_for_function("() => window.pyscalerTimeline && window.pyscalerTimeline.plot")
    drawn = page.evaluate("() => window.pyscalerTimeline.data")
    assert drawn["desired"] == [d.desired for d in expected for _ in {d.created, d.evaluated_at}]
    assert set(drawn["actual"]) == {Node.objects.filter(cluster=cluster).count()}
    assert page.locator("[data-timeline-chart] canvas").count() == 1
    page.screenshot(path=str(SCREENSHOTS / "decisions.png"), full_page=True)
