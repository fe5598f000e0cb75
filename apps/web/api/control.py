"""The control half of the data API: cluster and trigger status, executions,
firing and node collection (all under /api/v1/, see pyscaler/urls.py).

Firing needs ``control.fire_trigger`` (and ``control.manage_nodes`` for
DeployEc2Node/RemoveEc2Node); session-authenticated POSTs need Django's CSRF
token, token-authenticated ones do not (DRF's rules).
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.actions.models import Action
from apps.control.choices import ExecutionStatus
from apps.control.models import Cluster, Execution, Node, Trigger
from apps.monitoring.series import SeriesQueryError, parse_ids
from apps.web import firing, status as status_svc
from apps.web.access import CanFire, CanManageNodes, CanView
from apps.web.api.series import BAD_PARAMETER, ID_SCHEMA

from .serializers import (
    ClusterStatusSerializer,
    CollectionRequestSerializer,
    ExecutionDetailSerializer,
    ExecutionSerializer,
    FireRequestSerializer,
    NodeSerializer,
    TriggerStatusSerializer,
    cluster_payload,
    trigger_payload,
)

NOT_FOUND = OpenApiResponse(OpenApiTypes.OBJECT, description="No such object.")
FORBIDDEN = OpenApiResponse(OpenApiTypes.OBJECT, description="Missing permission.")
CONFLICT = OpenApiResponse(OpenApiTypes.OBJECT, description="The firing request is wrong (message says why).")


# ---------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# Executions
# ---------------------------------------------------------------------------
def _bool_param(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValidationError({name: [f"{text!r} is not true or false"]})


def filter_executions(params) -> QuerySet[Execution]:
    """The execution list's filters (the page and the API share them)."""
    qs = Execution.objects.select_related("cluster", "trigger", "action", "fired_by_user")
    if params.get("cluster"):
        qs = qs.filter(cluster__name=params["cluster"])
    if params.get("status"):
        if params["status"] not in ExecutionStatus.values:
            raise ValidationError({"status": [f"{params['status']!r} is not one of {', '.join(ExecutionStatus.values)}"]})
        qs = qs.filter(status=params["status"])
    if params.get("trigger"):
        try:
            (trigger_id,) = parse_ids("trigger", [params["trigger"]])
        except (SeriesQueryError, ValueError):
            raise ValidationError({"trigger": [f"{params['trigger']!r} is not a trigger id"]}) from None
        qs = qs.filter(trigger_id=trigger_id)
    if params.get("automatic"):
        qs = qs.filter(automatic=_bool_param("automatic", params["automatic"]))
    return qs


class ExecutionListView(generics.ListAPIView):
    permission_classes = [CanView]
    serializer_class = ExecutionSerializer

    def get_queryset(self):
        return filter_executions(self.request.query_params)

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
    queryset = Execution.objects.select_related("cluster", "trigger", "action", "fired_by_user").prefetch_related("steps")

    @extend_schema(operation_id="execution_detail", summary="One execution with its steps",
                   responses={200: ExecutionDetailSerializer, 404: NOT_FOUND})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# ---------------------------------------------------------------------------
# Firing and node management
# ---------------------------------------------------------------------------
def _target(cluster: Cluster, node_id: int | None) -> Node | None:
    if node_id is None:
        return None
    node = Node.objects.filter(pk=node_id, cluster=cluster).first()
    if node is None:
        raise ValidationError({"target_node": [f"no node with id {node_id} in cluster {cluster.name!r}"]})
    return node


def _created(execution: Execution) -> Response:
    execution = Execution.objects.select_related("cluster", "trigger", "action", "fired_by_user").get(pk=execution.pk)
    return Response(ExecutionDetailSerializer(execution).data, status=status.HTTP_201_CREATED)


def _fire(call) -> Response:
    try:
        return _created(call())
    except DjangoPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from None
    except firing.FiringError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)


FIRE_RESPONSES = {201: ExecutionDetailSerializer, 400: BAD_PARAMETER, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT}


class _FireView(APIView):
    """Fire something that belongs to a cluster (a trigger's chain, one
    action), optionally at a chosen target node of that cluster."""

    permission_classes = [CanFire]
    model: type = Trigger

    def fire_by_hand(self, obj, user, target):  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def post(self, request: Request, pk: int) -> Response:
        obj = get_object_or_404(self.model.objects.select_related("cluster"), pk=pk)
        body = FireRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        target = _target(obj.cluster, body.validated_data.get("target_node"))
        return _fire(lambda: self.fire_by_hand(obj, request.user, target))


@extend_schema_view(post=extend_schema(
    operation_id="trigger_fire", summary="Run a trigger's chain now (recorded as fired by you)",
    request=FireRequestSerializer, responses=FIRE_RESPONSES))
class FireTriggerView(_FireView):
    model = Trigger

    def fire_by_hand(self, obj, user, target):
        return firing.fire_trigger_by_hand(obj, user, target)


@extend_schema_view(post=extend_schema(
    operation_id="action_fire", summary="Run one action now (recorded as fired by you)",
    request=FireRequestSerializer, responses=FIRE_RESPONSES))
class FireActionView(_FireView):
    model = Action

    def fire_by_hand(self, obj, user, target):
        return firing.fire_action_by_hand(obj, user, target)


class ResumeExecutionView(APIView):
    permission_classes = [CanFire]

    @extend_schema(operation_id="execution_resume", summary="Re-run a failed execution from its failed step",
                   request=None, responses=FIRE_RESPONSES)
    def post(self, request: Request, pk: int) -> Response:
        execution = get_object_or_404(Execution, pk=pk)
        return _fire(lambda: firing.resume_by_hand(execution, request.user))


class NodeCollectionView(APIView):
    permission_classes = [CanManageNodes]

    @extend_schema(operation_id="node_collection", summary="Enable or pause collection from a node",
                   request=CollectionRequestSerializer,
                   responses={200: NodeSerializer, 400: BAD_PARAMETER, 403: FORBIDDEN, 404: NOT_FOUND})
    def post(self, request: Request, pk: int) -> Response:
        node = get_object_or_404(Node.objects.select_related("cluster"), pk=pk)
        body = CollectionRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        firing.set_collection(node, body.validated_data["enabled"], request.user)
        return Response({"id": node.pk, "name": node.name, "cluster": node.cluster.name, "state": node.state,
                         "collection_enabled": node.collection_enabled})


def api_not_found(request, *args, **kwargs):
    """Anything under /api/v1/ that matches no endpoint (e.g. a negative id)
    answers in JSON like the rest of the API, not with Django's HTML page."""
    from django.http import JsonResponse

    return JsonResponse({"detail": f"no API endpoint at {request.path}"}, status=404)
