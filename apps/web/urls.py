"""Every web route but admin and /healthz (pyscaler/urls.py includes this).

URL names keep their namespaces: ``console:...`` for the console pages,
``monitoring:graph`` and ``monitoring:metrics``, ``api-...`` for /api/v1."""
from django.urls import include, path

from apps.web import converters  # noqa: F401  (registers <id:...>)

from . import graphs, metrics

monitoring_urls = ([
    path("graphs/<str:kind>/<id:counter_id>/", graphs.graph, name="graph"),
    path("metrics", metrics.metrics, name="metrics"),
], "monitoring")

urlpatterns = [
    path("api/v1/", include("apps.web.api.urls")),
    path("", include(monitoring_urls)),
    path("", include("apps.web.console.urls")),
]
