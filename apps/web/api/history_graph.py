"""GET /api/v1/summaries/graph: a long-range graph of one counter from the
persisted summaries, in the columnar shape of /api/v1/series?aggregate=band
(so static/monitoring/graph.js draws it as it draws a band): per period the
nodes' average as the centre line and their min–max as the band.

The step is chosen from the range (apps.history.read.graph_step: at most
1,500 points, minutes while the range is within the minute table's retention
and the step is at most 10 minutes, else hours). Summaries are written as the
samples are collected, so the newest period is as current as memcached's
samples; a period that has no summary rows while memcached still holds its
samples (history switched on recently, a summarise task lagging) is filled
from those samples (apps.history.raw_fill), so a range straddling raw and
summarised data has no hole. ``raw`` says how many periods were filled and
whether memcached could be read.

Which source the graph page draws a range from is decided by
``from_summaries`` (the page gets its two limits in its config and applies
the same rule in graph.js)."""
from __future__ import annotations

from datetime import datetime, timedelta

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.history import partitions
from apps.history.models import MinuteSummary
from apps.history.raw_fill import fill_combined
from apps.history.read import graph_step, read_combined
from apps.monitoring import series as svc
from apps.monitoring import sources
from apps.web.access import CanView

from .schema import BAD_PARAMETER, ID_SCHEMA
from .series import counter_info
from .series_serializers import CounterInfoSerializer
from .summaries import RANGES, RawFillSerializer, parse_query

GRAPH_PARAMS = {"kind", "counter", "node", "range", "from", "to"}


def graph_payload(params) -> dict:
    kind, counter, start, end, nodes, spec = parse_query(params, GRAPH_PARAMS)
    step = graph_step(start, end, partitions.horizon(MinuteSummary))
    found = read_combined(spec, [n.pk for n in nodes], start, end, step)
    first = int(start.timestamp()) // step * step
    stamps = list(range(first, int(end.timestamp()) + 1, step))
    refs = {n.pk: kind.series(counter, n.pk) for n in nodes}
    raw, with_samples = fill_combined(found, refs, counter.interval_s, stamps, step)
    band: dict = {"nodes": len(nodes), "min": [], "p50": [], "max": [], "count": [], "samples": [],
                  "centre": "average"}
    for stamp in stamps:
        s = found.get(stamp)
        band["min"].append(s.min if s else None)
        band["p50"].append(s.avg if s else None)
        band["max"].append(s.max if s else None)
        band["samples"].append(s.count if s else 0)
        band["count"].append(with_samples.get(stamp, len(nodes)) if s else 0)
    return {"counter": counter_info(kind, counter), "start": start, "end": end, "step_s": step,
            "resolution": "1h" if step % 3600 == 0 else "1m", "stamps": stamps, "series": [], "band": band,
            "raw": raw.as_dict()}


class GraphBandSerializer(serializers.Serializer):
    nodes = serializers.IntegerField()
    min = serializers.ListField(child=serializers.FloatField(allow_null=True))
    p50 = serializers.ListField(child=serializers.FloatField(allow_null=True),
                                help_text="Per period: the average of every sample of the nodes.")
    max = serializers.ListField(child=serializers.FloatField(allow_null=True))
    count = serializers.ListField(child=serializers.IntegerField(),
                                  help_text="Per period: the nodes when it has samples, else 0.")
    samples = serializers.ListField(child=serializers.IntegerField(), help_text="Samples per period.")
    centre = serializers.CharField(help_text="What p50 holds here: the average.")


class HistoryGraphSerializer(serializers.Serializer):
    counter = CounterInfoSerializer()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    step_s = serializers.IntegerField(help_text="Period length: whole minutes or whole hours.")
    resolution = serializers.ChoiceField(choices=["1m", "1h"], help_text="The summary table read.")
    stamps = serializers.ListField(child=serializers.IntegerField(), help_text="Period starts (epoch s).")
    series = serializers.ListField(child=serializers.DictField(), help_text="Always empty (band only).")
    band = GraphBandSerializer()
    raw = RawFillSerializer()


class HistoryGraphView(APIView):
    permission_classes = [CanView]

    @extend_schema(
        operation_id="summaries_graph",
        summary="A long-range graph of one counter: the nodes' average and min–max per period",
        parameters=[
            OpenApiParameter("kind", str, required=True, enum=sources.kinds()),
            OpenApiParameter("counter", ID_SCHEMA, required=True, description="The counter's id."),
            OpenApiParameter("node", {"type": "array", "items": ID_SCHEMA}, explode=True,
                             description="Node ids; default every node of the cluster that is not terminated."),
            OpenApiParameter("range", str, enum=list(RANGES), description="A range ending now (default 1h)."),
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start of a custom range (ISO 8601)."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="End of a custom range; default now."),
        ],
        responses={200: HistoryGraphSerializer, 400: BAD_PARAMETER},
    )
    def get(self, request: Request) -> Response:
        try:
            payload = graph_payload(request.query_params)
        except svc.SeriesQueryError as exc:
            raise ValidationError({exc.param: [exc.message]}) from None
        return Response(HistoryGraphSerializer(payload).data)


#: Ranges longer than this are drawn from the summaries by the graph page.
RAW_UP_TO = timedelta(days=1)


def from_summaries(start: datetime, end: datetime, now: datetime, retention_s: int) -> bool:
    """The graph page's rule for a custom range: from the summaries when it is
    longer than RAW_UP_TO (raw samples would be thinned anyway) or starts
    before memcached's retention (SAMPLE_RETENTION_S: /api/v1/series would
    find nothing there); else every raw sample from /api/v1/series. graph.js
    applies it with the config's ``rawUpToS`` and ``rawFromS``."""
    return end - start > RAW_UP_TO or start < now - timedelta(seconds=retention_s)
