/* Counter graphs drawn with uPlot (node_modules/uplot, served as static files)
 * from /api/v1/series. One line per node, the threshold as a dashed red line,
 * gaps where no sample exists (the API's nulls are never joined up).
 * Live: named ranges are re-fetched every refreshMs while the page is open.
 * A custom range is put in the page's URL (?from=…&to=…, read on load), so it
 * can be bookmarked; a range the API refuses clears the chart and shows why.
 * Times are written as the console pages write them: 2026-11-30 19:45:11 UTC,
 * in the server's TIME_ZONE (graph config timeZone).
 * A large cluster's graph (cfg.aggregate "band") draws the nodes' spread
 * instead: a filled band from min to max with the median as a line, and the
 * worst few nodes (the API's ?aggregate=band) over it.
 * Long ranges (cfg.historyRanges, or a custom range longer than cfg.rawUpToS)
 * and ranges starting before memcached's retention (cfg.rawFromS seconds ago)
 * are drawn from the persisted summaries (cfg.historyApi, the same columnar
 * band shape): the nodes' average per period with their min–max band. The
 * rule is apps.web.api.history_graph.from_summaries, applied here.
 * Tests read window.pyscalerGraphs to compare what is drawn with the samples. */
(function () {
  "use strict";
  const PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f"];
  window.pyscalerGraphs = window.pyscalerGraphs || [];

  /* "2026-11-30 19:45:11 UTC" (the console's template filter `when`). */
  function formatTime(epochSeconds, timeZone) {
    const zone = timeZone || "UTC";
    const parts = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
    }).formatToParts(new Date(epochSeconds * 1000)).forEach((p) => { parts[p.type] = p.value; });
    const name = zone === "UTC" ? "UTC" : parts.timeZoneName;
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute + ":" +
           parts.second + " " + name;
  }
  window.pyscalerFormatTime = formatTime;

  function seriesUrl(api, kind, counter, query) {
    const params = new URLSearchParams({ kind: kind, counter: String(counter) });
    for (const [k, v] of Object.entries(query)) { if (v) params.set(k, v); }
    return api + "?" + params.toString();
  }

  /* Axis numbers short enough for the gutter: 48M, 1.5k, 0.25. */
  function short(v) {
    if (v === null || v === undefined) return "";
    const a = Math.abs(v);
    for (const [start, divisor, suffix] of [[1e12, 1e12, "T"], [1e9, 1e9, "G"], [1e6, 1e6, "M"], [1e4, 1e3, "k"]]) {
      if (a >= start) return +(v / divisor).toPrecision(3) + suffix;
    }
    return String(+v.toPrecision(4));
  }

  /* Axis ticks: the time of day, with the date when the range spans days. */
  function axisTime(x, u, zone) {
    const full = formatTime(x, zone);
    const xs = u.data[0];
    const days = xs.length > 1 && xs[xs.length - 1] - xs[0] > 86400;
    return days ? full.slice(5, 16) : full.slice(11, 19);
  }

  const WORST = ["#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22"];

  function toData(payload, threshold) {
    const xs = payload.stamps;
    const data = [xs];
    if (payload.band) data.push(payload.band.min, payload.band.p50, payload.band.max);
    for (const s of payload.series) data.push(s.values);
    data.push(xs.map(() => threshold));
    return data;
  }

  function options(payload, el, cfg) {
    const mini = cfg.mini, zone = cfg.timeZone || "UTC";
    const label = cfg.thresholdLabel || short(cfg.threshold);
    const series = [{ value: (u, v) => (v === null || v === undefined ? "—" : formatTime(v, zone)) }];
    const band = payload.band;
    if (band) {
      const edge = { stroke: "rgba(31,119,180,0.45)", width: 1, spanGaps: false, points: { show: false } };
      series.push({ ...edge, label: "min of " + band.nodes + " nodes" },
                  { label: band.centre || "median", stroke: "#1f77b4", width: mini ? 1.5 : 2, spanGaps: false, points: { show: false } },
                  { ...edge, label: "max" });
    }
    const colours = band ? WORST : PALETTE;
    payload.series.forEach((s, i) => series.push({
      label: band ? "worst: " + s.node : s.node, stroke: colours[i % colours.length], width: mini ? 1 : 1.5,
      spanGaps: false, points: { show: !mini && !band, size: 4 },
    }));
    series.push({ label: "threshold (" + payload.counter.comparison + " " + label + ")", stroke: "#d62728",
                  width: 1.5, dash: [6, 4], points: { show: false } });
    const unit = payload.counter.unit;
    return {
      width: Math.max(200, el.clientWidth || 600),
      height: mini ? 130 : 360,
      scales: { x: { time: true } },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), zone),
      legend: { show: !mini },
      cursor: { show: !mini },
      series: series,
      bands: band ? [{ series: [3, 1], fill: "rgba(31,119,180,0.18)" }] : [],
      axes: [{ size: mini ? 30 : 50, values: (u, splits) => splits.map((x) => axisTime(x, u, zone)) },
             { label: mini ? "" : unit, size: mini ? 44 : 64, values: (u, splits) => splits.map(short) }],
    };
  }

  /* One graph: fetch, draw (re-create when the node set changes), repeat. */
  function Graph(el, cfg) {
    this.el = el; this.cfg = cfg; this.plot = null; this.payload = null; this.timer = null;
    this.query = { range: cfg.range };
    this.statusEl = cfg.statusEl || null;
    window.pyscalerGraphs.push(this);
  }
  Graph.prototype.status = function (text) { if (this.statusEl) this.statusEl.textContent = text; };
  /* A time as the server reads it (apps/monitoring/series.py): without an
   * offset it is UTC, where Date.parse would take the browser's zone. */
  function parseUtc(text) {
    return Date.parse(/[T ]\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(text) ? text.replace(" ", "T") + "Z" : text);
  }
  /* A long range, or one older than memcached holds: drawn from the
   * summaries (README "History"; history_graph.from_summaries). */
  Graph.prototype.fromHistory = function (now) {
    const cfg = this.cfg, q = this.query;
    if (!cfg.historyApi) return false;
    if (q.range) return (cfg.historyRanges || []).includes(q.range);
    now = now === undefined ? Date.now() : now;
    const start = parseUtc(q.from || ""), end = q.to ? parseUtc(q.to) : now;
    if (isNaN(start) || isNaN(end)) return false;
    return (end - start) / 1000 > cfg.rawUpToS || (cfg.rawFromS > 0 && start < now - cfg.rawFromS * 1000);
  };
  Graph.prototype.load = async function () {
    const cfg = this.cfg;
    const history = this.fromHistory();
    const url = history ? seriesUrl(cfg.historyApi, cfg.kind, cfg.counter, this.query)
                        : seriesUrl(cfg.api, cfg.kind, cfg.counter, { ...this.query, aggregate: cfg.aggregate || "" });
    let response;
    try {
      response = await fetch(url,
                             { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (err) {
      this.status("cannot reach the server: " + err);
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = body.detail || Object.entries(body).map(([k, v]) => k + ": " + [].concat(v).join(" ")).join("; ");
      this.clear();  // never the old range's lines under the new range's inputs
      this.status((response.status === 400 ? "cannot show this range: " : "HTTP " + response.status + ": ") +
                  (detail || response.statusText));
      return;
    }
    this.draw(body);
  };
  Graph.prototype.clear = function () {
    if (this.plot) this.plot.destroy();
    this.plot = null; this.payload = null;
    this.el.dataset.points = "0";
  };
  Graph.prototype.draw = function (payload) {
    const cfg = this.cfg;
    const data = toData(payload, cfg.threshold);
    const shapeOf = (p) => (p.band ? "band:" : "") + p.series.map((s) => s.node_id).join(",");
    const shape = shapeOf(payload);
    const oldShape = this.payload ? shapeOf(this.payload) : null;
    if (this.plot && shape === oldShape) {
      this.plot.setData(data);
    } else {
      if (this.plot) this.plot.destroy();
      this.plot = new uPlot(options(payload, this.el, cfg), data, this.el);
    }
    this.payload = payload;
    let cells = payload.series.reduce((n, s) => n + s.values.length, 0);
    let missing = payload.series.reduce((n, s) => n + s.values.filter((v) => v === null).length, 0);
    let what = "";
    if (payload.band) {  // every node's samples are in the band
      cells = payload.band.nodes * payload.stamps.length;
      missing = cells - payload.band.count.reduce((n, c) => n + c, 0);
      what = " · band of " + payload.band.nodes + " nodes (min–max, median) and the " + payload.series.length +
             " worst";
    }
    this.el.dataset.points = String(cells - missing);
    this.el.dataset.band = payload.band ? "1" : "0";
    this.el.dataset.resolution = payload.resolution || "raw";
    if (payload.resolution) {
      what = " · band of " + payload.band.nodes + " nodes from " + payload.resolution + " summaries (average, min–max)";
      const raw = payload.raw || {};
      if (raw.periods) what += " · " + raw.periods + " period" + (raw.periods === 1 ? "" : "s") + " from raw samples";
      if (raw.capped) what += " · older periods without summaries not read (HISTORY_RAW_FILL_MAX_KEYS)";
      if (raw.error) what += " · " + raw.error;
    }
    this.el.dataset.rawPeriods = String((payload.raw || {}).periods || 0);
    this.status("updated " + formatTime(Date.now() / 1000, cfg.timeZone) + " · step " + payload.step_s + " s · " +
                (cells - missing) + " samples, " + missing + " missing" + what);
  };
  Graph.prototype.live = function () {
    clearTimeout(this.timer);
    const tick = async () => {
      await this.load();
      const every = this.fromHistory() ? Math.max(60000, this.cfg.refreshMs) : this.cfg.refreshMs;
      if (this.query.range) this.timer = setTimeout(tick, every);
    };
    tick();
  };
  Graph.prototype.show = function (query) { this.query = query; this.live(); };

  function isoFromLocal(value) { return value ? new Date(value).toISOString() : ""; }

  /* An ISO time from the URL as a datetime-local input's value (browser time). */
  function localFromIso(value) {
    const when = new Date(value);
    if (!value || isNaN(when)) return value || "";
    const pad = (n) => String(n).padStart(2, "0");
    return when.getFullYear() + "-" + pad(when.getMonth() + 1) + "-" + pad(when.getDate()) + "T" +
           pad(when.getHours()) + ":" + pad(when.getMinutes()) + ":" + pad(when.getSeconds());
  }

  /* Put the shown range in the address bar: ?range=… or ?from=…&to=…. */
  function remember(query) {
    const url = new URL(window.location.href);
    ["range", "from", "to"].forEach((k) => url.searchParams.delete(k));
    for (const [k, v] of Object.entries(query)) { if (v) url.searchParams.set(k, v); }
    window.history.replaceState(null, "", url);
  }

  function mainGraph() {
    const el = document.querySelector("[data-graph]");
    const cfgEl = document.getElementById("graph-config");
    if (!el || !cfgEl) return;
    const cfg = JSON.parse(cfgEl.textContent);
    cfg.statusEl = document.getElementById("graph-status");
    const graph = new Graph(el, cfg);
    const buttons = document.querySelectorAll("#ranges [data-range]");
    const fromInput = document.getElementById("from"), toInput = document.getElementById("to");
    buttons.forEach((b) => b.addEventListener("click", () => {
      buttons.forEach((x) => x.classList.toggle("active", x === b));
      remember({ range: b.dataset.range });
      graph.show({ range: b.dataset.range });
    }));
    document.getElementById("apply-custom").addEventListener("click", () => {
      buttons.forEach((x) => x.classList.remove("active"));
      const query = { from: isoFromLocal(fromInput.value), to: isoFromLocal(toInput.value) };
      remember(query);
      graph.show(query);
    });
    const asked = new URL(window.location.href).searchParams;
    if (asked.get("from") || asked.get("to")) {  // a bookmarked custom range
      buttons.forEach((x) => x.classList.remove("active"));
      fromInput.value = localFromIso(asked.get("from"));
      toInput.value = localFromIso(asked.get("to"));
      graph.query = { from: asked.get("from") || "", to: asked.get("to") || "" };
    }
    window.addEventListener("resize", () => {
      if (graph.plot) graph.plot.setSize({ width: el.clientWidth, height: 360 });
    });
    graph.live();
  }

  function miniGraphs() {
    const api = "/api/v1/series";
    document.querySelectorAll("[data-mini-graph]").forEach((el) => {
      const graph = new Graph(el, {
        api: api, kind: el.dataset.kind, counter: el.dataset.counter, range: el.dataset.range || "15m", mini: true, timeZone: el.dataset.timeZone || "UTC",
        threshold: parseFloat(el.dataset.threshold), aggregate: el.dataset.aggregate || "",
        refreshMs: Math.min(15000, Math.max(5000, parseInt(el.dataset.refreshMs || "10000", 10))),
      });
      graph.live();
    });
  }

  mainGraph();
  miniGraphs();
})();
