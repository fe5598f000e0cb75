"""Executions (GET /api/v1/executions, /executions/<id>). The list's filters
are apps/web/filters.py's ExecutionFilter, the console's executions page's too."""
from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics

from apps.control.choices import ExecutionStatus
from apps.web.access import CanView
from apps.web.filters import ExecutionFilter, execution_rows

from .pagination import BoundedLimitOffsetPagination
from .schema import BAD_PARAMETER, ID_SCHEMA, NOT_FOUND
from .serializers import ExecutionDetailSerializer, ExecutionSerializer


class ExecutionListView(generics.ListAPIView):
    permission_classes = [CanView]
    serializer_class = ExecutionSerializer
    filter_backends = [DjangoFilterBackend]  # a bad filter value: 400 naming the parameter
    filterset_class = ExecutionFilter
    pagination_class = BoundedLimitOffsetPagination  # limit at most 500: a 400 above

    def get_queryset(self):
        return execution_rows()

    @extend_schema(
        operation_id="executions_list", summary="Executions, newest first",
        parameters=[
            OpenApiParameter("cluster", str, description="Cluster name."),
            OpenApiParameter("status", str, enum=ExecutionStatus.values),
            OpenApiParameter("trigger", ID_SCHEMA, description="Trigger id."),
            OpenApiParameter("automatic", bool, description="true: fired by the evaluator; false: by hand."),
        ],
        responses={200: ExecutionSerializer(many=True), 400: BAD_PARAMETER},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ExecutionDetailView(generics.RetrieveAPIView):
    permission_classes = [CanView]
    serializer_class = ExecutionDetailSerializer
    queryset = execution_rows().prefetch_related("steps")

    @extend_schema(operation_id="execution_detail", summary="One execution with its steps",
                   responses={200: ExecutionDetailSerializer, 404: NOT_FOUND})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
