"""What action kinds may ask of control: the cluster-size bounds, claimed
under a lock on the cluster's row, and the node records the kinds act on.

This is the one module of apps.control that apps.actions imports (an
import-linter contract holds it to that), so the kinds never touch
control's models and control never names a kind. Errors a kind must report
as a failed step are raised as the contract's ActionError.

Two chains must never both pass the max-size (or min-size) check, so the
check and the claim it allows happen in one transaction holding the cluster
row with SELECT ... FOR UPDATE:

- a deploy *reserves* capacity by inserting its future Nodes as ``pending``
  "slots" before it launches anything; a second deploy that comes in
  meanwhile counts them and sees the cluster as full.
- a removal *claims* its victims by marking them ``draining`` before it
  deregisters and terminates them; a second removal no longer counts them as
  running and stops at the minimum size.

On PostgreSQL and MariaDB the row lock serialises the two transactions. On
SQLite select_for_update is a no-op, but settings open every transaction
with BEGIN IMMEDIATE, which takes the database's write lock at once — the
same serialisation, for the whole file.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from apps.actions.contract import ActionError

from .choices import NodeState
from .models import Cluster, Node

#: Nodes that take up room under the maximum size.
SIZE_STATES = (NodeState.PENDING, NodeState.RUNNING)


def lock_cluster(cluster_id: int) -> Cluster:
    """The cluster's row, locked until the surrounding transaction ends."""
    return Cluster.objects.select_for_update().get(pk=cluster_id)


def cluster_size(cluster: Cluster) -> int:
    """Nodes counted against max_size: running ones and those being launched."""
    return Node.objects.filter(cluster=cluster, state__in=SIZE_STATES).count()


def running_size(cluster: Cluster | int) -> int:
    """Nodes counted against min_size: only those running now (also the size
    an execution records before and after it runs)."""
    cluster_id = cluster if isinstance(cluster, int) else cluster.pk
    return Node.objects.filter(cluster_id=cluster_id, state=NodeState.RUNNING).count()


def slot_prefix(step_id: str) -> str:
    """Names of the slot Nodes a deploy step reserves: derived from the step id
    so that a redelivered step finds its own slots again."""
    return "launching." + re.sub(r"[^A-Za-z0-9_.-]", "-", step_id)[:200] + "."


# ---------------------------------------------------------------------------
# Scale out
# ---------------------------------------------------------------------------


@dataclass
class Reservation:
    slots: list[Node]
    #: Why fewer nodes than asked for were reserved ("" if none were capped).
    capped_by: str = ""
    #: True if the slots were reserved by an earlier delivery of this step.
    resumed: bool = False


def reserve_slots(cluster: Cluster, wanted: int, step_id: str, at_least: int = 0, *,
                  actor: str = "the deploy") -> Reservation:
    """Reserve room for up to ``wanted`` new nodes (capped by max_step_size and
    the room under max_size) or raise ActionError naming the bound (and
    ``actor``, the kind's label, as the one that launches nothing).

    A step that already holds slots gets them back unchanged. ``at_least``
    adds slots without a bound check for instances that already exist (an
    earlier delivery launched them): recording what runs is never refused.
    """
    prefix = slot_prefix(step_id)
    with transaction.atomic():
        cluster = lock_cluster(cluster.pk)
        mine = list(
            Node.objects.filter(
                cluster=cluster, name__startswith=prefix, state=NodeState.PENDING, ec2_instance_id__isnull=True
            ).order_by("name")
        )
        if mine:
            reservation = Reservation(mine, resumed=True)
        else:
            size = cluster_size(cluster)
            room = cluster.max_size - size
            if room <= 0 and at_least == 0:
                raise ActionError(
                    f"cluster {cluster.name!r} is at its max size: {size} node(s), max_size {cluster.max_size}; "
                    f"{actor} launches nothing"
                )
            count = min(wanted, cluster.max_step_size, max(room, 0))
            capped = []
            if count < wanted:
                if cluster.max_step_size < wanted:
                    capped.append(f"max_step_size {cluster.max_step_size}")
                if room < wanted:
                    capped.append(f"max_size {cluster.max_size} with {size} node(s)")
            reservation = Reservation([], capped_by=" and ".join(capped))
            _add_slots(cluster, prefix, reservation.slots, count)
        if len(reservation.slots) < at_least:
            _add_slots(cluster, prefix, reservation.slots, at_least - len(reservation.slots))
        return reservation


def _add_slots(cluster: Cluster, prefix: str, slots: list[Node], count: int) -> None:
    taken = {n.name for n in slots}
    index = 0
    while count > 0:
        name = f"{prefix}{index}"
        index += 1
        if name in taken:
            continue
        # No address yet and collection off: nothing may try to reach a node
        # that does not exist. launched_by_pyscaler marks it as ours.
        slots.append(
            Node.objects.create(
                cluster=cluster,
                name=name,
                address="",
                state=NodeState.PENDING,
                collection_enabled=False,
                launched_by_pyscaler=True,
            )
        )
        count -= 1


@dataclass
class Launched:
    """What a slot becomes: an instance with the address PyScaler uses."""

    instance_id: str
    address: str
    ssh_port: int | None = None


def fill_slots(slots: Sequence[Node], launched: Sequence[Launched]) -> list[Node]:
    """Turn slots into running Nodes named after their instances, in one
    transaction; slots left over (fewer instances than reserved) are freed."""
    nodes: list[Node] = []
    with transaction.atomic():
        for slot, inst in zip(slots, launched):
            slot.name = inst.instance_id
            slot.ec2_instance_id = inst.instance_id
            slot.address = inst.address
            if inst.ssh_port:
                slot.ssh_port = inst.ssh_port
            slot.state = NodeState.RUNNING
            slot.collection_enabled = True
            slot.launched_by_pyscaler = True
            slot.save()
            nodes.append(slot)
        release_slots(slots[len(launched):])
    return nodes


def record_unterminated(slots: Sequence[Node], instance_ids: Sequence[str]) -> list[Node]:
    """Keep instances a failed deploy could not terminate visible as pending
    Nodes named after them (collection off), rather than forgetting them."""
    nodes = []
    with transaction.atomic():
        for slot, instance_id in zip(slots, instance_ids):
            slot.name = instance_id
            slot.ec2_instance_id = instance_id
            slot.save()
            nodes.append(slot)
        release_slots(slots[len(instance_ids):])
    return nodes


def release_slots(slots: Sequence[Node]) -> None:
    """Give reserved room back (slots never were real nodes: no history to keep)."""
    ids = [s.pk for s in slots if s.pk]
    if ids:
        Node.objects.filter(pk__in=ids, state=NodeState.PENDING, ec2_instance_id__isnull=True).delete()


# ---------------------------------------------------------------------------
# Scale in
# ---------------------------------------------------------------------------

CHOOSE_ORDER = {
    "newest": ("-created", "-pk"),
    "oldest": ("created", "pk"),
}


def _why_not_removable(node: Node, cluster: Cluster, include_foreign: bool) -> str:
    if node.cluster_id != cluster.pk:
        return f"it belongs to cluster {node.cluster.name!r}, not {cluster.name!r}"
    if node.state != NodeState.RUNNING:
        return f"it is {node.state}, not running"
    if node.protected:
        return "it is protected"
    if not node.ec2_instance_id:
        return "it has no EC2 instance id"
    if not node.launched_by_pyscaler and not include_foreign:
        return "PyScaler did not launch it (set include_foreign to allow this)"
    return ""


def claim_for_removal(
    cluster: Cluster,
    count: int,
    choose: str = "newest",
    node_id: int | None = None,
    include_foreign: bool = False,
    on_claim: Callable[[list[Node]], None] | None = None,
    actor: str = "the removal",
) -> list[Node]:
    """Pick up to ``count`` nodes to remove and mark them draining, never
    going below min_size and never touching protected nodes or (unless
    ``include_foreign``) nodes PyScaler did not launch. ``on_claim`` runs
    inside the same transaction (the step records its claim there, so a
    redelivered step resumes with the same nodes)."""
    with transaction.atomic():
        cluster = lock_cluster(cluster.pk)
        size = running_size(cluster)
        room = size - cluster.min_size
        if room <= 0:
            raise ActionError(
                f"cluster {cluster.name!r} is at its min size: {size} running node(s), "
                f"min_size {cluster.min_size}; {actor} removes nothing"
            )
        if choose == "breaching":
            if node_id is None:
                raise ActionError("choose=breaching but the chain has no breaching node (an aggregate trigger?)")
            node = Node.objects.select_related("cluster").filter(pk=node_id).first()
            if node is None:
                raise ActionError(f"the breaching node (id {node_id}) no longer exists")
            reason = _why_not_removable(node, cluster, include_foreign)
            if reason:
                raise ActionError(f"node {node.name!r} cannot be removed: {reason}")
            chosen = [node]
        else:
            candidates = Node.objects.filter(
                cluster=cluster, state=NodeState.RUNNING, protected=False, ec2_instance_id__isnull=False
            )
            if not include_foreign:
                candidates = candidates.filter(launched_by_pyscaler=True)
            chosen = list(candidates.order_by(*CHOOSE_ORDER[choose])[: min(count, room)])
            if not chosen:
                whose = "" if include_foreign else "launched by PyScaler, "
                raise ActionError(
                    f"cluster {cluster.name!r} has no node {actor} may remove: none of its {size} "
                    f"running node(s) is {whose}unprotected and has an EC2 instance id"
                )
        Node.objects.filter(pk__in=[n.pk for n in chosen]).update(state=NodeState.DRAINING, updated=timezone.now())
        for node in chosen:
            node.state = NodeState.DRAINING
        if on_claim is not None:
            on_claim(chosen)
        return chosen


def mark_terminated(nodes: Sequence[Node]) -> None:
    """Keep the history: terminated nodes stay, with collection off."""
    Node.objects.filter(pk__in=[n.pk for n in nodes]).update(
        state=NodeState.TERMINATED, collection_enabled=False, updated=timezone.now()
    )
    for node in nodes:
        node.state = NodeState.TERMINATED
        node.collection_enabled = False


# ---------------------------------------------------------------------------
# Node records the kinds read or hand back
# ---------------------------------------------------------------------------


def nodes_by_ids(ids: Iterable[int]) -> list[Node]:
    """Nodes by primary key, in key order (missing ids are left out)."""
    ids = [i for i in ids if isinstance(i, int)]
    return list(Node.objects.filter(pk__in=ids).order_by("pk")) if ids else []


def nodes_by_instance(instance_ids: Iterable[str]) -> dict[str, Node]:
    """The Nodes recording these EC2 instances, by instance id."""
    return {n.ec2_instance_id: n for n in Node.objects.filter(ec2_instance_id__in=list(instance_ids))}


def node_id_by_name(cluster: Cluster, name: str) -> int | None:
    return Node.objects.filter(cluster=cluster, name=name).values_list("pk", flat=True).first()


def running_nodes(cluster: Cluster, names: Sequence[str] = ()) -> list[Node]:
    """The cluster's running nodes by name (all of them when ``names`` is
    empty), or ActionError naming the nodes missing or not running."""
    if not names:
        nodes = list(cluster.nodes.filter(state=NodeState.RUNNING).select_related("cluster").order_by("name"))
        if not nodes:
            raise ActionError(f"cluster {cluster.name} has no running node to run on")
        return nodes
    found = {n.name: n for n in cluster.nodes.filter(name__in=names).select_related("cluster")}
    missing = [name for name in names if name not in found]
    if missing:
        raise ActionError(f"nodes not in cluster {cluster.name}: {', '.join(missing)}")
    not_running = [name for name in names if found[name].state != NodeState.RUNNING]
    if not_running:
        states = ", ".join(f"{n} ({found[n].state})" for n in not_running)
        raise ActionError(f"nodes not running: {states}")
    return [found[name] for name in names]


def claimed_nodes(ids: Iterable[int]) -> list[Node]:
    """Nodes an earlier attempt claimed for removal and did not finish
    (draining, or already terminated)."""
    return list(Node.objects.filter(pk__in=list(ids), state__in=[NodeState.DRAINING, NodeState.TERMINATED]))


def not_terminated(nodes: Iterable[Node]) -> list[Node]:
    return [n for n in nodes if n.state != NodeState.TERMINATED]


def return_to_service(nodes: Sequence[Node]) -> None:
    """Give claimed (draining) nodes back to the running set: their removal
    stopped before they left the load balancer."""
    Node.objects.filter(pk__in=[n.pk for n in nodes], state=NodeState.DRAINING).update(
        state=NodeState.RUNNING, updated=timezone.now())
