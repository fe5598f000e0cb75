/* The cluster page's scaling timeline: the policy's desired size against the
 * running nodes, as steps (a size holds until the next decision), drawn with
 * uPlot from the page's #timeline-data (apps/web/decisions.py). Tests read
 * window.pyscalerTimeline to compare what is drawn with the decisions. */
(function () {
  "use strict";
  function draw() {
    const box = document.querySelector("[data-timeline-chart]");
    const source = document.getElementById("timeline-data");
    if (!box || !source || typeof uPlot === "undefined") return;
    const data = JSON.parse(source.textContent);
    const zone = (document.querySelector("[data-time-zone]") || {}).dataset;
    const timeZone = zone ? zone.timeZone : "UTC";
    const steps = uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
    const opts = {
      width: Math.max(320, box.clientWidth || 600), height: 180,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max) + 1] } },
      series: [
        { value: (u, v) => (v === null || v === undefined ? "" :
          (window.pyscalerFormatTime ? window.pyscalerFormatTime(v, timeZone) : String(v))) },
        { label: "desired", stroke: "#1f77b4", width: 2, paths: steps },
        { label: "actual (running)", stroke: "#2ca02c", width: 2, dash: [6, 4], paths: steps },
      ],
      axes: [{}, { label: "nodes", values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? String(t) : "")) }],
    };
    box.innerHTML = "";
    const plot = new uPlot(opts, [data.times, data.desired, data.actual], box);
    window.pyscalerTimeline = { plot: plot, data: data };
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
