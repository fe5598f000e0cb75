from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView

from pyscaler.health import healthz

admin.site.site_header = "PyScaler administration"
admin.site.site_title = "PyScaler"
admin.site.index_title = "Clusters, counters, triggers and actions"
admin.site.site_url = "/"  # "View site" leads to the console

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/v1/openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("api/v1/", include("apps.monitoring.api.urls")),
    path("api/v1/", include("apps.control.console.api_urls")),
    path("", include("apps.monitoring.urls")),
    path("", include("apps.control.console.urls")),
]
