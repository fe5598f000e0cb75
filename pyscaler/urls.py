from django.contrib import admin
from django.urls import include, path

from pyscaler.health import healthz

admin.site.site_header = "PyScaler administration"
admin.site.site_title = "PyScaler"
admin.site.index_title = "Clusters, counters, triggers and actions"
admin.site.site_url = "/"  # "View site" leads to the console

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("apps.web.urls")),
]
