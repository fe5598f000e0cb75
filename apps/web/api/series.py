"""GET /api/v1/series: one counter on some nodes over a time range."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.monitoring import series as svc
from apps.monitoring import sources
from apps.web.access import CanView

from .schema import BAD_PARAMETER, ID_SCHEMA
from .series_serializers import ErrorSerializer, SeriesSerializer


def counter_info(kind: svc.CounterKind, counter) -> dict:
    return {
        "id": counter.pk, "kind": kind.name, "name": counter.name, "cluster": kind.cluster(counter).name,
        "jvm": kind.endpoint_name(counter), "unit": counter.unit, "threshold": counter.threshold,
        "comparison": counter.comparison, "interval_s": counter.interval_s,
    }


def series_payload(result: svc.SeriesResult) -> dict:
    return {
        "counter": counter_info(result.kind, result.counter),
        "start": result.start,
        "end": result.end,
        "step_s": result.step_s,
        "stamps": [int(s.timestamp()) for s in result.stamps],
        "series": [{"node_id": n.node_id, "node": n.node, "values": n.values} for n in result.nodes],
    }


def query_series(params) -> svc.SeriesResult:
    """Parse the query (``params`` is a QueryDict) and read the series.
    Raises SeriesQueryError naming the bad parameter."""
    unknown = sorted(set(params) - {"kind", "counter", "node", "range", "from", "to"})
    if unknown:
        raise svc.SeriesQueryError(unknown[0], f"unknown parameter {unknown[0]!r}")
    if not params.get("kind"):
        raise svc.SeriesQueryError("kind", f"kind is required ({' or '.join(sources.kinds())})")
    kind = svc.counter_kind(params["kind"])
    counter_ids = svc.parse_ids("counter", params.getlist("counter"))
    if len(counter_ids) != 1:
        raise svc.SeriesQueryError("counter", "give exactly one counter id")
    counter = svc.get_counter(kind, counter_ids[0])
    start, end = svc.parse_time_range(params.get("range"), params.get("from"), params.get("to"))
    nodes = svc.nodes_for(kind.cluster_id(counter), svc.parse_ids("node", params.getlist("node")))
    return svc.read_series(kind, counter, nodes, start, end)


class SeriesView(APIView):
    permission_classes = [CanView]

    @extend_schema(
        operation_id="series",
        summary="Samples of one counter on some nodes over a time range",
        description=(
            "Columnar: `stamps` holds the sample times, each series one value per stamp, `null` where "
            "no sample exists (collection failed, node paused, sample expired) — values are never "
            "interpolated. Give `range` or `from`[/`to`]."
        ),
        parameters=[
            OpenApiParameter("kind", str, required=True, enum=sources.kinds()),
            OpenApiParameter("counter", ID_SCHEMA, required=True,
                             description="The counter's id."),
            OpenApiParameter("node", {"type": "array", "items": ID_SCHEMA},
                             explode=True, description="Node ids; default every node of the counter's cluster "
                                                       "that is not terminated."),
            OpenApiParameter("range", str, enum=list(svc.RANGES), description="A range ending now (default 1h)."),
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start of a custom range (ISO 8601)."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="End of a custom range; default now."),
        ],
        responses={
            200: SeriesSerializer,
            400: BAD_PARAMETER,
            503: OpenApiResponse(ErrorSerializer, description="The sample store (memcached) is unreachable."),
        },
    )
    def get(self, request: Request) -> Response:
        try:
            result = query_series(request.query_params)
        except svc.SeriesQueryError as exc:
            raise ValidationError({exc.param: [exc.message]}) from None
        except svc.store_errors() as exc:
            return Response({"detail": f"sample store unavailable: {exc}"}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(SeriesSerializer(series_payload(result)).data)
