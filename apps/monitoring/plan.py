"""The collection plan a collect task carries: the configuration rows its
nodes need (node, cluster, counters, JVMs), read by the dispatcher.

Why in the message rather than read by the worker: the dispatcher reads the
configuration on every tick anyway, so a plan is exactly as fresh as the ids
it replaces (an admin change still applies at the next tick), while a worker
reading the rows again costs three queries for every batch of every tick:
about a tenth of a round's own time in bench/collect.py, and database load
that grows with every collection host added. A collect task then touches the
database only to record health.

Rows travel as JSON-able dicts of the fields collection reads and come back
as model instances built with ``Model.from_db``: a field not carried is
*deferred*, so code that reads one anyway gets the truth from the database
(one query) rather than a silent default.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.db import DEFAULT_DB_ALIAS

from apps.monitoring.scheduling import NodeWork

#: Bumped when the plan's layout changes; a worker refuses other versions
#: loudly rather than collecting with half-understood rows.
VERSION = 1

# The fields collection reads, per model (target_for, the collectors, the
# JMX endpoint). Keep in step with them; a missing one costs a query, not a bug.
CLUSTER_FIELDS = ("id", "name", "ssh_port", "ssh_user", "ssh_key_path", "ssh_password_ref")
NODE_FIELDS = ("id", "cluster_id", "name", "address", "ssh_port", "ssh_user", "ssh_key_path")
SSH_COUNTER_FIELDS = ("id", "cluster_id", "name", "command", "interval_s")
JVM_FIELDS = ("id", "cluster_id", "name", "jmx_port", "username", "password_ref")
JMX_COUNTER_FIELDS = ("id", "jvm_id", "name", "mbean", "attribute", "composite_key", "interval_s")


class PlanError(ValueError):
    """A collect task's message is not a plan this code understands."""


def _models():
    from apps.control.models import Cluster, Node
    from apps.monitoring.jmx.models import JVM, JMXCounter
    from apps.monitoring.ssh.models import SSHCounter

    return Cluster, Node, SSHCounter, JVM, JMXCounter


def make_plans(batches: Sequence[Sequence[NodeWork]]) -> list[dict]:
    """One plan per batch, from five queries for all batches together. A node
    or counter deleted since planning simply drops out."""
    Cluster, Node, SSHCounter, JVM, JMXCounter = _models()
    work = [item for batch in batches for item in batch]
    if not work:
        return [_empty() for _ in batches]
    nodes = _rows(Node, NODE_FIELDS, {w.node_id for w in work})
    ssh = _rows(SSHCounter, SSH_COUNTER_FIELDS, {c for w in work for c in w.ssh_counter_ids})
    jmx = _rows(JMXCounter, JMX_COUNTER_FIELDS, {c for w in work for c in w.jmx_counter_ids})
    jvms = _rows(JVM, JVM_FIELDS, {row["jvm_id"] for row in jmx.values()})
    clusters = _rows(Cluster, CLUSTER_FIELDS, {row["cluster_id"] for row in nodes.values()})

    plans = []
    for batch in batches:
        plan = _empty()
        seen: dict[str, set[int]] = defaultdict(set)

        def add(kind: str, row: dict) -> None:
            if row["id"] not in seen[kind]:
                seen[kind].add(row["id"])
                plan[kind].append(row)

        for item in batch:
            node = nodes.get(item.node_id)
            if node is None:
                continue
            ssh_ids = [c for c in item.ssh_counter_ids if c in ssh]
            jmx_ids = [c for c in item.jmx_counter_ids if c in jmx]
            add("clusters", clusters[node["cluster_id"]])
            for cid in ssh_ids:
                add("ssh_counters", ssh[cid])
            for cid in jmx_ids:
                add("jmx_counters", jmx[cid])
                add("jvms", jvms[jmx[cid]["jvm_id"]])
            plan["nodes"].append({**node, "ssh": ssh_ids, "jmx": jmx_ids})
        plans.append(plan)
    return plans


def _empty() -> dict:
    return {"version": VERSION, "clusters": [], "nodes": [], "ssh_counters": [], "jvms": [], "jmx_counters": []}


def _rows(model, fields: tuple[str, ...], ids: set[int]) -> dict[int, dict]:
    if not ids:
        return {}
    return {row["id"]: row for row in model.objects.filter(id__in=ids).values(*fields)}


def restore(plan: dict) -> list[tuple]:
    """``(node, ssh_counters, {jvm: jmx_counters})`` per node, as model
    instances (node.cluster and counter.jvm already set: no query)."""
    if not isinstance(plan, dict) or plan.get("version") != VERSION:
        version = plan.get("version") if isinstance(plan, dict) else type(plan).__name__
        raise PlanError(f"collection plan version {version!r} is not {VERSION} "
                        f"(a worker older or newer than the dispatcher?)")
    Cluster, Node, SSHCounter, JVM, JMXCounter = _models()
    try:
        clusters = _instances(Cluster, CLUSTER_FIELDS, plan["clusters"])
        ssh = _instances(SSHCounter, SSH_COUNTER_FIELDS, plan["ssh_counters"])
        jvms = _instances(JVM, JVM_FIELDS, plan["jvms"])
        jmx = _instances(JMXCounter, JMX_COUNTER_FIELDS, plan["jmx_counters"])
        for counter in jmx.values():
            counter.jvm = jvms[counter.jvm_id]
        jobs = []
        for row in plan["nodes"]:
            [node] = _instances(Node, NODE_FIELDS, [row]).values()
            node.cluster = clusters[node.cluster_id]
            by_jvm: dict = defaultdict(list)
            for cid in row["jmx"]:
                by_jvm[jmx[cid].jvm].append(jmx[cid])
            jobs.append((node, [ssh[cid] for cid in row["ssh"]], dict(by_jvm)))
        return jobs
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanError(f"malformed collection plan: {exc!r}") from exc


def _instances(model, fields: tuple[str, ...], rows: list[dict]) -> dict[int, object]:
    # from_db takes the values in the model's field order, whatever we carry.
    order = [f.attname for f in model._meta.concrete_fields if f.attname in fields]
    return {row["id"]: model.from_db(DEFAULT_DB_ALIAS, order, [row[name] for name in order]) for row in rows}
