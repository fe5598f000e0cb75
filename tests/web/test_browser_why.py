"""An execution's "why" in a real browser (Debian's Chromium via Playwright,
the fixtures of test_browser_console.py): the words, and the uPlot chart of
the breaching values per node against the threshold, for a firing by the real
evaluator on samples in the real memcached.

Screenshot: test-artifacts/screenshots/execution-why.png."""
from __future__ import annotations

from functools import partial

import pytest

from apps.control.evaluator import Evaluator
from apps.control.executions import fire_trigger
from apps.control.models import Execution
from tests.evaluatorkit import at, put
from tests.fixtures.console import make_world
from tests.web.test_browser_console import SCREENSHOTS, _login, chromium, page  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def fired(transactional_db, sample_store, settings) -> Execution:
    """high-load (load1 ≥ 1.5 for 1 min every 10 s) fired by the evaluator on
    web-1's samples; its step is left pending (no worker here), so the page
    stays live and re-fetches its words while the chart stays drawn."""
    settings.TIME_ZONE = "UTC"
    world = make_world()
    ev = Evaluator(store=sample_store, fire=partial(fire_trigger, enqueue=False))
    for k in range(6):
        put(sample_store, world.nodes[0], world.load, k, 1.6 + k / 10)
        put(sample_store, world.nodes[1], world.load, k, 0.4)
        ev.run(at(k, seconds=11, interval_s=10))
    return Execution.objects.get(trigger=world.trigger)


def test_the_execution_page_says_why_and_draws_the_values_against_the_threshold(page, fired, operator_user):  # noqa: F811
    _login(page, "oscar", "oscar-pw-1234")
    page.goto(f"/executions/{fired.pk}/")
    why = page.text_content("#why")
    assert "load1 on node web-1 was ≥ 1.5 for 6 consecutive samples (1.6, 1.7, 1.8, 1.9, …, 2.1)" in why
    assert "fired by the trigger high-load" in why and "{" not in why

    page.wait_for_function("() => (window.pyscalerThresholdCharts || []).length === 1")
    drawn = page.evaluate("""() => { const c = window.pyscalerThresholdCharts[0];
        const canvas = document.querySelector('#why-charts canvas');
        return {labels: c.plot.series.map(s => s.label), data: c.plot.data,
                canvas: canvas ? [canvas.width, canvas.height] : null,
                caption: document.querySelector('#why-charts figcaption').textContent}; }""")
    assert drawn["caption"] == "load1 ≥ 1.5"
    assert drawn["labels"][1:] == ["web-1", "threshold (≥ 1.5)"]
    xs, web1, threshold = drawn["data"]
    assert len(xs) == 6 and set(threshold) == {1.5}
    assert web1 == pytest.approx([1.6, 1.7, 1.8, 1.9, 2.0, 2.1])
    assert drawn["canvas"] and min(drawn["canvas"]) > 0
    # Something is painted: the canvas is not blank.
    painted = page.evaluate("""() => { const c = document.querySelector('#why-charts canvas');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i]) n++; return n; }""")
    assert painted > 100

    # The live part refreshes (the step is pending); the words come back, the chart stays.
    page.evaluate("document.querySelector('#why').dataset.old = '1'")
    page.wait_for_function("() => !document.querySelector('#why').dataset.old", timeout=10_000)
    assert "fired by the trigger high-load" in page.text_content("#why")
    assert page.evaluate("document.querySelectorAll('#why-charts canvas').length") >= 1
    page.screenshot(path=str(SCREENSHOTS / "execution-why.png"), full_page=True)
