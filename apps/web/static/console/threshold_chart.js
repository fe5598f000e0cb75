/* Small charts of values against one horizontal line, drawn with uPlot
 * (node_modules/uplot, served as static files): an execution's breaching
 * samples per node against the counter's threshold today, a policy decision's
 * values against its target later (apps/control/wording.py threshold_chart
 * writes the data).
 *
 * An element with data-threshold-charts="<id>" gets one chart per entry of the
 * JSON in <script id="<id>" type="application/json"> (Django's json_script):
 * {title, threshold, threshold_label, unit, stamps (epoch s), lines [{label,
 * values}]}. The threshold is a dashed red series of its own, so the legend
 * names it. Tests read window.pyscalerThresholdCharts. */
(function () {
  "use strict";
  const PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f"];
  window.pyscalerThresholdCharts = window.pyscalerThresholdCharts || [];

  function short(v) {
    if (v === null || v === undefined) return "—";
    const a = Math.abs(v);
    for (const [start, divisor, suffix] of [[1e12, 1e12, "T"], [1e9, 1e9, "G"], [1e6, 1e6, "M"], [1e4, 1e3, "k"]]) {
      if (a >= start) return +(v / divisor).toPrecision(3) + suffix;
    }
    return String(+v.toPrecision(4));
  }

  /* "2026-11-30 19:45:11 UTC", the console's one way of writing a time (in TIME_ZONE). */
  function formatTime(epochSeconds, zone) {
    const parts = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
    }).formatToParts(new Date(epochSeconds * 1000)).forEach((p) => { parts[p.type] = p.value; });
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute + ":" +
           parts.second + " " + (zone === "UTC" ? "UTC" : parts.timeZoneName);
  }

  function draw(holder, spec) {
    const box = document.createElement("figure");
    box.className = "threshold-chart";
    const caption = document.createElement("figcaption");
    caption.textContent = spec.title;
    box.appendChild(caption);
    holder.appendChild(box);
    const zone = holder.dataset.timeZone || "UTC";
    const stamps = spec.stamps;
    const series = [{ value: (u, v) => (v === null || v === undefined ? "—" : formatTime(v, zone)) }];
    const data = [stamps];
    spec.lines.forEach((line, i) => {
      series.push({ label: line.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false,
                    points: { show: true, size: 5 }, value: (u, v) => short(v) });
      data.push(line.values);
    });
    series.push({ label: spec.threshold_label, stroke: "#d62728", width: 1.5, dash: [6, 4],
                  points: { show: false }, value: (u, v) => short(v) });
    data.push(stamps.map(() => spec.threshold));
    const plot = new uPlot({
      width: Math.max(240, Math.min(720, holder.clientWidth || 600)),
      height: 200,
      padding: [12, 28, 0, 0],  // room for the last time label
      scales: { x: { time: true } },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), zone),
      series: series,
      axes: [{ space: 80, values: (u, splits) => splits.map((x) => formatTime(x, zone).slice(11, 19)) },
             { label: spec.unit || "", size: 56, values: (u, splits) => splits.map(short) }],
    }, data, box);
    window.pyscalerThresholdCharts.push({ spec: spec, plot: plot, el: box });
  }

  document.querySelectorAll("[data-threshold-charts]").forEach((holder) => {
    const source = document.getElementById(holder.dataset.thresholdCharts);
    if (!source) return;
    let specs = [];
    try {
      specs = JSON.parse(source.textContent);
    } catch (err) {
      holder.textContent = "cannot read the chart data: " + err;
      return;
    }
    specs.forEach((spec) => draw(holder, spec));
    holder.dataset.charts = String(specs.length);
  });
})();
