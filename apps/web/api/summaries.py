"""GET /api/v1/summaries: per-period figures of one counter on some nodes,
from the persisted summaries (apps.history), over ranges far beyond
memcached's retention; ``format=csv`` for spreadsheets.

Parameters are validated as /api/v1/series validates them (the same parsing
functions, the same messages), with longer ranges and a ``step``. A node's
period without summary rows whose samples memcached still holds is filled
from them (apps.history.raw_fill); ``raw`` says how many were."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import renderers, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.history.raw_fill import fill_per_node
from apps.history.read import STEPS, SeriesSpec, floor_epoch, read_periods
from apps.monitoring import series as svc
from apps.monitoring import sources
from apps.web.access import CanView

from .schema import BAD_PARAMETER, ID_SCHEMA
from .series import counter_info, query_counter, time_range
from .series_serializers import CounterInfoSerializer

#: Named ranges ending now (``range=``): the series API's and longer ones.
RANGES = {**svc.RANGES, "7d": 7 * 86400, "30d": 30 * 86400, "1y": 365 * 86400}
DEFAULT_STEP = "1h"
#: Most periods per node in one answer (a finer step over a long range is refused).
MAX_PERIODS = 20_000
PARAMS = {"kind", "counter", "node", "range", "from", "to", "step", "format"}
CSV_COLUMNS = ("node_id", "node", "start", "count", "min", "max", "avg", "stddev")


def max_span() -> timedelta:
    return timedelta(days=int(settings.HISTORY_HOUR_RETENTION_DAYS))


def parse_step(params, start: datetime, end: datetime) -> tuple[str, int]:
    name = params.get("step") or DEFAULT_STEP
    if name not in STEPS:
        raise svc.SeriesQueryError("step", f"unknown step {name!r}; use one of: {', '.join(STEPS)}")
    periods = int((end - start).total_seconds() // STEPS[name]) + 1
    if periods > MAX_PERIODS:
        raise svc.SeriesQueryError("step", f"step {name} over this range gives {periods} periods per node; "
                                           f"at most {MAX_PERIODS}: use a longer step or a shorter range")
    return name, STEPS[name]


def parse_query(params, allowed: set[str]):
    """What a summary query names, validated as the series API validates it:
    (kind, counter, start, end, nodes, spec). Raises SeriesQueryError."""
    kind, counter = query_counter(params, allowed)
    start, end = time_range(params, max_span=max_span(), ranges=RANGES)
    cluster_id = kind.cluster_id(counter)
    nodes = svc.nodes_for(cluster_id, svc.parse_ids("node", params.getlist("node")))
    spec = SeriesSpec(kind.name, counter.pk, kind.endpoint_id(counter) or 0, cluster_id)
    return kind, counter, start, end, nodes, spec


def query_summaries(params) -> dict:
    """Parse the query and read the summaries; raises SeriesQueryError."""
    kind, counter, start, end, nodes, spec = parse_query(params, PARAMS)
    step, step_s = parse_step(params, start, end)
    found = read_periods(spec, [n.pk for n in nodes], start, end, step_s)
    refs = {n.pk: kind.series(counter, n.pk) for n in nodes}
    periods = range(floor_epoch(start, step_s), int(end.timestamp()) + 1, step_s)
    raw = fill_per_node(found, refs, counter.interval_s, periods, step_s)
    series = []
    for node in nodes:
        periods = [{"start": period, "count": s.count, "min": s.min, "max": s.max, "avg": s.avg,
                    "stddev": s.stddev} for period, s in sorted(found[node.pk].items())]
        series.append({"node_id": node.pk, "node": node.name, "periods": periods})
    return {"counter": counter_info(kind, counter), "start": start, "end": end, "step": step,
            "step_s": step_s, "series": series, "raw": raw.as_dict()}


class CSVRenderer(renderers.BaseRenderer):
    """One row per node and period (``format=csv``); an error stays JSON-like text."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if not isinstance(data, dict) or "series" not in data:
            writer.writerow(["error"])
            writer.writerow([str(data)])
            return out.getvalue().encode()
        writer.writerow(CSV_COLUMNS)
        for node in data["series"]:
            for p in node["periods"]:
                start = datetime.fromtimestamp(p["start"], tz=timezone.utc).isoformat().replace("+00:00", "Z")
                writer.writerow([node["node_id"], node["node"], start, p["count"], repr(p["min"]),
                                 repr(p["max"]), repr(p["avg"]), repr(p["stddev"])])
        return out.getvalue().encode()


class PeriodSerializer(serializers.Serializer):
    start = serializers.IntegerField(help_text="Period start, seconds since the Unix epoch (UTC).")
    count = serializers.IntegerField(help_text="Samples in the period.")
    min = serializers.FloatField()
    max = serializers.FloatField()
    avg = serializers.FloatField()
    stddev = serializers.FloatField(help_text="Population standard deviation of the period's samples.")


class NodePeriodsSerializer(serializers.Serializer):
    node_id = serializers.IntegerField()
    node = serializers.CharField()
    periods = PeriodSerializer(many=True, help_text="Periods with samples only, oldest first.")


class RawFillSerializer(serializers.Serializer):
    """How periods without summaries were filled from memcached's samples."""

    periods = serializers.IntegerField(
        help_text="Periods without summary rows given figures from the raw samples memcached still holds "
                  "(counted per node in /api/v1/summaries).")
    keys_read = serializers.IntegerField(help_text="Sample keys read from memcached for them.")
    capped = serializers.BooleanField(
        help_text="Older periods without summaries were left unread: HISTORY_RAW_FILL_MAX_KEYS was reached.")
    error = serializers.CharField(allow_null=True,
                                  help_text="Why memcached could not be read (the answer is then the "
                                            "summaries alone), else null.")


class SummariesSerializer(serializers.Serializer):
    counter = CounterInfoSerializer()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    step = serializers.ChoiceField(choices=list(STEPS))
    step_s = serializers.IntegerField()
    series = NodePeriodsSerializer(many=True)
    raw = RawFillSerializer()


class SummariesView(APIView):
    permission_classes = [CanView]
    renderer_classes = [renderers.JSONRenderer, CSVRenderer]

    def perform_content_negotiation(self, request, force=False):
        wanted = request.query_params.get("format")
        if wanted not in (None, "json", "csv"):
            if force:  # answering the error itself: in JSON
                return renderers.JSONRenderer(), renderers.JSONRenderer.media_type
            raise ValidationError({"format": [f"unknown format {wanted!r}; use json or csv"]})
        return super().perform_content_negotiation(request, force)


    @extend_schema(
        operation_id="summaries",
        summary="Per-period count/min/max/avg/stddev of one counter on some nodes",
        description=("From the persisted summaries (README \"History\"): 1-minute periods for "
                     "HISTORY_MINUTE_RETENTION_DAYS, hours for HISTORY_HOUR_RETENTION_DAYS; a day is the merge "
                     "of its hours (exact average and standard deviation). A period without summary rows whose "
                     "samples memcached still holds (SAMPLE_RETENTION_S) is computed from them; `raw` says how "
                     "many were. Periods without samples are left out. `format=csv` answers text/csv, one row per node and period."),
        parameters=[
            OpenApiParameter("kind", str, required=True, enum=sources.kinds()),
            OpenApiParameter("counter", ID_SCHEMA, required=True, description="The counter's id."),
            OpenApiParameter("node", {"type": "array", "items": ID_SCHEMA}, explode=True,
                             description="Node ids; default every node of the counter's cluster that is not "
                                         "terminated."),
            OpenApiParameter("range", str, enum=list(RANGES), description="A range ending now (default 1h)."),
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start of a custom range (ISO 8601)."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="End of a custom range; default now."),
            OpenApiParameter("step", str, enum=list(STEPS), description=f"Period length (default {DEFAULT_STEP})."),
            OpenApiParameter("format", str, enum=["json", "csv"], description="csv: text/csv rows."),
        ],
        responses={200: OpenApiResponse(SummariesSerializer, description="JSON, or text/csv with format=csv"),
                   400: BAD_PARAMETER},
    )
    def get(self, request: Request) -> Response:
        try:
            payload = query_summaries(request.query_params)
        except svc.SeriesQueryError as exc:
            raise ValidationError({exc.param: [exc.message]}) from None
        if request.accepted_renderer.format == "csv":
            return Response(payload)
        return Response(SummariesSerializer(payload).data)
