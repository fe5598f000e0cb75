from django.contrib.auth import views as auth_views
from django.urls import path

from apps.web import converters  # noqa: F401  (registers <id:...>)

from . import views

app_name = "console"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("login/", auth_views.LoginView.as_view(template_name="console/login.html",
                                                redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("clusters/<slug:name>/", views.cluster_detail, name="cluster"),
    path("clusters/<slug:name>/triggers/<id:pk>/fire/", views.fire_trigger, name="fire-trigger"),
    path("clusters/<slug:name>/actions/<id:pk>/fire/", views.fire_action, name="fire-action"),
    path("nodes/<id:pk>/collection/", views.node_collection, name="node-collection"),
    path("executions/", views.execution_list, name="executions"),
    path("executions/<id:pk>/", views.execution_detail, name="execution"),
    path("executions/<id:pk>/resume/", views.execution_resume, name="execution-resume"),
]
