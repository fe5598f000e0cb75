"""What a collect task's message carries: the configuration rows its nodes
need (node, cluster, and each source's counters and endpoints), read by the
dispatcher.

Why in the message rather than read by the worker: the dispatcher reads the
configuration on every tick anyway, so a message is exactly as fresh as the
ids it replaces (an admin change still applies at the next tick), while a
worker reading the rows again costs three queries for every batch of every
tick: about a tenth of a round's own time in bench/collect.py, and database
load that grows with every collection host added. A collect task then
touches the database only to record health.

Rows travel as JSON-able dicts of the fields collection reads and come back
as model instances built with ``Model.from_db``: a field not carried is
*deferred*, so code that reads one anyway gets the truth from the database
(one query) rather than a silent default.

Layout (``VERSION`` 1, the same since before sources were a registry)::

    {"version": 1, "clusters": [row...],
     "nodes": [{<node row>, "<kind>": [counter id...] for each source}...],
     "<table>": [row...] for each table of each source}

(``ssh_counters``; ``jmx_counters`` and ``jvms``). Every table is present,
empty or not, so a worker of the same version reads any message.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from apps.monitoring import sources
from apps.monitoring.sources import instances, rows_by_id

from .worklist import NodeWork

#: Bumped when the layout changes; a worker refuses other versions loudly
#: rather than collecting with half-understood rows.
VERSION = 1

# The fields collection reads of a node and its cluster (target_for, the
# collectors). Keep in step with them; a missing one costs a query, not a bug.
CLUSTER_FIELDS = ("id", "name", "ssh_port", "ssh_user", "ssh_key_path", "ssh_password_ref")
NODE_FIELDS = ("id", "cluster_id", "name", "address", "ssh_port", "ssh_user", "ssh_key_path")


class MessageError(ValueError):
    """A collect task's message is not one this code understands."""


@dataclass
class NodeJob:
    """One node of a message, ready to collect: the node (its cluster set)
    and its due counters by source kind (their endpoints set)."""

    node: object
    counters: dict[str, list]


def _models():
    from apps.control.models import Cluster, Node

    return Cluster, Node


def make_messages(batches: Sequence[Sequence[NodeWork]]) -> list[dict]:
    """One message per batch, from one query per table for all batches
    together. A node or counter deleted since the work list simply drops out."""
    Cluster, Node = _models()
    work = [item for batch in batches for item in batch]
    if not work:
        return [_empty() for _ in batches]
    nodes = rows_by_id(Node, NODE_FIELDS, {w.node_id for w in work})
    tables = {source.kind: source.message_rows({c for w in work for c in w.counters.get(source.kind, ())})
              for source in sources.all()}
    clusters = rows_by_id(Cluster, CLUSTER_FIELDS, {row["cluster_id"] for row in nodes.values()})
    return [_message(batch, nodes, clusters, tables) for batch in batches]


def _message(batch: Sequence[NodeWork], nodes: dict, clusters: dict, tables: dict) -> dict:
    message = _empty()
    seen: dict[str, set[int]] = {}

    def add(table: str, row: dict) -> None:
        if row["id"] not in seen.setdefault(table, set()):
            seen[table].add(row["id"])
            message[table].append(row)

    for item in batch:
        node = nodes.get(item.node_id)
        if node is None:
            continue
        add("clusters", clusters[node["cluster_id"]])
        entry = dict(node)
        for source in sources.all():
            own = tables[source.kind]
            ids = [c for c in item.counters.get(source.kind, ()) if c in own[source.message_table]]
            for counter_id in ids:
                for table, row in source.rows_of(own, counter_id):
                    add(table, row)
            entry[source.kind] = ids
        message["nodes"].append(entry)
    return message


def _empty() -> dict:
    message: dict = {"version": VERSION, "clusters": [], "nodes": []}
    for source in sources.all():
        message.update((table, []) for table in source.message_tables())
    return message


def restore(message: dict) -> list[NodeJob]:
    """The nodes of a message as model instances (node.cluster and the
    counters' endpoints already set: no query)."""
    if not isinstance(message, dict) or message.get("version") != VERSION:
        version = message.get("version") if isinstance(message, dict) else type(message).__name__
        raise MessageError(f"collect message version {version!r} is not {VERSION} "
                           f"(a worker older or newer than the dispatcher?)")
    Cluster, Node = _models()
    try:
        clusters = instances(Cluster, CLUSTER_FIELDS, message["clusters"])
        counters = {source.kind: source.restore(message) for source in sources.all()}
        jobs = []
        for row in message["nodes"]:
            [node] = instances(Node, NODE_FIELDS, [row]).values()
            node.cluster = clusters[node.cluster_id]
            due = {kind: [by_id[c] for c in row.get(kind, ())] for kind, by_id in counters.items()}
            jobs.append(NodeJob(node, due))
        return jobs
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageError(f"malformed collect message: {exc!r}") from exc
