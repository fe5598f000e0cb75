from django.urls import path

from apps.control.console import converters  # noqa: F401  (registers <id:...>)

from . import views

app_name = "monitoring"

urlpatterns = [
    path("graphs/<str:kind>/<id:counter_id>/", views.graph, name="graph"),
    path("metrics", views.metrics, name="metrics"),
]
