"""Cluster and trigger status (GET /api/v1/clusters, /clusters/<name>,
/triggers/<id>/status): what the console's overview and cluster page show,
from the same reader (apps/web/status.py)."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.control.models import Cluster, Trigger
from apps.web import status as status_svc
from apps.web.access import CanView

from .schema import NOT_FOUND
from .serializers import ClusterStatusSerializer, TriggerStatusSerializer, cluster_payload, trigger_payload


class ClusterListView(APIView):
    permission_classes = [CanView]

    @extend_schema(operation_id="clusters_status", summary="Status of every cluster",
                   responses={200: ClusterStatusSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response([cluster_payload(s) for s in status_svc.overview()])


class ClusterDetailView(APIView):
    permission_classes = [CanView]

    @extend_schema(operation_id="cluster_status", summary="Status of one cluster (by name)",
                   responses={200: ClusterStatusSerializer, 404: NOT_FOUND})
    def get(self, request: Request, name: str) -> Response:
        cluster = get_object_or_404(Cluster, name=name)
        return Response(cluster_payload(status_svc.cluster_status(cluster)))


class TriggerStatusView(APIView):
    permission_classes = [CanView]

    @extend_schema(operation_id="trigger_status", summary="Breach progress, cooldown and last firing of a trigger",
                   responses={200: TriggerStatusSerializer, 404: NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        trigger = get_object_or_404(Trigger.objects.select_related("cluster"), pk=pk)
        row = status_svc.trigger_row(trigger)
        return Response(trigger_payload(row))
