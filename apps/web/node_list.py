"""Which nodes of a cluster a page (or an API answer) shows in full, and in
what order: searched (``q``, apps/web/filters.py's NodeFilter), sorted by
name or by any counter's newest value (``sort=<kind>-<id>``, ``-`` first for
descending), then cut to one page. Sorting by a counter reads that counter
on every matching node (one batched read); the other counters are read for
the page's nodes only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from apps.control.choices import NodeState
from apps.control.models import Cluster, Node
from apps.monitoring import series as series_svc
from apps.monitoring.counters import config_error
from apps.web.filters import NodeFilter

#: Nodes per console page.
PAGE_SIZE = 50
SORT_BY_NAME = "name"


@dataclass
class NodeOrder:
    ids: list[int]  # every matching node, in the order asked for
    sort: str = SORT_BY_NAME
    q: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)  # parameter -> what is wrong

    @property
    def error_lines(self) -> list[str]:
        return [f"{name}: {' '.join(messages)}" for name, messages in self.errors.items()]


def sort_keys(counters) -> dict[str, tuple]:
    """Accepted ``sort`` values: name and every counter, each either way."""
    keys = {SORT_BY_NAME: (), f"-{SORT_BY_NAME}": ()}
    for kind, counter in counters:
        if config_error(counter):
            continue  # not read: nothing to sort by
        key = f"{kind.name}-{counter.pk}"
        keys[key] = keys[f"-{key}"] = (kind, counter)
    return keys


def node_order(cluster: Cluster, params, counters, *, store=None, now: datetime | None = None) -> NodeOrder:
    """The matching nodes' ids in order. A bad ``q`` or ``sort`` is named in
    ``errors`` (the page shows it, the API answers 400), never ignored."""
    base = Node.objects.filter(cluster=cluster).exclude(state=NodeState.TERMINATED).order_by("name")
    found = NodeFilter(params, queryset=base)
    order = NodeOrder([], params.get("sort") or SORT_BY_NAME, params.get("q") or "")
    order.errors = dict(found.errors) if not found.is_valid() else {}
    keys = sort_keys(counters)
    if order.sort not in keys:
        order.errors["sort"] = [f"{order.sort!r} is not name or a counter of this cluster (<kind>-<id>), "
                                "either way (-name)"]
        order.sort = SORT_BY_NAME
    if order.errors:
        return order
    rows = list(found.qs.values_list("pk", "name"))
    descending = order.sort.startswith("-")
    if not keys[order.sort]:
        order.ids = [pk for pk, _ in (reversed(rows) if descending else rows)]
        return order
    kind, counter = keys[order.sort]
    try:
        newest = series_svc.newest_values([(kind, counter)], [pk for pk, _ in rows], now=now or timezone.now(),
                                          store=store or series_svc.default_store()).get((kind.name, counter.pk), {})
    except series_svc.store_errors():
        newest = {}  # the header names the store's state; the nodes keep their name order
    with_value = sorted((pk for pk, _ in rows if pk in newest), key=lambda pk: newest[pk][1], reverse=descending)
    order.ids = with_value + [pk for pk, _ in rows if pk not in newest]  # no sample: last either way
    return order


def nodes_by_id(ids: list[int]) -> list[Node]:
    found = Node.objects.in_bulk(ids)
    return [found[pk] for pk in ids if pk in found]
