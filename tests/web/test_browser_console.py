"""The console in a real browser: Debian's Chromium driven by Playwright,
against a live Django server, a real Celery worker collecting from a real JVM
over JMX, and a real SMTP server.

Screenshots go to test-artifacts/screenshots/ (printed at the end of the run).
"""
from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import pytest
from django.db import connection

from apps.actions.models import Action
from apps.control.models import Cluster, Execution, Node, Trigger, TriggerAction
from apps.monitoring.jmx.models import JVM, JMXCounter
from apps.monitoring.samples import SeriesRef
from devservers.jvm import DEMO_MBEAN
from devservers.util import REPO_ROOT, require_binary

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-features=MediaRouter,OptimizationHints",
    # Every host name but the live server's resolves to nothing: the browser cannot leave loopback.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=localhost;127.0.0.1",
]
UPLOT = REPO_ROOT / "node_modules" / "uplot" / "dist" / "uPlot.iife.min.js"


@pytest.fixture(scope="module")
def chromium(request: pytest.FixtureRequest, django_db_setup) -> Iterator:
    """Debian's Chromium through Playwright (never a downloaded browser).

    Module-scoped on purpose: Playwright's sync API keeps an asyncio loop
    running on this thread while it is open, and Django refuses ORM calls
    under a running loop unless DJANGO_ALLOW_ASYNC_UNSAFE is set. These tests
    touch the ORM only between browser steps, never from inside the loop, so
    they set it — for this module only: the loop and the variable are gone
    before any other test module runs. The test database is set up first.
    """
    executable = require_binary("chromium", "chromium")
    if not UPLOT.exists():
        pytest.fail(f"{UPLOT} is missing: run `make static-deps` (npm ci) to install the console's chart library")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nconsole screenshots: {SCREENSHOTS}")


@pytest.fixture
def page(chromium, live_server, memcached_servers, settings) -> Iterator:
    from apps.monitoring import collection

    # The live server runs in this process: it reads the session's memcached,
    # where the worker writes.
    settings.MEMCACHED_SERVERS = memcached_servers
    collection._store.cache_clear()
    context = chromium.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url,
                                   timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(20_000)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith(live_server.url) and not r.url.startswith("data:") else None)
    yield page
    context.close()
    assert not outside, f"the page tried to load from outside the live server: {outside}"


def _login(page, username: str, password: str) -> None:
    page.goto("/")
    assert "/login/" in page.url  # anonymous visitors land on the login page
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


class Collection:
    """A running collection: this thread plays beat (the dispatch task's body
    every 0.5 s, enqueueing collect tasks to the real worker), another moves
    the JVM's value so the graph has something to show."""

    def __init__(self, jvm) -> None:
        self.jvm = jvm
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._beat, daemon=True),
                        threading.Thread(target=self._wave, daemon=True)]

    def _beat(self) -> None:
        from apps.control.evaluator import evaluate
        from apps.monitoring.tasks import dispatch_collection_task

        try:
            while not self.stop.wait(0.5):
                dispatch_collection_task()
                evaluate()  # the control-queue task's body: breach counts for the trigger
        finally:
            connection.close()

    def _wave(self) -> None:
        step = 0
        while not self.stop.wait(1.0):
            step += 1
            self.jvm.set("Value", round(40 + 25 * math.sin(step / 4), 2))

    def __enter__(self) -> Collection:
        self.jvm.set("Value", 40)
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)


@pytest.fixture
def shop(transactional_db, jmx_jvm):
    """A cluster whose first node is this machine's JVM and whose second
    node's JMX port answers nothing (its samples are missing)."""
    cluster = Cluster.objects.create(name="shop", min_size=1, max_size=4, description="JVMs of the shop front end")
    nodes = [Node.objects.create(cluster=cluster, name="shop-1", address="127.0.0.1"),
             Node.objects.create(cluster=cluster, name="shop-2", address="127.0.0.2", protected=True)]
    jvm = JVM.objects.create(cluster=cluster, name="demo", jmx_port=jmx_jvm.port)
    value = JMXCounter.objects.create(jvm=jvm, name="demo_value", mbean=DEMO_MBEAN, attribute="Value",
                                      threshold=60, comparison=">=", interval_s=1, unit="req/s")
    JMXCounter.objects.create(jvm=jvm, name="heap_used", mbean="java.lang:type=Memory",
                              attribute="HeapMemoryUsage", composite_key="used", threshold=48e6, interval_s=2,
                              unit="bytes")
    mail = Action.objects.create(cluster=cluster, name="notify-ops", kind="email", timeout_s=30,
                                 params={"to": ["ops@example.com"], "subject": "PyScaler: {{ cluster }} paged by hand",
                                         "body": "Fired from the console.\n"})
    busy = Trigger.objects.create(cluster=cluster, name="busy", timing_minutes=5, cooldown_s=600)
    busy.jmx_counters.set([value])
    TriggerAction.objects.create(trigger=busy, action=mail, position=1)
    return cluster, nodes, jvm, value, mail


def _wait_points(page, at_least: int, timeout_s: float = 30) -> int:
    page.wait_for_function(f"() => (+document.querySelector('[data-graph]').dataset.points || 0) >= {at_least}",
                           timeout=timeout_s * 1000)
    return int(page.get_attribute("[data-graph]", "data-points"))


def test_graph_draws_the_samples_of_a_running_collection(page, shop, operator_user, celery_worker, jmx_jvm,
                                                         memcached_servers):
    from apps.monitoring.store import SampleStore

    cluster, nodes, jvm, value, _ = shop
    _login(page, "oscar", "oscar-pw-1234")
    with Collection(jmx_jvm):
        page.goto(f"/graphs/jmx/{value.pk}/?range=15m")
        first = _wait_points(page, 3)
        page.evaluate("window.__notReloaded = true")
        grown = _wait_points(page, first + 2)  # live: new samples arrive while the page stays open
        assert grown > first
        assert page.evaluate("window.__notReloaded") is True
        drawn = page.evaluate("""() => { const g = window.pyscalerGraphs[0];
            return {data: g.plot.data, labels: g.plot.series.map(s => s.label)}; }""")
        page.screenshot(path=str(SCREENSHOTS / "graph.png"), full_page=True)

        assert drawn["labels"][1:] == ["shop-1", "shop-2", "threshold (>= 60)"]
        xs, node1, node2, threshold = drawn["data"]
        assert set(threshold) == {60}
        assert all(v is None for v in node2)  # nothing answers on 127.0.0.2: gaps, not zeros
        stored = SampleStore(memcached_servers, retention_s=3600).read_many(
            [SeriesRef("jmx", nodes[0].pk, value.pk, jvm.pk)], 1,
            _utc(xs[0]), _utc(xs[-1]))
        by_stamp = {int(s.timestamp()): v for s, v in next(iter(stored.values()))}
        shown = {x: y for x, y in zip(xs, node1) if y is not None}
        assert len(shown) >= 3
        for x, y in shown.items():
            assert by_stamp[x] == y, (x, y, by_stamp.get(x))
        assert all(15 <= y <= 65 for y in shown.values())  # the JVM's wave, as collected

        # A custom range: exactly the stamps asked for, the same samples.
        start, end = sorted(shown)[0], sorted(shown)[-1]
        page.fill("#from", _utc(start).strftime("%Y-%m-%dT%H:%M:%S"))
        page.fill("#to", _utc(end).strftime("%Y-%m-%dT%H:%M:%S"))
        page.click("#apply-custom")
        page.wait_for_function(f"() => window.pyscalerGraphs[0].plot.data[0][0] === {start}")
        custom = page.evaluate("() => window.pyscalerGraphs[0].plot.data")
        assert custom[0] == list(range(start, end + 1))
        assert {x: y for x, y in zip(custom[0], custom[1]) if y is not None} == shown

        page.goto("/")
        page.wait_for_selector('[data-cluster="shop"]')
        page.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True)
        page.goto(f"/clusters/{cluster.name}/")
        page.wait_for_function("() => window.pyscalerGraphs.length === 2 && "
                               "window.pyscalerGraphs.every(g => g.plot && +g.el.dataset.points > 2)")
        page.screenshot(path=str(SCREENSHOTS / "cluster.png"), full_page=True)
        failing = page.text_content('tr[data-node="shop-2"]')
        assert "failing" in failing or "unknown" in failing


def _utc(epoch: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def test_fired_action_reaches_succeeded_without_reloading(page, shop, operator_user, celery_worker, smtp):
    cluster, nodes, _, _, mail = shop
    _login(page, "oscar", "oscar-pw-1234")
    page.goto(f"/clusters/{cluster.name}/")
    page.click('tr[data-action="notify-ops"] a.button')
    page.wait_for_selector("text=Fire action notify-ops?")
    assert "notify-ops (Email" in page.text_content("ol.plan")
    page.select_option("select[name=target_node]", label="shop-1")
    page.click("#confirm-fire")
    page.wait_for_url("**/executions/*/")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.wait_for_function("() => document.querySelector('#execution-status').textContent.trim() === 'succeeded'",
                           timeout=45_000)
    assert navigations == []  # the status changed in place, no reload
    assert page.text_content('tr[data-step="1"] .badge').strip() == "succeeded"
    page.screenshot(path=str(SCREENSHOTS / "execution.png"), full_page=True)

    execution = Execution.objects.get()
    assert execution.fired_by_user == operator_user and execution.target_node == nodes[0]
    (message,) = smtp.wait_for(1, timeout=10)
    assert message.subject == "PyScaler: shop paged by hand"


def test_operator_cannot_reach_an_edit_form(page, shop, operator_user):
    cluster = shop[0]
    _login(page, "oscar", "oscar-pw-1234")
    assert "Configuration (read-only)" in page.text_content("header.top")
    response = page.goto("/admin/control/cluster/add/")
    assert response.status == 403
    page.goto(f"/admin/control/cluster/{cluster.pk}/change/")
    assert page.locator('input[name="_save"]').count() == 0
    assert page.locator('input[name="name"]').count() == 0  # shown as text, not a field


def test_a_custom_range_is_in_the_url_and_a_refused_one_shows_why(page, shop, operator_user):
    """Issue 15, bad input 2, 8 and 9: ?from=…&to=… is read on load (bookmarkable)
    and written on "Show"; a range the API refuses (400) clears the chart and
    shows the API's words, not "HTTP 500"; times read like the other pages'."""
    import re
    from datetime import datetime, timedelta, timezone

    _, _, _, value, _ = shop
    _login(page, "oscar", "oscar-pw-1234")
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
    start = end - timedelta(minutes=5)
    page.goto(f"/graphs/jmx/{value.pk}/?from={start:%Y-%m-%dT%H:%M:%SZ}&to={end:%Y-%m-%dT%H:%M:%SZ}")
    page.wait_for_function("() => window.pyscalerGraphs[0].plot !== null")
    # The browser runs in UTC (Chromium writes no ":00" seconds).
    assert datetime.fromisoformat(page.input_value("#from")) == start.replace(tzinfo=None)
    assert datetime.fromisoformat(page.input_value("#to")) == end.replace(tzinfo=None)
    drawn = page.evaluate("() => window.pyscalerGraphs[0].plot.data[0]")
    assert drawn[0] == int(start.timestamp()) and drawn[-1] == int(end.timestamp())
    assert page.evaluate("() => document.querySelector('#ranges .active')") is None
    status = page.text_content("#graph-status")
    assert re.match(r"updated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC · ", status), status
    legend = page.evaluate(f"() => window.pyscalerGraphs[0].plot.series[0].value(null, {int(start.timestamp())})")
    assert legend == f"{start:%Y-%m-%d %H:%M:%S} UTC"

    page.fill("#from", "9999-12-30T00:00:00")
    page.fill("#to", "9999-12-31T23:59:59")
    page.click("#apply-custom")
    page.wait_for_function("() => document.getElementById('graph-status').textContent.includes('range')")
    status = page.text_content("#graph-status")
    assert "HTTP 500" not in status
    assert "to must be between 1970-01-01 and 9998-12-31" in status, status
    assert page.evaluate("() => window.pyscalerGraphs[0].plot") is None  # the old range is not kept
    assert page.get_attribute("[data-graph]", "data-points") == "0"
    assert "from=9999-12-30T00%3A00%3A00.000Z" in page.url and "to=9999-12-31T23%3A59%3A59.000Z" in page.url

    page.click('#ranges [data-range="1h"]')
    page.wait_for_function("() => window.pyscalerGraphs[0].plot !== null")
    assert "range=1h" in page.url and "from=" not in page.url


@pytest.fixture
def big_fleet(transactional_db, memcached_servers, settings):
    """300 nodes x 3 counters with a 15-minute history (tests/web/fleet.py)."""
    from tests.web.fleet import fill_history, make_fleet

    settings.MEMCACHED_SERVERS = memcached_servers
    made = make_fleet(nodes=300, counters=3)
    fill_history(made)
    return made


def _node_rows(page) -> list[str]:
    return page.eval_on_selector_all("table.nodes tr[data-node]", "rows => rows.map(r => r.dataset.node)")


def test_a_large_cluster_is_summed_up_searched_sorted_paged_and_drawn_as_a_band(page, big_fleet, operator_user):
    """Issue 11, item 5: the overview's summary, the cluster page's search,
    sort and pages, and the band graphs, in a real browser."""
    fleet = big_fleet
    _login(page, "oscar", "oscar-pw-1234")
    page.goto("/")
    row = page.locator('[data-cluster="fleet"] tr[data-counter="c00"]')
    assert row.locator("[data-breaching]").get_attribute("data-breaching") == "7"
    assert row.locator("[data-worst]").all_text_contents() == ["fleet-0300", "fleet-0299", "fleet-0298"]
    assert page.locator('[data-cluster="fleet"] th', has_text="fleet-0001").count() == 0
    page.screenshot(path=str(SCREENSHOTS / "overview-fleet.png"), full_page=True)

    page.goto("/clusters/fleet/")
    assert _node_rows(page) == [f"fleet-{i:04d}" for i in range(1, 51)]
    page.click("#node-pager a[rel=next]")
    page.wait_for_url("**page=2*")
    assert _node_rows(page)[0] == "fleet-0051"
    page.fill("#node-search input[name=q]", "fleet-029")
    page.click("#node-search button[type=submit]")
    page.wait_for_url("**q=fleet-029*")
    assert _node_rows(page) == [f"fleet-{i:04d}" for i in range(290, 300)]
    key = f"ssh-{fleet.counters[0].pk}"
    page.click(f'a[data-sort="{key}"]')
    page.wait_for_url(f"**sort={key}*")
    assert _node_rows(page)[0] == "fleet-0290" and "q=fleet-029" in page.url  # the search is kept
    page.click(f'a[data-sort="{key}"]')
    page.wait_for_url(f"**sort=-{key}*")
    assert _node_rows(page)[0] == "fleet-0299"
    page.goto(f"/clusters/fleet/?sort=-{key}")
    assert _node_rows(page)[:2] == ["fleet-0300", "fleet-0299"]

    page.wait_for_function("() => window.pyscalerGraphs.length === 3 && "
                           "window.pyscalerGraphs.every(g => g.plot && g.el.dataset.band === '1')")
    labels = page.evaluate("() => window.pyscalerGraphs[0].plot.series.map(s => s.label)")
    assert labels[1:4] == ["min of 300 nodes", "median", "max"]
    assert labels[4] == "worst: fleet-0300" and labels[-1].startswith("threshold")
    page.screenshot(path=str(SCREENSHOTS / "cluster-fleet.png"), full_page=True)

    page.goto(f"/graphs/ssh/{fleet.counters[0].pk}/?range=15m")
    page.wait_for_function("() => window.pyscalerGraphs[0].plot && "
                           "window.pyscalerGraphs[0].el.dataset.band === '1'")
    drawn = page.evaluate("() => window.pyscalerGraphs[0].plot.data")
    mins, medians, maxes = drawn[1], drawn[2], drawn[3]
    filled = [i for i, v in enumerate(maxes) if v is not None]
    assert len(filled) >= 25
    assert all(mins[i] <= medians[i] <= maxes[i] for i in filled)
    assert "band of 300 nodes" in page.text_content("#graph-status")
    page.screenshot(path=str(SCREENSHOTS / "graph-band.png"), full_page=True)
