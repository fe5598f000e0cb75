"""Which collect worker collects which node: rendezvous (highest random
weight) hashing of the node id over the live workers.

Every node goes to the worker with the highest hash of (worker, node), so the
same node lands on the same worker tick after tick, and when a worker joins
only the nodes it now wins move to it (about 1/n of them), and when one leaves
only its own nodes move, spread over the others. No state is kept between
ticks: the assignment is a pure function of the node ids and the worker names,
so two dispatchers (or one restarted) agree. A worker takes at most its
capacity (COLLECT_MAX_NODES_PER_PROCESS per process): a node whose preferred
workers are full goes to its next choice, and nodes no worker has room for are
left unassigned — and reported — rather than overloading a process.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def weight(consumer: str, node_id: int) -> int:
    """The (worker, node) pair's random-looking but fixed weight."""
    digest = hashlib.blake2b(f"{consumer}\0{node_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def ranked(node_id: int, consumers: Iterable[str]) -> list[str]:
    """The workers in the node's order of preference."""
    return sorted(consumers, key=lambda consumer: (weight(consumer, node_id), consumer), reverse=True)


def owner(node_id: int, consumers: Iterable[str]) -> str | None:
    """The node's worker when capacity is no concern."""
    return max(consumers, key=lambda consumer: (weight(consumer, node_id), consumer), default=None)


@dataclass
class Assignment:
    """Node ids by worker name, and the nodes no worker had room for."""

    nodes: dict[str, list[int]] = field(default_factory=dict)
    unassigned: list[int] = field(default_factory=list)


def assign(node_ids: Iterable[int], capacity: Mapping[str, int]) -> Assignment:
    """Each node to its highest-ranked worker that has room (``capacity``:
    the most nodes each worker may take). Nodes are placed in id order, so the
    result depends on nothing but its arguments."""
    result = Assignment(nodes={name: [] for name in capacity})
    for node_id in sorted(node_ids):
        for consumer in ranked(node_id, capacity):
            if len(result.nodes[consumer]) < capacity[consumer]:
                result.nodes[consumer].append(node_id)
                break
        else:
            result.unassigned.append(node_id)
    return result
