from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView

urlpatterns = [
    path("api/v1/openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("api/v1/", include("apps.web.api.urls")),
    path("", include("apps.web.graph_urls")),
    path("", include("apps.web.console.urls")),
]
