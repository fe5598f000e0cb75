"""Every /api/v1/ route (pyscaler/urls.py mounts this under api/v1/)."""
from django.http import JsonResponse
from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView

from apps.web import converters  # noqa: F401  (registers <id:...>)

from . import config, decisions, executions, firing, history_graph, series, status, summaries


def api_not_found(request, *args, **kwargs):
    """Anything under /api/v1/ that matches no endpoint (e.g. a negative id)
    answers in JSON like the rest of the API, not with Django's HTML page."""
    return JsonResponse({"detail": f"no API endpoint at {request.path}"}, status=404)


urlpatterns = [
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("config", config.ConfigView.as_view(), name="api-config"),
    path("series", series.SeriesView.as_view(), name="api-series"),
    path("summaries", summaries.SummariesView.as_view(), name="api-summaries"),
    path("summaries/graph", history_graph.HistoryGraphView.as_view(), name="api-summaries-graph"),
    path("clusters", status.ClusterListView.as_view(), name="api-clusters"),
    path("clusters/<slug:name>", status.ClusterDetailView.as_view(), name="api-cluster"),
    path("clusters/<slug:name>/decisions", decisions.DecisionListView.as_view(), name="api-cluster-decisions"),
    path("triggers/<id:pk>/status", status.TriggerStatusView.as_view(), name="api-trigger-status"),
    path("triggers/<id:pk>/fire", firing.FireTriggerView.as_view(), name="api-trigger-fire"),
    path("actions/<id:pk>/fire", firing.FireActionView.as_view(), name="api-action-fire"),
    path("executions", executions.ExecutionListView.as_view(), name="api-executions"),
    path("executions/<id:pk>", executions.ExecutionDetailView.as_view(), name="api-execution"),
    path("executions/<id:pk>/resume", firing.ResumeExecutionView.as_view(), name="api-execution-resume"),
    path("nodes/<id:pk>/collection", firing.NodeCollectionView.as_view(), name="api-node-collection"),
    re_path(r"^.*$", api_not_found),  # last: JSON 404 for everything else under /api/v1/
]
