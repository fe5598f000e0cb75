"""Long-range graphs in a real browser (Chromium through Playwright): the
30-day graph is drawn from the persisted summaries as the nodes' average
with a min–max band, at hourly resolution; a custom range beyond memcached's
retention (and beyond the raw series API's 31 days) is drawn too, and so is
a short one older than memcached's retention; a range straddling summaries
and samples still only in memcached is drawn without a hole."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.control.models import Cluster, Node
from apps.history import ingest
from apps.monitoring.ssh.models import SSHCounter
from tests.web.test_browser_console import _login, chromium, page  # noqa: F401 - the browser fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]
HOUR = 3600


@pytest.fixture
def month(transactional_db):
    """Three nodes with 35 days of summaries: a sample every 10 minutes,
    node i reading 10*i + (hours since the start mod 24)."""
    cluster = Cluster.objects.create(name="month")
    nodes = [Node.objects.create(cluster=cluster, name=f"m{i}", address=f"127.0.0.{i + 1}") for i in range(3)]
    counter = SSHCounter.objects.create(cluster=cluster, name="load", command="cat /proc/loadavg", threshold=50,
                                        interval_s=10)
    now = int(datetime.now(UTC).timestamp())
    first = (now - 35 * 86400) // HOUR * HOUR
    rows = [("ssh", node.pk, 0, counter.pk, t, float(10 * i + (t - first) // HOUR % 24))
            for i, node in enumerate(nodes) for t in range(first, now, 600)]
    ingest.apply_rows(rows, batch_id="month")
    return counter, first


def test_the_30_day_graph_is_drawn_from_hourly_summaries_with_a_band(page, month, operator_user):  # noqa: F811
    counter, first = month
    _login(page, "oscar", "oscar-pw-1234")
    page.goto(f"/graphs/ssh/{counter.pk}/")
    page.click('#ranges [data-range="30d"]')
    page.wait_for_function("() => document.querySelector('[data-graph]').dataset.resolution === '1h'")
    assert "range=30d" in page.url
    data = page.evaluate("() => window.pyscalerGraphs[0].plot.data")
    stamps, low, centre, high = data[0], data[1], data[2], data[3]
    assert 700 <= len(stamps) <= 1500 and all(b - a == HOUR for a, b in zip(stamps, stamps[1:]))
    i = stamps.index(first + 10 * 86400 + 5 * HOUR)  # a whole hour: node i read 10*i + 5
    assert (low[i], centre[i], high[i]) == (5.0, 15.0, 25.0)
    labels = page.evaluate("() => window.pyscalerGraphs[0].plot.series.map(s => s.label)")
    assert "average" in labels and "min of 3 nodes" in labels
    assert "from 1h summaries" in page.text_content("#graph-status")
    page.screenshot(path="test-artifacts/screenshots/history-30d.png")

    # A custom 34-day range: beyond memcached and the series API's 31 days.
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=34)
    page.goto(f"/graphs/ssh/{counter.pk}/?from={start:%Y-%m-%dT%H:%M:%SZ}&to={end:%Y-%m-%dT%H:%M:%SZ}")
    page.wait_for_function("() => document.querySelector('[data-graph]').dataset.resolution === '1h'")
    assert "cannot show" not in page.text_content("#graph-status")
    assert int(page.get_attribute("[data-graph]", "data-points")) > 3 * 700


def test_the_backtest_button_shows_the_firings_of_the_last_7_days(page, month, admin_user_in_group):  # noqa: F811
    from apps.control.models import Trigger

    counter, _ = month
    SSHCounter.objects.filter(pk=counter.pk).update(threshold=40)  # node m2 reaches it 4 hours a day
    trigger = Trigger.objects.create(cluster=counter.cluster, name="evening", timing_minutes=5, cooldown_s=4 * 3600)
    trigger.ssh_counters.add(counter)
    _login(page, "alice", "alice-pw-1234")
    page.goto(f"/admin/control/trigger/{trigger.pk}/change/")
    page.click("text=Backtest")
    page.wait_for_selector("#backtest-summary")
    assert page.text_content("#backtest-resolution") == "1m"
    fired = page.eval_on_selector_all("#backtest-firings tr.fired", "rows => rows.length")
    assert 6 <= fired <= 8  # one evening a day over 7 days
    assert page.eval_on_selector_all(".firing-mark", "marks => marks.length") == fired
    assert "m2" in page.text_content("#backtest-firings")
    page.screenshot(path="test-artifacts/screenshots/history-backtest.png")


def test_the_policy_backtest_page_charts_the_simulated_size(page, month, admin_user_in_group):  # noqa: F811
    """The cluster's average runs 10..33 through each day: a policy holding
    it at 20 scales out in the evening and back in at night."""
    from tests.factories import make_policy

    counter, _ = month
    counter.cluster.max_size, counter.cluster.max_step_size = 10, 10
    counter.cluster.save()
    policy = make_policy(counter.cluster, [(counter, 20.0)], name="hold-at-20")
    _login(page, "alice", "alice-pw-1234")
    page.goto(f"/admin/control/scalingpolicy/{policy.pk}/change/")
    page.click("text=Backtest")
    page.wait_for_selector("#backtest-summary")
    assert page.text_content("#backtest-resolution") == "1m"
    outs = page.eval_on_selector_all("#backtest-scalings tr.out", "rows => rows.length")
    ins = page.eval_on_selector_all("#backtest-scalings tr.in", "rows => rows.length")
    assert outs >= 7 and ins >= 7  # at least once each way a day
    box = page.locator("#backtest-sizes polyline.simulated").bounding_box()
    assert box and box["width"] > 500 and box["height"] > 20  # a line drawn across the chart, moving
    page.screenshot(path="test-artifacts/screenshots/history-policy-backtest.png", full_page=True)


def test_an_hour_a_week_ago_is_drawn_from_the_summaries(page, month, operator_user, settings):  # noqa: F811
    """Short, but older than memcached's retention: /api/v1/series would find
    nothing there. The page's rule agrees with history_graph.from_summaries."""
    from apps.web.api.history_graph import from_summaries

    counter, _ = month
    _login(page, "oscar", "oscar-pw-1234")
    now = datetime.now(UTC).replace(microsecond=0)
    start = (now - timedelta(days=8)).replace(minute=0, second=0)
    end = start + timedelta(hours=1) - timedelta(seconds=1)
    page.goto(f"/graphs/ssh/{counter.pk}/?from={start:%Y-%m-%dT%H:%M:%SZ}&to={end:%Y-%m-%dT%H:%M:%SZ}")
    page.wait_for_function("() => document.querySelector('[data-graph]').dataset.resolution === '1m'")
    assert "from 1m summaries" in page.text_content("#graph-status")
    assert int(page.get_attribute("[data-graph]", "data-points")) == 3 * 6  # a sample every 10 minutes, 3 nodes

    retention = int(settings.SAMPLE_RETENTION_S)
    cases = [(now - timedelta(days=7), timedelta(hours=1)), (now - timedelta(hours=1), timedelta(hours=1)),
             (now - timedelta(hours=25), timedelta(hours=25)), (now - timedelta(days=1), timedelta(days=1)),
             (now - timedelta(seconds=retention + 60), timedelta(hours=2)),
             (now - timedelta(seconds=retention - 60), timedelta(hours=2))]
    for case_start, span in cases:
        case_end = case_start + span
        drawn = page.evaluate(
            "([from, to, now]) => { const g = window.pyscalerGraphs[0], kept = g.query;"
            " g.query = {from: from, to: to}; const r = g.fromHistory(now); g.query = kept; return r; }",
            [case_start.isoformat(), case_end.isoformat(), now.timestamp() * 1000])
        assert drawn == from_summaries(case_start, case_end, now, retention), (case_start, span)
        naive = page.evaluate(  # no offset: UTC, as the server reads it, whatever the browser's zone
            "([from, to, now]) => { const g = window.pyscalerGraphs[0], kept = g.query;"
            " g.query = {from: from, to: to}; const r = g.fromHistory(now); g.query = kept; return r; }",
            [f"{case_start:%Y-%m-%dT%H:%M:%S}", f"{case_end:%Y-%m-%d %H:%M:%S}", now.timestamp() * 1000])
        assert naive == drawn, (case_start, span)


@pytest.fixture
def seam(transactional_db, memcached_clean):
    """Summaries up to two hours ago, then only samples in memcached (a
    summarise task lagging): a sample every 10 s on two nodes."""
    from apps.monitoring import sources
    from apps.monitoring.samples import Sample
    from apps.monitoring.store import SampleStore

    cluster = Cluster.objects.create(name="seam")
    nodes = [Node.objects.create(cluster=cluster, name=f"s{i}", address=f"127.0.0.{i + 1}") for i in range(2)]
    counter = SSHCounter.objects.create(cluster=cluster, name="load", command="cat /proc/loadavg", threshold=50,
                                        interval_s=10)
    now = int(datetime.now(UTC).timestamp())
    boundary = now // HOUR * HOUR - 2 * HOUR
    stamps = range((now - 30 * HOUR) // 60 * 60, now // 60 * 60 - 60, 10)
    ingest.apply_rows([("ssh", n.pk, 0, counter.pk, t, float(i)) for i, n in enumerate(nodes)
                       for t in stamps if t < boundary], batch_id="seam")
    SampleStore(memcached_clean, retention_s=7200).put_many(
        Sample(sources.get("ssh").series(counter, n.pk), datetime.fromtimestamp(t, UTC), float(i))
        for i, n in enumerate(nodes) for t in stamps if t >= boundary)
    return counter, boundary, now


def test_a_range_straddling_summaries_and_raw_samples_has_no_hole(page, seam, operator_user):  # noqa: F811
    counter, boundary, now = seam
    _login(page, "oscar", "oscar-pw-1234")
    start = datetime.fromtimestamp(now - 26 * HOUR, UTC)
    page.goto(f"/graphs/ssh/{counter.pk}/?from={start:%Y-%m-%dT%H:%M:%SZ}")
    page.wait_for_function("() => document.querySelector('[data-graph]').dataset.resolution === '1m'")
    assert int(page.get_attribute("[data-graph]", "data-raw-periods")) > 0, page.text_content("#graph-status")
    assert "from raw samples" in page.text_content("#graph-status")
    stamps, low, centre, high = page.evaluate("() => window.pyscalerGraphs[0].plot.data.slice(0, 4)")
    step = stamps[1] - stamps[0]
    inside = [i for i, s in enumerate(stamps) if s >= now - 26 * HOUR + step and s + step <= now // 60 * 60 - 60]
    assert inside and [i for i in inside if centre[i] is None] == [], "no hole across the boundary"
    assert all((low[i], centre[i], high[i]) == (0.0, 0.5, 1.0) for i in inside)
    assert any(stamps[i] >= boundary for i in inside) and any(stamps[i] < boundary for i in inside)
    page.screenshot(path="test-artifacts/screenshots/history-seam.png")
