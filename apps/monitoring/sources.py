"""The counter-source registry: every kind of counter is one ``CounterSource``.

A source (SSH, JMX, or any later one) declares everything about its counters
that the rest of PyScaler needs: its model, its kind name and memcached key
format, which counters are due, what a collect message carries for them, how
a node's counters are collected, where a counter's cluster and endpoint are.
Collection, the evaluator, series, health and views ask the registry and
never name a kind, so a new source is its own app (model, ``CounterSource``
subclass, collector) plus one ``register()`` call in its ``AppConfig.ready()``
— the pattern of healthchecks' transports.

Keys are the seed's (004): ``<prefix>.<nodeId>.<counterId>.<stamp>``, with the
counter's endpoint between node and counter for a source that has endpoints
(JMX: ``<prefix>.<nodeId>.<jvmId>.<counterId>.<stamp>``); the same key without
the stamp holds the breach count.

Triggers reach a source's counters through a many-to-many relation the
source names (``trigger_accessor``). SSH's and JMX's are fields of
``control.Trigger`` (their tables and data predate the registry); a new
source declares the relation on its own counter model (``triggers =
ManyToManyField("control.Trigger", related_name=...)``). So adding a source
changes no control model or migration, and a trigger's counters stay real
foreign keys (deleting a counter deletes its links) rather than (kind, id)
pairs that nothing checks.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar

from django.db import DEFAULT_DB_ALIAS

#: Longest kind name: CollectionHealth.kind holds it.
MAX_KIND_LENGTH = 20


class UnknownSource(LookupError):
    """No counter source is registered under this kind."""


class CounterSource:
    """One kind of counter. Subclasses set the class attributes and
    ``collect``; the rest has defaults that suit a counter model deriving from
    ``apps.monitoring.counters.CounterBase``."""

    #: The kind's name: ``SeriesRef.kind``, the API's ``kind=``, health rows.
    kind: ClassVar[str]
    #: Shown in pages and messages ("SSH").
    label: ClassVar[str]
    #: ``app_label.ModelName`` of the counter model.
    model_label: ClassVar[str]
    #: memcached key prefix (the seed uses the counter table's name).
    key_prefix: ClassVar[str]
    #: ORM path from a counter to its cluster ("cluster", "jvm__cluster").
    cluster_path: ClassVar[str] = "cluster"
    #: A counter's endpoint on a node (JMX: "jvm"), a level of its keys and of
    #: health; None when the node itself is the endpoint (SSH).
    endpoint_attr: ClassVar[str | None] = None
    #: What an endpoint is called ("JVM").
    endpoint_label: ClassVar[str] = ""
    #: The relation from ``control.Trigger`` to this source's counters (a
    #: many-to-many field on either side), through which triggers use them.
    trigger_accessor: ClassVar[str]
    #: Counter fields a collect message carries (see collection.message).
    message_fields: ClassVar[tuple[str, ...]]

    # -- the model ------------------------------------------------------------
    @cached_property
    def model(self):
        from django.apps import apps

        return apps.get_model(self.model_label)

    @property
    def name(self) -> str:
        """The kind (what pages and the API call it)."""
        return self.kind

    @property
    def message_table(self) -> str:
        """The collect message's list of this source's counter rows."""
        return f"{self.kind}_counters"

    def counters(self):
        """Every counter, with what graphs and pages read of it joined."""
        return self.model.objects.select_related(self.cluster_path)

    def cluster(self, counter):
        obj = counter
        for part in self.cluster_path.split("__"):
            obj = getattr(obj, part)
        return obj

    def cluster_id(self, counter) -> int:
        *path, last = self.cluster_path.split("__")
        obj = counter
        for part in path:
            obj = getattr(obj, part)
        return getattr(obj, f"{last}_id")

    def endpoint(self, counter):
        """The counter's endpoint row (its JVM), or None."""
        return getattr(counter, self.endpoint_attr) if self.endpoint_attr else None

    def endpoint_id(self, counter) -> int | None:
        return getattr(counter, f"{self.endpoint_attr}_id") if self.endpoint_attr else None

    def endpoint_name(self, counter) -> str | None:
        """The endpoint's name (the API's and /metrics' ``jvm``), or None."""
        endpoint = self.endpoint(counter)
        return endpoint.name if endpoint is not None else None

    def describe(self, counter) -> str:
        """What the counter reads, shown under its graph."""
        return ""

    # -- keys -------------------------------------------------------------------
    def count_key(self, node: int | str, counter_id: int, endpoint_id: int | None) -> str:
        """The breach-count key of a series; its sample keys add ``.<stamp>``."""
        if endpoint_id is None:
            return f"{self.key_prefix}.{node}.{counter_id}"
        return f"{self.key_prefix}.{node}.{endpoint_id}.{counter_id}"

    def cluster_count_key(self, cluster_id: int, counter_id: int, endpoint_id: int | None) -> str:
        """The state key of an aggregating trigger's cluster-level series:
        ``cluster<id>`` never collides with an (integer) node id."""
        return self.count_key(f"cluster{cluster_id}", counter_id, endpoint_id)

    def series(self, counter, node_id: int):
        from apps.monitoring.samples import SeriesRef

        return SeriesRef(self.kind, node_id, counter.pk, self.endpoint_id(counter))

    # -- what is due (collection.worklist) ----------------------------------------
    def enabled_intervals(self) -> set[int]:
        return set(self.model.objects.filter(enabled=True).values_list("interval_s", flat=True))

    def due_by_cluster(self, intervals: set[int]) -> dict[int, list[int]]:
        """Ids of the enabled counters of these intervals, by cluster id."""
        by_cluster: dict[int, list[int]] = {}
        rows = self.model.objects.filter(enabled=True, interval_s__in=intervals).values_list(
            "id", f"{self.cluster_path}_id")
        for counter_id, cluster_id in rows:
            by_cluster.setdefault(cluster_id, []).append(counter_id)
        return by_cluster

    # -- what a collect message carries (collection.message) ---------------------
    def message_rows(self, counter_ids: set[int]) -> dict[str, dict[int, dict]]:
        """The rows a message needs for these counters, by message table, each
        by id (one query per table for every batch of a tick)."""
        return {self.message_table: rows_by_id(self.model, self.message_fields, counter_ids)}

    def message_tables(self) -> tuple[str, ...]:
        """Every list of rows this source adds to a message."""
        return (self.message_table,)

    def rows_of(self, tables: dict[str, dict[int, dict]], counter_id: int) -> Iterator[tuple[str, dict]]:
        """The (table, row) pairs one counter needs in a message."""
        yield self.message_table, tables[self.message_table][counter_id]

    def restore(self, message: dict) -> dict[int, Any]:
        """This source's counters of a message, by id, as model instances."""
        return instances(self.model, self.message_fields, message.get(self.message_table, []))

    # -- collecting -------------------------------------------------------------
    def collect(self, node, counters: list, at: datetime) -> list:
        """Samples and CollectionErrors for ``counters`` on ``node`` (node.cluster
        set, no query needed). Must not raise for a node-side failure."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind}>"


def rows_by_id(model, fields: tuple[str, ...], ids: set[int]) -> dict[int, dict]:
    if not ids:
        return {}
    return {row["id"]: row for row in model.objects.filter(id__in=ids).values(*fields)}


def instances(model, fields: tuple[str, ...], rows: Iterable[dict]) -> dict[int, Any]:
    """Model instances from carried rows (``Model.from_db``: a field not carried
    is deferred, so reading it queries the database rather than defaulting).
    A field this version carries but the row lacks (a message from a
    dispatcher that did not carry it yet, e.g. a JVM's ``tls``) is deferred too."""
    made = {}
    for row in rows:
        order = [f.attname for f in model._meta.concrete_fields if f.attname in fields and f.attname in row]
        made[row["id"]] = model.from_db(DEFAULT_DB_ALIAS, order, [row[name] for name in order])
    return made


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------
_registry: dict[str, CounterSource] = {}


def register(source: CounterSource) -> CounterSource:
    """Add a source (from its app's ``AppConfig.ready()``). Registering the
    same class again replaces it; another class under a taken kind is a bug."""
    kind = source.kind
    if not kind or len(kind) > MAX_KIND_LENGTH or not kind.isidentifier():
        raise ValueError(f"counter source kind {kind!r}: a name of at most {MAX_KIND_LENGTH} "
                         f"letters, digits or _")
    known = _registry.get(kind)
    if known is not None and type(known) is not type(source):
        raise ValueError(f"counter source kind {kind!r} is already {known!r}")
    _registry[kind] = source
    return source


def get(kind: str) -> CounterSource:
    try:
        return _registry[kind]
    except KeyError:
        raise UnknownSource(f"unknown counter kind {kind!r}; use one of: {', '.join(_registry)}") from None


def all() -> list[CounterSource]:  # noqa: A001 - the registry's natural name (sources.all())
    """Every source, in registration (INSTALLED_APPS) order."""
    return list(_registry.values())


def kinds() -> list[str]:
    return list(_registry)


def of_model(model) -> CounterSource:
    """The source whose counter model ``model`` is."""
    for source in _registry.values():
        if source.model is model:
            return source
    raise UnknownSource(f"no counter source has the model {model.__name__}")


def fallback_kind(has_endpoint: bool) -> str | None:
    """The first source with (or without) endpoints: the kind of an error
    that names none (a series-less error from code older than kinds on
    errors, or a test's)."""
    for source in _registry.values():
        if (source.endpoint_attr is not None) == has_endpoint:
            return source.kind
    return None
