"""Reading counter series for graphs, the data API and /metrics.

A graph asks for one counter on some nodes over a time range. The keys of
every stamp in the range are computed (memcached cannot scan) and read in one
batched ``get_many`` through the sample store; a stamp without a sample is
``None`` in the answer, never filled in. Long ranges at short intervals are
thinned to at most ``MAX_POINTS`` stamps by reading every k-th stamp of the
counter's grid: each point shown is still a real sample, and the answer says
the step it used.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from django.utils import timezone as dj_timezone
from django.utils.dateparse import parse_datetime

from apps.monitoring import sources
from apps.monitoring.samples import SeriesRef, floor_stamp, stamps_between

#: Named ranges offered by the graph page and the API (``range=``).
RANGES: dict[str, int] = {"15m": 15 * 60, "1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600}
DEFAULT_RANGE = "1h"
#: Longest custom range (``from``/``to``); older samples have expired anyway.
MAX_SPAN = timedelta(days=31)
#: Most stamps per series in one answer (a wider range is thinned, see above).
MAX_POINTS = 1500
#: Stamps looked at for a counter's newest sample: the current one may not be
#: written yet, and a round may have been missed; older than this is "no sample".
LATEST_STAMPS = 6
#: A newest sample older than this many intervals is shown as stale (normally
#: it is less than two old: the current round may not have been written yet).
STALE_AFTER_INTERVALS = 3


class SeriesQueryError(ValueError):
    """A bad query parameter; ``param`` names it for the 400 answer."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


# ---------------------------------------------------------------------------
# Counter kinds: the registered sources, looked up by name (no if/else per kind)
# ---------------------------------------------------------------------------
#: What a series belongs to: a counter source (apps.monitoring.sources).
CounterKind = sources.CounterSource


class _RegisteredKinds(Mapping):
    """The registered sources by kind, read live (sources register in their
    AppConfig.ready, after this module may have been imported)."""

    def __getitem__(self, kind: str) -> CounterKind:
        try:
            return sources.get(kind)
        except sources.UnknownSource:
            raise KeyError(kind) from None

    def __iter__(self) -> Iterator[str]:
        return iter(sources.kinds())

    def __len__(self) -> int:
        return len(sources.kinds())


COUNTER_KINDS: Mapping[str, CounterKind] = _RegisteredKinds()


def counter_kind(name: str) -> CounterKind:
    try:
        return sources.get(name)
    except sources.UnknownSource as exc:
        raise SeriesQueryError("kind", str(exc)) from None


def counters_of_cluster(cluster_id: int) -> list[tuple[CounterKind, Any]]:
    """Every counter of a cluster, source by source (SSH first, then JMX by JVM)."""
    out: list[tuple[CounterKind, Any]] = []
    for kind in sources.all():
        qs = kind.counters().filter(**{f"{kind.cluster_path}_id": cluster_id})
        out.extend((kind, c) for c in qs)
    return out


# ---------------------------------------------------------------------------
# Parsing a query
# ---------------------------------------------------------------------------
def _parse_when(param: str, text: str) -> datetime:
    value = parse_datetime(text.strip()) if text else None
    if value is None:
        raise SeriesQueryError(param, f"{text!r} is not an ISO 8601 date and time, e.g. 2026-01-31T12:00:00Z")
    if dj_timezone.is_naive(value):
        value = value.replace(tzinfo=timezone.utc)  # documented: naive times are UTC
    return value


def parse_time_range(range_name: str | None, start_text: str | None, end_text: str | None,
                     now: datetime | None = None, max_span: timedelta = MAX_SPAN,
                     ranges: Mapping[str, int] = RANGES) -> tuple[datetime, datetime]:
    """``range`` (15m, 1h, 6h, 24h) ending now, or ``from`` [``to``] (ISO 8601;
    ``to`` defaults to now). Giving both forms is an error, not a guess.
    Readers of longer history (apps.history) pass their own ``ranges`` and
    ``max_span``."""
    now = now or dj_timezone.now()
    if start_text or end_text:
        if range_name:
            raise SeriesQueryError("range", "give either range or from/to, not both")
        if not start_text:
            raise SeriesQueryError("from", "from is required when to is given")
        start = _parse_when("from", start_text)
        end = _parse_when("to", end_text) if end_text else now
        if end <= start:
            raise SeriesQueryError("to", "to must be later than from")
        if end - start > max_span:
            raise SeriesQueryError("from", f"the range may span at most {max_span.days} days")
        return start, end
    name = range_name or DEFAULT_RANGE
    if name not in ranges:
        raise SeriesQueryError("range", f"unknown range {name!r}; use one of: {', '.join(ranges)}")
    return now - timedelta(seconds=ranges[name]), now


def parse_ids(param: str, values: Iterable[str]) -> list[int]:
    ids = []
    for raw in values:
        for part in str(raw).split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit() or len(part) > 18:  # ids are 64-bit (BigAutoField)
                raise SeriesQueryError(param, f"{part!r} is not an id (a positive whole number)")
            ids.append(int(part))
    return ids


def get_counter(kind: CounterKind, counter_id: int):
    counter = kind.counters().filter(pk=counter_id).first()
    if counter is None:
        raise SeriesQueryError("counter", f"no {kind.label} counter with id {counter_id}")
    return counter


def nodes_for(cluster_id: int, node_ids: Sequence[int] | None) -> list:
    """The requested nodes (all of them must be in the cluster), or by
    default every node of the cluster that is not terminated."""
    from apps.control.choices import NodeState
    from apps.control.models import Node

    if not node_ids:
        return list(Node.objects.filter(cluster_id=cluster_id).exclude(state=NodeState.TERMINATED))
    found = Node.objects.in_bulk(list(node_ids))
    bad = [i for i in node_ids if i not in found or found[i].cluster_id != cluster_id]
    if bad:
        raise SeriesQueryError("node", f"node id(s) {', '.join(map(str, bad))} not in the counter's cluster")
    return [found[i] for i in dict.fromkeys(node_ids)]


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------
@dataclass
class NodeSeries:
    node_id: int
    node: str
    values: list[float | None]


@dataclass
class SeriesResult:
    kind: CounterKind
    counter: Any
    start: datetime
    end: datetime
    step_s: int
    stamps: list[datetime]
    nodes: list[NodeSeries] = field(default_factory=list)


def step_for(interval_s: int, start: datetime, end: datetime, max_points: int = MAX_POINTS) -> int:
    """A multiple of the interval giving at most ``max_points`` stamps. The
    stamps of that grid (epoch multiples of the step) are stamps of the
    counter's own grid, so each one is a real sample key."""
    count = (end - start).total_seconds() / interval_s + 1
    return interval_s * max(1, math.ceil(count / max_points))


def read_series(kind: CounterKind, counter, nodes: Sequence, start: datetime, end: datetime,
                store=None, max_points: int = MAX_POINTS) -> SeriesResult:
    """One counter on ``nodes`` over [start, end]. Raises the store's
    ``StoreUnavailable`` when memcached cannot be read at all."""
    store = store or default_store()
    step = step_for(counter.interval_s, start, end, max_points)
    refs = [kind.series(counter, node.pk) for node in nodes]
    columns = store.read_many(refs, step, start, end) if refs else {}
    stamps = stamps_between(start, end, step)  # the store reads the same grid
    result = SeriesResult(kind, counter, start, end, step, stamps)
    for node, ref in zip(nodes, refs):
        by_stamp = dict(columns.get(ref, []))
        result.nodes.append(NodeSeries(node.pk, node.name, [by_stamp.get(s) for s in stamps]))
    return result


def latest_samples(pairs: Sequence[tuple[SeriesRef, int]], now: datetime | None = None,
                   store=None) -> dict[SeriesRef, tuple[datetime, float]]:
    """The newest sample of each series among its last ``LATEST_STAMPS``
    stamps, all read in one ``get_many``. A series without one is absent."""
    store = store or default_store()
    now = now or dj_timezone.now()
    wanted: dict[str, tuple[SeriesRef, datetime]] = {}
    for ref, interval in pairs:
        newest = floor_stamp(now, interval)
        for back in range(LATEST_STAMPS):
            stamp = newest - timedelta(seconds=back * interval)
            wanted[ref.sample_key(stamp)] = (ref, stamp)
    if not wanted:
        return {}
    values = store.get_values(list(wanted))
    latest: dict[SeriesRef, tuple[datetime, float]] = {}
    for key, value in values.items():
        if value is None:
            continue
        ref, stamp = wanted[key]
        if ref not in latest or latest[ref][0] < stamp:
            latest[ref] = (stamp, value)
    return latest


#: Stamps ``newest_values`` reads first: the current one (maybe not written
#: yet) and the one before. Only series without a sample among them are
#: looked up further back, so a healthy fleet costs two keys per series.
FIRST_LOOK = 2


def newest_values(counters: Sequence[tuple[CounterKind, Any]], node_ids: Sequence[int], now: datetime | None = None,
                  store=None) -> dict[tuple[str, int], dict[int, tuple[datetime, float]]]:
    """What ``latest_samples`` finds, for every counter on every node, by
    (kind, counter id) then node id, at fleet size: keys are built from the
    count key and each stamp's text once, and the newest ``FIRST_LOOK``
    stamps are read first. Raises the store's ``StoreUnavailable``."""
    from apps.monitoring.samples import format_stamp

    store = store or default_store()
    now = now or dj_timezone.now()
    found: dict[tuple[str, int], dict[int, tuple[datetime, float]]] = {}
    todo = []
    for kind, counter in counters:
        endpoint = kind.endpoint_id(counter)
        newest = floor_stamp(now, counter.interval_s)
        stamps = [newest - timedelta(seconds=back * counter.interval_s) for back in range(LATEST_STAMPS)]
        texts = [(s, format_stamp(s)) for s in stamps]
        found[(kind.name, counter.pk)] = {}
        todo.extend(((kind.name, counter.pk), node, kind.count_key(node, counter.pk, endpoint), texts)
                    for node in node_ids)
    for window in (slice(0, FIRST_LOOK), slice(FIRST_LOOK, LATEST_STAMPS)):
        wanted = {f"{base}.{text}": (key, node, stamp) for key, node, base, texts in todo
                  for stamp, text in texts[window]}
        if not wanted:
            break
        for sample_key, value in store.get_values(list(wanted)).items():
            if value is None:
                continue
            key, node, stamp = wanted[sample_key]
            held = found[key].get(node)
            if held is None or held[0] < stamp:
                found[key][node] = (stamp, value)
        todo = [item for item in todo if item[1] not in found[item[0]]]
    return found


#: Keys one series answer may read (stamps x nodes): on a large cluster a
#: range is thinned further than MAX_POINTS, the same way (every k-th stamp);
#: up to 100 nodes MAX_POINTS is what limits.
BAND_KEYS = 150_000
#: Fewest stamps a band is thinned to, whatever the number of nodes.
BAND_MIN_POINTS = 30
#: Most worst nodes drawn over a band.
MAX_WORST = 20


def band_points(nodes: int) -> int:
    return max(BAND_MIN_POINTS, min(MAX_POINTS, BAND_KEYS // max(1, nodes)))


@dataclass
class Band:
    """The nodes' spread at each stamp: min, median (nearest rank: a value
    some node has) and max over the nodes with a sample; None where none has."""

    nodes: int
    min: list[float | None]
    p50: list[float | None]
    max: list[float | None]
    count: list[int]  # nodes with a sample at the stamp


def band_of(result: SeriesResult) -> Band:
    band = Band(len(result.nodes), [], [], [], [])
    for i in range(len(result.stamps)):
        values = sorted(v for n in result.nodes if (v := n.values[i]) is not None)
        band.count.append(len(values))
        band.min.append(values[0] if values else None)
        band.p50.append(values[math.ceil(len(values) / 2) - 1] if values else None)
        band.max.append(values[-1] if values else None)
    return band


def worst_nodes(result: SeriesResult, count: int, comparison: str) -> list[NodeSeries]:
    """The ``count`` nodes whose newest sample in the range is worst: highest
    for a counter breaching upwards (> or >=), lowest otherwise; nodes with no
    sample in the range are never among them."""
    newest = []
    for node in result.nodes:
        last = next((v for v in reversed(node.values) if v is not None), None)
        if last is not None:
            newest.append((-last if comparison.startswith(">") else last, node.node, node))
    newest.sort(key=lambda item: (item[0], item[1]))
    return [node for _, _, node in newest[:count]]


def default_store():
    from apps.monitoring.store import SampleStore

    return SampleStore.from_settings()


def store_errors() -> tuple[type[BaseException], ...]:
    """What the store raises when memcached cannot be read."""
    from apps.monitoring.store import StoreUnavailable

    return (StoreUnavailable,)
