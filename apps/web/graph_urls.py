from django.urls import path

from apps.web import converters  # noqa: F401  (registers <id:...>)

from . import graphs as views

app_name = "monitoring"

urlpatterns = [
    path("graphs/<str:kind>/<id:counter_id>/", views.graph, name="graph"),
    path("metrics", views.metrics, name="metrics"),
]
