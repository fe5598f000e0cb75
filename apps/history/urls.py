from django.contrib import admin
from django.urls import path

from . import views

app_name = "history"
urlpatterns = [
    path("backtest/<int:trigger_id>/", admin.site.admin_view(views.backtest_view), name="backtest"),
    path("backtest/policy/<int:policy_id>/", admin.site.admin_view(views.policy_backtest_view),
         name="policy-backtest"),
]
