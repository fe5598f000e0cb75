/* Live parts of console pages: an element with data-live="1" re-fetches its
 * own HTML (data-live-url, rendered by the same template server-side) every
 * data-live-ms and replaces itself. The server sets data-live="0" once there
 * is nothing left to watch (e.g. an execution has finished). */
(function () {
  "use strict";

  function watch(el) {
    const ms = parseInt(el.dataset.liveMs || "5000", 10);
    setTimeout(async function tick() {
      if (!document.body.contains(el) || el.dataset.live !== "1") return;
      let next = el;
      try {
        const response = await fetch(el.dataset.liveUrl, { credentials: "same-origin",
                                                           headers: { "X-Requested-With": "fetch" } });
        if (response.ok && !response.redirected) {
          const holder = document.createElement("div");
          holder.innerHTML = (await response.text()).trim();
          const fresh = holder.firstElementChild;
          if (fresh && fresh.id === el.id) {
            el.replaceWith(fresh);
            next = fresh;
          }
        }
      } catch (err) {
        /* the server is restarting or unreachable: try again at the next tick */
      }
      if (next.dataset.live === "1") watch(next);
    }, ms);
  }

  document.querySelectorAll("[data-live='1']").forEach(watch);
})();
