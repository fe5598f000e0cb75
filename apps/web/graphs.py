"""The counter graph page (/graphs/<kind>/<id>/)."""
from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from apps.monitoring import series as svc
from apps.monitoring.counters import config_error
from apps.web.access import console_context, console_page
from apps.web.api.history_graph import RAW_UP_TO
from apps.web.templatetags.console_tags import value


#: Above this many nodes a graph draws a band (min-max, median) and the worst
#: nodes instead of a line per node (/api/v1/series?aggregate=band).
BAND_FROM = 20
#: Range buttons drawn from the summaries (apps/web/api/history_graph.py).
HISTORY_RANGES = ["7d", "30d", "1y"]


@console_page()
def graph(request: HttpRequest, kind: str, counter_id: int) -> HttpResponse:
    """One line per node (past BAND_FROM nodes: a band and the worst nodes),
    live: the page draws what /api/v1/series returns
    (static/monitoring/graph.js), so the graph and the API cannot disagree."""
    try:
        counter_kind = svc.counter_kind(kind)
        counter = svc.get_counter(counter_kind, counter_id)
    except svc.SeriesQueryError as exc:
        raise Http404(exc.message) from None
    cluster = counter_kind.cluster(counter)
    error = config_error(counter)
    threshold = None if error.startswith("threshold") else counter.threshold
    nodes = svc.nodes_for(cluster.pk, None)
    ranges = [*svc.RANGES, *HISTORY_RANGES]
    selected = request.GET.get("range") if request.GET.get("range") in ranges else svc.DEFAULT_RANGE
    if request.GET.get("from") or request.GET.get("to"):
        selected = None  # a custom range from the URL: graph.js reads it, no button is lit
    return render(request, "monitoring/graph.html", {
        **console_context(request),
        "kind": counter_kind, "counter": counter, "cluster": cluster, "nodes": nodes,
        "endpoint": counter_kind.endpoint_name(counter), "definition": counter_kind.describe(counter),
        "ranges": ranges, "selected_range": selected, "config_error": error,
        "graph_config": {
            "api": reverse("api-series"), "kind": kind, "counter": counter.pk, "range": selected,
            "threshold": threshold, "comparison": counter.comparison, "unit": counter.unit,
            # The legend writes the threshold as the page does (537M), times in the page's zone.
            "thresholdLabel": value(threshold), "timeZone": settings.TIME_ZONE,
            # Poll about once per new sample, but not more often than every 2 s.
            "refreshMs": max(2000, min(counter.interval_s * 1000, 15000)) if not error else 60000,
            "aggregate": "band" if len(nodes) > BAND_FROM else "",
            # Longer ranges, and ranges older than memcached's retention, come
            # from the persisted summaries (README "History"): graph.js applies
            # apps.web.api.history_graph.from_summaries with these two limits.
            "historyApi": reverse("api-summaries-graph"), "historyRanges": HISTORY_RANGES,
            "rawUpToS": int(RAW_UP_TO.total_seconds()), "rawFromS": int(settings.SAMPLE_RETENTION_S),
        },
    })

