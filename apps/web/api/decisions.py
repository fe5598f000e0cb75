"""A cluster's scaling-policy decisions (GET /api/v1/clusters/<name>/decisions),
newest first: what each counter read, each guard's effect in order, the final
size and the execution it started, and the decision in words."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers

from apps.control.models import Cluster, PolicyDecision
from apps.web.access import CanView

from .pagination import BoundedLimitOffsetPagination
from .schema import BAD_PARAMETER, NOT_FOUND


class GuardEffectSerializer(serializers.Serializer):
    guard = serializers.CharField(help_text="bounds, step cap, stabilization, cooldown, warm-up, flap check, "
                                            "missing data or schedule.")
    before = serializers.IntegerField()
    after = serializers.IntegerField()
    note = serializers.CharField()
    blocked = serializers.BooleanField(help_text="The guard held back or reduced a change the counters wanted.")
    until = serializers.DateTimeField(allow_null=True)


class DecisionSerializer(serializers.ModelSerializer):
    policy = serializers.CharField(source="policy.name")
    effects = GuardEffectSerializer(many=True)
    inputs = serializers.JSONField(help_text="counters (value, nodes, desired), in_service, warming, "
                                             "in_flight, removing, schedule in force.")
    execution_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = PolicyDecision
        fields = ["id", "policy", "created", "evaluated_at", "repeats", "current", "actual", "raw_desired",
                  "desired", "direction", "summary", "inputs", "effects", "dry_run", "execution_id"]


class DecisionListView(generics.ListAPIView):
    permission_classes = [CanView]
    serializer_class = DecisionSerializer
    pagination_class = BoundedLimitOffsetPagination

    def get_queryset(self):
        cluster = get_object_or_404(Cluster, name=self.kwargs["name"])
        return PolicyDecision.objects.filter(cluster=cluster).select_related("policy").order_by("-created", "-pk")

    @extend_schema(
        operation_id="cluster_decisions", summary="A cluster's scaling-policy decisions, newest first",
        parameters=[OpenApiParameter("name", str, OpenApiParameter.PATH, description="Cluster name.")],
        responses={200: DecisionSerializer(many=True), 400: BAD_PARAMETER, 404: NOT_FOUND},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
