"""Per-node collection health: last success, last error, consecutive failures.

Kept for each collection *endpoint* (a node's SSH; a node's JVM) and each
series (a counter on a node), for every counter source alike: collectors
return Samples and CollectionErrors, and ``record_results`` is all a source
needs to call.

Why the database, and how it is spared:

* The console must show why a node is failing exactly when things are going
  wrong, and memcached going down (or restarting and forgetting) is one of
  those times. Health kept only in memcached would vanish with the samples.
* Consecutive failures must be exact across worker processes: a node's
  ticks land on any worker, so a per-process counter would be wrong, and a
  shared one needs a shared store.
* Writes are what a database pays for, so a row is written only when its
  state changes (a failure, a recovery, another error message) or, while
  nothing changes, at most every HEARTBEAT_S seconds to move
  ``last_success_at`` on. 1,000 healthy counters every 5 s cost one write per
  row per minute (~17 rows/s, batched into one upsert per call), instead of
  200 writes/s. Each call reads its rows once (one indexed SELECT); reads do
  not block writers (PostgreSQL MVCC, SQLite WAL).
* The price: ``last_success_at`` of a healthy row may be up to HEARTBEAT_S
  old, and two overlapping rounds of the same node may lose one increment
  of the failure count. Failing rows are written every round (their count
  changes), which is bounded by the number of failing series.

An endpoint fails in a round when it yields no sample at all (unreachable,
login refused, JVM down); a round with at least one sample is a success for
the endpoint, whatever individual counters did (they have their own rows).
So a node whose one counter prints text while the others collect is
"degraded", not "failing" (NodeHealth), and its error names that counter.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from django.db import DatabaseError, connections, router, transaction

from apps.monitoring.samples import CollectionError, Sample, SeriesRef

log = logging.getLogger(__name__)

HEARTBEAT_S = 60
MAX_MESSAGE = 1000

# (kind, node_id, jvm_id or 0, counter_id or 0): 0 stands for "not a JVM" /
# "the endpoint as a whole", as in the model's unique constraint.
Scope = tuple[str, int, int, int]


@dataclass(frozen=True)
class Health:
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str = ""
    last_error_output: str = ""
    consecutive_failures: int = 0

    @property
    def ok(self) -> bool:
        return self.consecutive_failures == 0

    @property
    def seen(self) -> bool:
        return self.last_success_at is not None or self.last_error_at is not None


@dataclass
class NodeReport:
    """A node's health by scope: its endpoints ((kind, None) for the node
    itself, (kind, endpoint id) for e.g. a JVM) and its series."""

    node_id: int
    endpoints: dict[tuple[str, int | None], Health] = field(default_factory=dict)
    series: dict[SeriesRef, Health] = field(default_factory=dict)

    @property
    def scopes(self) -> list[Health]:
        return [*self.endpoints.values(), *self.series.values()]

    @property
    def failing(self) -> bool:
        return any(not h.ok for h in self.scopes)

    @property
    def last_error(self) -> Health | None:
        """The most recent error anywhere on the node (None if there never was one)."""
        errored = [h for h in self.scopes if h.last_error_at]
        return max(errored, key=lambda h: h.last_error_at) if errored else None


#: How much of a failing counter's output its node's error shows.
OUTPUT_PREVIEW = 80


def output_preview(output: str, limit: int = OUTPUT_PREVIEW) -> str:
    """The start of what a counter printed, quoted with control characters
    escaped (a terminal escape or a newline must not restyle or break the
    line it is shown in), ending in "…" when cut."""
    text = output.strip()
    shown = repr(text[:limit])
    return shown + "…" if len(text) > limit else shown


def describe(ref: SeriesRef | None, health: Health, names: dict[SeriesRef, str]) -> str:
    """A scope's last error as a person reads it: which counter (a node has
    many) and, for an output that was no number, how that output began."""
    message = health.last_error
    if ref is None:
        return message
    name = names.get(ref, f"#{ref.counter_id}")
    if health.last_error_output.strip():
        message = f"{message} (output: {output_preview(health.last_error_output)})"
    return f"counter {name}: {message}"


@dataclass
class NodeHealth:
    """A node's collection health summed up for the console and the API.

    Health is kept per counter, so one counter that cannot be read (a command
    printing text) must not make a node look down while its other counters
    collect: such a node is "degraded". It is "failing" only when nothing of
    it is collecting now."""

    state: str  # "ok", "degraded", "failing", "unknown" (never collected), "paused"
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str = ""
    consecutive_failures: int = 0

    @classmethod
    def of(cls, report: NodeReport, paused: bool, names: dict[SeriesRef, str] | None = None) -> NodeHealth:
        """``paused``: the node is not collected now (collection off, not
        running); ``names``: counter names by series, for the error message."""
        successes = [h.last_success_at for h in report.scopes if h.last_success_at]
        ref, last_error = _shown_error(report)
        if paused:
            state = "paused"
        elif report.failing:
            collecting = any(h.ok and h.last_success_at for h in report.series.values())
            state = "degraded" if collecting else "failing"
        elif successes:
            state = "ok"
        else:
            state = "unknown"
        return cls(
            state=state,
            last_success_at=max(successes, default=None),
            last_error_at=last_error.last_error_at if last_error else None,
            last_error=describe(ref, last_error, names or {}) if last_error else "",
            consecutive_failures=max((h.consecutive_failures for h in report.scopes), default=0),
        )


def _shown_error(report: NodeReport) -> tuple[SeriesRef | None, Health | None]:
    """The node's newest error and its series (None: an endpoint's). A
    counter's error also fails its endpoint when nothing else answered, at
    the same moment: the counter's is then shown if it printed something
    (it names the culprit), the endpoint's if not (a connection error every
    counter shares)."""
    def rank(item: tuple[SeriesRef | None, Health]) -> tuple:
        ref, health = item
        return health.last_error_at, 2 if ref and health.last_error_output.strip() else 1 if ref is None else 0

    errored = [(ref, h) for ref, h in [*report.series.items(), *((None, h) for h in report.endpoints.values())]
               if h.last_error_at]
    return max(errored, key=rank) if errored else (None, None)


# --------------------------------------------------------------------------- scopes

def _series_scope(ref: SeriesRef) -> Scope:
    return (ref.kind, ref.node_id, ref.jvm_id or 0, ref.counter_id)


def _endpoint_scope(kind: str, node_id: int, jvm_id: int | None) -> Scope:
    return (kind, node_id, jvm_id or 0, 0)


@dataclass
class _Round:
    """What one call saw for one scope."""

    successes: int = 0
    errors: list[CollectionError] = field(default_factory=list)
    at: datetime | None = None

    def add_time(self, when: datetime | None) -> None:
        if when is not None and (self.at is None or when > self.at):
            self.at = when


def _rounds(results: Iterable[Sample | CollectionError], now: datetime) -> dict[Scope, _Round]:
    rounds: dict[Scope, _Round] = {}
    for result in results:
        if isinstance(result, Sample):
            ref = result.series
            scopes = [_series_scope(ref), _endpoint_scope(ref.kind, ref.node_id, ref.jvm_id)]
            for scope in scopes:
                r = rounds.setdefault(scope, _Round())
                r.successes += 1
                r.add_time(result.collected_at or now)
        elif isinstance(result, CollectionError):
            kind = result.kind
            jvm_id = result.series.jvm_id if result.series is not None else result.jvm_id
            endpoint = _endpoint_scope(kind, result.node_id, jvm_id)
            scopes = [endpoint] if result.series is None else [_series_scope(result.series), endpoint]
            for scope in scopes:
                r = rounds.setdefault(scope, _Round())
                r.errors.append(result)
                r.add_time(result.at)
    return rounds


# --------------------------------------------------------------------------- writing

def record_results(results: Iterable[Sample | CollectionError], now: datetime | None = None) -> int:
    """Account for one collection round (any mix of nodes, sources and
    counters). Returns how many rows were written. Never raises for a
    database problem: health is best effort, the samples matter more."""
    from apps.monitoring.models import CollectionHealth

    now = now or datetime.now(timezone.utc)
    rounds = _rounds(results, now)
    if not rounds:
        return 0
    try:
        known = _load(CollectionHealth, {scope[1] for scope in rounds}, {scope[0] for scope in rounds})
        successes, failures = [], []
        for scope, seen in rounds.items():
            row = _apply(known.get(scope), scope, seen, now, CollectionHealth)
            if row is not None:
                (successes if seen.successes else failures).append(row)
        return _upsert(CollectionHealth, successes, _SUCCESS_FIELDS) + _upsert(
            CollectionHealth, failures, _FAILURE_FIELDS)
    except DatabaseError:
        log.exception("cannot record collection health")
        return 0


@dataclass(frozen=True)
class _Known:
    """The little of a stored row the write decision needs (read as a tuple:
    building model instances for every row of every round costs more than
    the query)."""

    consecutive_failures: int
    last_success_at: datetime | None
    written_at: datetime


# A success leaves the last error alone, a failure the last success: each
# upsert updates only its own columns, so neither needs the other's old values.
_SUCCESS_FIELDS = ["last_success_at", "consecutive_failures", "written_at"]
_FAILURE_FIELDS = ["last_error_at", "last_error", "last_error_output", "consecutive_failures", "written_at"]


def _load(model, node_ids: set[int], kinds: set[str]) -> dict[Scope, _Known]:
    rows = model.objects.filter(node_id__in=node_ids, kind__in=kinds).values_list(
        "kind", "node_id", "jvm_id", "counter_id", "consecutive_failures", "last_success_at", "written_at")
    return {(kind, node, jvm, counter): _Known(failures, success, written)
            for kind, node, jvm, counter, failures, success, written in rows}


def _apply(known: _Known | None, scope: Scope, seen: _Round, now: datetime, model):
    """The row to write for this scope, or None when nothing needs writing."""
    at = seen.at or now
    failures = known.consecutive_failures if known else 0
    if seen.successes and not failures and known is not None and known.last_success_at is not None \
            and at - known.written_at < timedelta(seconds=HEARTBEAT_S):
        return None  # healthy and recently written: the common case costs nothing
    row = model(kind=scope[0], node_id=scope[1], jvm_id=scope[2], counter_id=scope[3], written_at=at)
    if seen.successes:
        row.consecutive_failures = 0
        row.last_success_at = at
    else:
        error = seen.errors[-1]
        row.consecutive_failures = failures + 1
        row.last_error = error.message[:MAX_MESSAGE]
        row.last_error_output = error.output
        row.last_error_at = error.at or at
    return row


def _upsert(model, rows: list, fields: list[str]) -> int:
    if not rows:
        return 0
    from apps.control.models import Node

    # Nodes deleted since their collection started: foreign keys are checked
    # at commit (deferred), too late to drop just those rows, so drop them first.
    alive = set(Node.objects.filter(id__in={r.node_id for r in rows}).values_list("id", flat=True))
    rows = [r for r in rows if r.node_id in alive]
    if not rows:
        return 0
    # MySQL/MariaDB upsert on any unique key and refuse to be told which
    # (the scope's constraint is the only one a new row can hit).
    features = connections[router.db_for_write(model)].features
    scope = ["kind", "node", "jvm_id", "counter_id"] if features.supports_update_conflicts_with_target else None
    with transaction.atomic():
        model.objects.bulk_create(rows, update_conflicts=True, unique_fields=scope, update_fields=fields)
    return len(rows)


# --------------------------------------------------------------------------- reading

def get_health(node_ids: Iterable[int]) -> dict[int, NodeReport]:
    """Health of the given nodes by scope; a node never collected has an empty report."""
    from apps.monitoring.models import CollectionHealth

    node_ids = list(node_ids)
    report = {node_id: NodeReport(node_id) for node_id in node_ids}
    for row in CollectionHealth.objects.filter(node_id__in=node_ids):
        health = Health(row.last_success_at, row.last_error_at, row.last_error, row.last_error_output,
                        row.consecutive_failures)
        jvm_id = row.jvm_id or None
        if row.counter_id:
            ref = SeriesRef(row.kind, row.node_id, row.counter_id, jvm_id)
            report[row.node_id].series[ref] = health
        else:
            report[row.node_id].endpoints[(row.kind, jvm_id)] = health
    return report
