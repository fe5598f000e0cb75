"""Cluster and trigger status (GET /api/v1/clusters, /clusters/<name>,
/triggers/<id>/status): what the console's overview and cluster page show,
from the same readers (apps/web/summary.py, status.py, node_list.py).

Sizes stay bounded at fleet size: the list pages clusters and sums each up
(no per-node entries); a cluster's status pages its nodes (limit/offset, at
most MAX_LIMIT), searched with ``q`` and sorted with ``sort`` as on its page.
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.control.models import Cluster, Trigger
from apps.monitoring import series as series_svc
from apps.web import node_list, summary
from apps.web import status as status_svc
from apps.web.access import CanView

from .pagination import MAX_LIMIT, BoundedLimitOffsetPagination
from .schema import BAD_PARAMETER, NOT_FOUND
from .serializers import (
    ClusterStatusSerializer,
    ClusterSummarySerializer,
    TriggerStatusSerializer,
    cluster_payload,
    summary_payload,
    trigger_payload,
)

#: Nodes in a cluster's status unless ``limit`` says otherwise.
NODE_LIMIT = 100


class NodePagination(BoundedLimitOffsetPagination):
    default_limit = NODE_LIMIT


class ClusterListView(generics.ListAPIView):
    permission_classes = [CanView]
    serializer_class = ClusterSummarySerializer
    pagination_class = BoundedLimitOffsetPagination  # limit at most 500: a 400 above
    queryset = Cluster.objects.order_by("name")

    @extend_schema(operation_id="clusters_status", summary="Every cluster summed up, by name (paginated)",
                   responses={200: ClusterSummarySerializer(many=True), 400: BAD_PARAMETER})
    def get(self, request: Request, *args, **kwargs) -> Response:
        clusters = self.paginate_queryset(self.get_queryset())
        store = series_svc.default_store()
        return self.get_paginated_response([summary_payload(summary.cluster_summary(c, store=store))
                                            for c in clusters])


class ClusterDetailView(APIView):
    permission_classes = [CanView]

    @extend_schema(
        operation_id="cluster_status", summary="Status of one cluster (by name) with a page of its nodes",
        parameters=[
            OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                             description=f"Nodes per page (default {NODE_LIMIT}, at most {MAX_LIMIT})."),
            OpenApiParameter("offset", {"type": "integer", "minimum": 0}, description="Nodes skipped."),
            OpenApiParameter("q", str, description="Only nodes whose name or address contains this."),
            OpenApiParameter("sort", str, description="name, or a counter as <kind>-<id> (its newest value); "
                                                      "a leading - sorts descending."),
        ],
        responses={200: ClusterStatusSerializer, 400: BAD_PARAMETER, 404: NOT_FOUND})
    def get(self, request: Request, name: str) -> Response:
        cluster = get_object_or_404(Cluster, name=name)
        store = series_svc.default_store()
        counters = series_svc.counters_of_cluster(cluster.pk)
        order = node_list.node_order(cluster, request.query_params, counters, store=store)
        if order.errors:
            raise ValidationError(order.errors)
        paginator = NodePagination()
        ids = paginator.paginate_queryset(order.ids, request, view=self)
        status = status_svc.cluster_status(cluster, store=store, nodes=node_list.nodes_by_id(ids))
        spreads, _ = summary.counter_summaries(counters, summary.node_names(cluster), store, status.at)
        page = {"nodes_matching": paginator.count, "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link()}
        return Response(cluster_payload(status, spreads, page))


class TriggerStatusView(APIView):
    permission_classes = [CanView]

    @extend_schema(operation_id="trigger_status", summary="Breach progress, cooldown and last firing of a trigger",
                   responses={200: TriggerStatusSerializer, 404: NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        trigger = get_object_or_404(Trigger.objects.select_related("cluster"), pk=pk)
        row = status_svc.trigger_row(trigger)
        return Response(trigger_payload(row))
