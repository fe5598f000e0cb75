from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from pyscaler.health import healthz

admin.site.site_header = "PyScaler administration"
admin.site.site_title = "PyScaler"
admin.site.index_title = "Clusters, counters, triggers and actions"
admin.site.site_url = "/"  # "View site" leads to the console

urlpatterns = [
    path("admin/history/", include("apps.history.urls")),  # the trigger's Backtest page
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page links (admin pages link none).
    path("favicon.ico", RedirectView.as_view(url=static("console/favicon.svg"), permanent=True)),
    path("", include("apps.web.urls")),
]
