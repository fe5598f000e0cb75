"""GET /api/v1/series: one counter on some nodes over a time range."""
from __future__ import annotations

from datetime import datetime, timezone

from django.utils import timezone as dj_timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.monitoring import series as svc
from apps.monitoring import sources
from apps.monitoring.counters import config_error
from apps.web.access import CanView

from .schema import BAD_PARAMETER, ID_SCHEMA
from .series_serializers import ErrorSerializer, SeriesSerializer


def counter_info(kind: svc.CounterKind, counter) -> dict:
    return {
        "id": counter.pk, "kind": kind.name, "name": counter.name, "cluster": kind.cluster(counter).name,
        "jvm": kind.endpoint_name(counter), "unit": counter.unit, "threshold": counter.threshold,
        "comparison": counter.comparison, "interval_s": counter.interval_s,
    }


def series_payload(result: svc.SeriesResult, worst: int | None = None) -> dict:
    """``worst``: answer with the band of every node and only the ``worst``
    nodes' series (aggregate=band)."""
    shown, band = result.nodes, None
    if worst is not None:
        spread = svc.band_of(result)
        band = {"nodes": spread.nodes, "min": spread.min, "p50": spread.p50, "max": spread.max,
                "count": spread.count}
        shown = svc.worst_nodes(result, worst, result.counter.comparison)
    return {
        "counter": counter_info(result.kind, result.counter),
        "start": result.start,
        "end": result.end,
        "step_s": result.step_s,
        "stamps": [int(s.timestamp()) for s in result.stamps],
        "series": [{"node_id": n.node_id, "node": n.node, "values": n.values} for n in shown],
        "band": band,
    }


#: Worst nodes drawn over a band unless ``worst`` says otherwise.
DEFAULT_WORST = 5


def parse_aggregate(params) -> int | None:
    """None for a line per node; else how many worst nodes go with the band."""
    aggregate, worst = params.get("aggregate"), params.get("worst")
    if aggregate not in (None, "", "band"):
        raise svc.SeriesQueryError("aggregate", f"{aggregate!r} is not an aggregate; use band")
    if not aggregate:
        if worst:
            raise svc.SeriesQueryError("worst", "worst goes with aggregate=band")
        return None
    if worst in (None, ""):
        return DEFAULT_WORST
    if not worst.isdigit() or len(worst) > 3 or int(worst) > svc.MAX_WORST:
        raise svc.SeriesQueryError("worst", f"worst must be a whole number from 0 to {svc.MAX_WORST}")
    return int(worst)


# Stamps are computed a step past ``to``: keep the whole grid inside what
# Python's datetime can hold (the year 9999 ends it) and after the epoch
# (samples are stored by Unix time). An interval is at most a day.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9998, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
BOUNDS = f"between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)"
MISSING_TO = "to is missing, so the range ends now, which is not later than from"


def time_range(params, **limits) -> tuple[datetime, datetime]:
    """``range`` or ``from``/``to`` as apps.monitoring.series reads them, then
    held within the calendar the sample grid can be computed in. ``limits``
    (max_span, ranges) are parse_time_range's, for longer history."""
    range_name, start_text, end_text = params.get("range"), params.get("from"), params.get("to")
    now = dj_timezone.now()
    try:
        start, end = svc.parse_time_range(range_name, start_text, end_text, now=now, **limits)
    except svc.SeriesQueryError as exc:
        if exc.param == "to" and start_text and not end_text and not range_name:
            raise svc.SeriesQueryError("to", MISSING_TO) from None
        raise
    if start < EARLIEST:
        raise svc.SeriesQueryError("from", f"from must be {BOUNDS}")
    if end > LATEST:
        raise svc.SeriesQueryError("to", f"to must be {BOUNDS}")
    return start, end


def query_counter(params, allowed: set[str]):
    """The (kind, counter) a query names, after refusing parameters outside
    ``allowed``: the checks every per-counter API (series, summaries) shares.
    Raises SeriesQueryError naming the bad parameter."""
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise svc.SeriesQueryError(unknown[0], f"unknown parameter {unknown[0]!r}")
    if not params.get("kind"):
        raise svc.SeriesQueryError("kind", f"kind is required ({' or '.join(sources.kinds())})")
    kind = svc.counter_kind(params["kind"])
    counter_ids = svc.parse_ids("counter", params.getlist("counter"))
    if len(counter_ids) != 1:
        raise svc.SeriesQueryError("counter", "give exactly one counter id")
    counter = svc.get_counter(kind, counter_ids[0])
    if error := config_error(counter):
        raise svc.SeriesQueryError("counter", f"counter {counter.name} cannot be read: {error} (fix it in admin)")
    return kind, counter


def query_series(params) -> tuple[svc.SeriesResult, int | None]:
    """Parse the query (``params`` is a QueryDict) and read the series, with
    parse_aggregate's answer. Raises SeriesQueryError naming the bad parameter."""
    kind, counter = query_counter(params, {"kind", "counter", "node", "range", "from", "to", "aggregate", "worst"})
    worst = parse_aggregate(params)
    start, end = time_range(params)
    nodes = svc.nodes_for(kind.cluster_id(counter), svc.parse_ids("node", params.getlist("node")))
    points = svc.band_points(len(nodes))  # 1,500 up to 100 nodes; fewer beyond, so one answer stays bounded
    return svc.read_series(kind, counter, nodes, start, end, max_points=points), worst


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
            OpenApiParameter("aggregate", str, enum=["band"],
                             description="band: the nodes' min, median and max per stamp (`band`) and only the "
                                         "worst nodes' series (for clusters too large for a line per node; "
                                         "as in lines mode, a range is thinned so that at most "
                                         f"{svc.BAND_KEYS} samples are read)."),
            OpenApiParameter("worst", {"type": "integer", "minimum": 0, "maximum": svc.MAX_WORST},
                             description=f"With aggregate=band: how many worst nodes' series (newest value "
                                         f"furthest past the threshold's side; default {DEFAULT_WORST})."),
        ],
        responses={
            200: SeriesSerializer,
            400: BAD_PARAMETER,
            503: OpenApiResponse(ErrorSerializer, description="The sample store (memcached) is unreachable."),
        },
    )
    def get(self, request: Request) -> Response:
        try:
            result, worst = query_series(request.query_params)
        except svc.SeriesQueryError as exc:
            raise ValidationError({exc.param: [exc.message]}) from None
        except svc.store_errors() as exc:
            return Response({"detail": f"sample store unavailable: {exc}"}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(SeriesSerializer(series_payload(result, worst)).data)
