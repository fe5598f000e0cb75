"""The counter graph page and /metrics."""
from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
# The classic text format: every Prometheus version (Debian's 2.42 too) reads it.
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from apps.control.console.access import console_context, console_page
from apps.monitoring import series as svc
from apps.monitoring.metrics import render_metrics


@console_page()
def graph(request: HttpRequest, kind: str, counter_id: int) -> HttpResponse:
    """One line per node, live: the page draws what /api/v1/series returns
    (static/monitoring/graph.js), so the graph and the API cannot disagree."""
    try:
        counter_kind = svc.counter_kind(kind)
        counter = svc.get_counter(counter_kind, counter_id)
    except svc.SeriesQueryError as exc:
        raise Http404(exc.message) from None
    cluster = counter_kind.cluster(counter)
    nodes = svc.nodes_for(cluster.pk, None)
    selected = request.GET.get("range") if request.GET.get("range") in svc.RANGES else svc.DEFAULT_RANGE
    return render(request, "monitoring/graph.html", {
        **console_context(request),
        "kind": counter_kind, "counter": counter, "cluster": cluster, "nodes": nodes,
        "endpoint": counter_kind.endpoint_name(counter), "definition": counter_kind.describe(counter),
        "ranges": list(svc.RANGES), "selected_range": selected,
        "graph_config": {
            "api": reverse("api-series"), "kind": kind, "counter": counter.pk, "range": selected,
            "threshold": counter.threshold, "comparison": counter.comparison, "unit": counter.unit,
            # Poll about once per new sample, but not more often than every 2 s.
            "refreshMs": max(2000, min(counter.interval_s * 1000, 15000)),
        },
    })


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format behind a bearer token (METRICS_TOKEN). Without
    a configured token the endpoint does not exist (404): nothing is exposed
    by accident."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("metrics are off: set METRICS_TOKEN")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        response = HttpResponse("a valid bearer token is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="pyscaler metrics"'
        return response
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
