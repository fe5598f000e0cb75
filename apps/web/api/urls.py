from django.urls import path, re_path

from apps.web import converters  # noqa: F401  (registers <id:...>)

from . import control as api
from .series import SeriesView

urlpatterns = [
    path("series", SeriesView.as_view(), name="api-series"),
    path("clusters", api.ClusterListView.as_view(), name="api-clusters"),
    path("clusters/<slug:name>", api.ClusterDetailView.as_view(), name="api-cluster"),
    path("triggers/<id:pk>/status", api.TriggerStatusView.as_view(), name="api-trigger-status"),
    path("triggers/<id:pk>/fire", api.FireTriggerView.as_view(), name="api-trigger-fire"),
    path("actions/<id:pk>/fire", api.FireActionView.as_view(), name="api-action-fire"),
    path("executions", api.ExecutionListView.as_view(), name="api-executions"),
    path("executions/<id:pk>", api.ExecutionDetailView.as_view(), name="api-execution"),
    path("executions/<id:pk>/resume", api.ResumeExecutionView.as_view(), name="api-execution-resume"),
    path("nodes/<id:pk>/collection", api.NodeCollectionView.as_view(), name="api-node-collection"),
    re_path(r"^.*$", api.api_not_found),  # last: JSON 404 for everything else under /api/v1/
]
