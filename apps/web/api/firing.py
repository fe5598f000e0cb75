"""Firing and node management in the data API (POST /api/v1/triggers/<id>/fire,
/actions/<id>/fire, /executions/<id>/resume, /nodes/<id>/collection): the
same functions as the console's confirmation pages (apps/web/firing.py).

Firing needs ``control.fire_trigger`` (and ``control.manage_nodes`` for
DeployEc2Node/RemoveEc2Node); session-authenticated POSTs need Django's CSRF
token, token-authenticated ones do not (DRF's rules).
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.actions.models import Action
from apps.control.models import Cluster, Execution, Node, Trigger
from apps.web import firing
from apps.web.access import CanFire, CanManageNodes
from apps.web.filters import execution_rows

from .schema import BAD_PARAMETER, CONFLICT, FORBIDDEN, NOT_FOUND
from .serializers import (
    CollectionRequestSerializer,
    ExecutionDetailSerializer,
    FireRequestSerializer,
    NodeSerializer,
)


def _target(cluster: Cluster, node_id: int | None) -> Node | None:
    if node_id is None:
        return None
    node = Node.objects.filter(pk=node_id, cluster=cluster).first()
    if node is None:
        raise ValidationError({"target_node": [f"no node with id {node_id} in cluster {cluster.name!r}"]})
    return node


def _created(execution: Execution) -> Response:
    execution = execution_rows().get(pk=execution.pk)
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
        return firing.fire_trigger_by_hand(obj, user, target, via="api")


@extend_schema_view(post=extend_schema(
    operation_id="action_fire", summary="Run one action now (recorded as fired by you)",
    request=FireRequestSerializer, responses=FIRE_RESPONSES))
class FireActionView(_FireView):
    model = Action

    def fire_by_hand(self, obj, user, target):
        return firing.fire_action_by_hand(obj, user, target, via="api")


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

