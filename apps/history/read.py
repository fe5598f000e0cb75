"""Reading the summaries back: one counter on some nodes, per period.

A period longer than the stored resolution is the merge of the rows it
covers (an hour from minutes, a day from hours): counts and sums add up, so
its average and standard deviation are exact, not averages of averages. A
period whose step is a whole number of hours is read from the hour table,
anything else from the minute table. Each query reads one database: the one
holding the counter's cluster (apps.history.placement).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from .models import HourSummary, MinuteSummary
from .placement import database_for
from .summary import Summary

#: Named steps of the API (``step=``), in seconds.
STEPS = {"1m": 60, "1h": 3600, "1d": 86400}


@dataclass(frozen=True)
class SeriesSpec:
    """Which series to read: a counter (by source kind and id, with its
    endpoint id or 0) of a cluster, on some nodes."""

    kind: str
    counter_id: int
    endpoint_id: int
    cluster_id: int


def model_for(step_s: int):
    if step_s <= 0 or step_s % 60:
        raise ValueError(f"a summary step is a whole number of minutes, not {step_s} s")
    return HourSummary if step_s % 3600 == 0 else MinuteSummary


def floor_epoch(when: datetime, step_s: int) -> int:
    epoch = int(when.timestamp())
    return epoch - epoch % step_s


def read_periods(spec: SeriesSpec, node_ids: Sequence[int], start: datetime, end: datetime,
                 step_s: int) -> dict[int, dict[int, Summary]]:
    """Node id -> {period start (epoch s) -> summary} for the periods that
    begin in [floor(start), end]. A node or period without data is absent."""
    model = model_for(step_s)
    first = datetime.fromtimestamp(floor_epoch(start, step_s), tz=timezone.utc)
    rows = (model.objects.using(database_for(spec.cluster_id))
            .filter(kind=spec.kind, counter_id=spec.counter_id, endpoint_id=spec.endpoint_id,
                    node_id__in=list(node_ids), bucket__gte=first, bucket__lte=end)
            .values_list("node_id", "bucket", "count", "min", "max", "sum", "sumsq", "last", "last_stamp"))
    out: dict[int, dict[int, Summary]] = {node: {} for node in node_ids}
    for node, bucket, count, low, high, total, squares, last, last_stamp in rows.iterator(chunk_size=5000):
        period = floor_epoch(bucket, step_s)
        summary = Summary(count, low, high, total, squares, last, int(last_stamp.timestamp()))
        held = out[node].get(period)
        if held is None:
            out[node][period] = summary
        else:
            held.merge(summary)
    return out


def combine(per_node: dict[int, dict[int, Summary]]) -> dict[int, Summary]:
    """The nodes' summaries merged per period (a cluster-wide figure)."""
    out: dict[int, Summary] = {}
    for periods in per_node.values():
        for period, summary in periods.items():
            held = out.get(period)
            if held is None:
                out[period] = Summary(**vars(summary))
            else:
                held.merge(summary)
    return out


def read_combined(spec: SeriesSpec, node_ids: Sequence[int], start: datetime, end: datetime,
                  step_s: int) -> dict[int, Summary]:
    """The nodes' summaries merged per period (a cluster-wide band), summed
    across nodes by the database (one row per stored period), then folded into
    ``step_s`` periods here: a 30-day graph of a 100-node cluster reads 720
    rows, not 72,000."""
    from django.db.models import Max, Min, Sum

    model = model_for(step_s)
    first = datetime.fromtimestamp(floor_epoch(start, step_s), tz=timezone.utc)
    rows = (model.objects.using(database_for(spec.cluster_id))
            .filter(kind=spec.kind, counter_id=spec.counter_id, endpoint_id=spec.endpoint_id,
                    node_id__in=list(node_ids), bucket__gte=first, bucket__lte=end)
            .values("bucket").order_by()
            .annotate(n=Sum("count"), lo=Min("min"), hi=Max("max"), total=Sum("sum"), squares=Sum("sumsq")))
    out: dict[int, Summary] = {}
    for row in rows:
        period = floor_epoch(row["bucket"], step_s)
        # "last" means nothing across nodes: the period's average stands in.
        summary = Summary(row["n"], row["lo"], row["hi"], row["total"], row["squares"],
                          row["total"] / row["n"], period)
        held = out.get(period)
        if held is None:
            out[period] = summary
        else:
            held.merge(summary)
    return out


#: Most points a long-range graph draws.
GRAPH_POINTS = 1500
#: Past this step a graph reads hours (finer would read too many minute rows).
MINUTE_STEP_LIMIT_S = 600


def graph_step(start: datetime, end: datetime, minute_horizon: datetime) -> int:
    """The step of a long-range graph: at most GRAPH_POINTS periods, whole
    minutes read from the minute table while the range is within its
    retention and the step small, else whole hours."""
    span = max(60.0, (end - start).total_seconds())
    wanted = span / GRAPH_POINTS
    if wanted <= MINUTE_STEP_LIMIT_S and start >= minute_horizon:
        return max(60, -(-int(wanted) // 60) * 60)
    return max(3600, -(-int(wanted) // 3600) * 3600)
