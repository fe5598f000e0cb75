"""The cluster-bounds bookkeeping (apps/control/sizing.py) on the database
alone: reserving slots, filling and releasing them, claiming removals."""
from __future__ import annotations

import pytest

from apps.control import sizing
from apps.actions.contract import ActionError
from apps.control.choices import NodeState
from apps.control.models import Cluster, Node
from tests.factories import make_cluster, node_for

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]


def cluster_with(running: int = 0, **fields) -> Cluster:
    cluster = make_cluster(fields.pop("name", "web"), **fields)
    for i in range(running):
        node_for(cluster, f"i-{i:017x}", name=f"web-{i}", launched_by_pyscaler=True)
    return cluster


def test_slots_are_pending_nodes_without_address_or_collection():
    cluster = cluster_with(max_size=5, max_step_size=2)
    reservation = sizing.reserve_slots(cluster, 2, "pyscaler-step-7")
    assert [s.name for s in reservation.slots] == ["launching.pyscaler-step-7.0", "launching.pyscaler-step-7.1"]
    for slot in reservation.slots:
        assert slot.state == NodeState.PENDING
        assert slot.address == "" and not slot.collection_enabled and slot.launched_by_pyscaler
    assert sizing.cluster_size(cluster) == 2
    assert reservation.capped_by == "" and not reservation.resumed


def test_the_same_step_gets_its_slots_back():
    cluster = cluster_with(max_size=5, max_step_size=2)
    first = sizing.reserve_slots(cluster, 2, "pyscaler-step-7")
    again = sizing.reserve_slots(cluster, 2, "pyscaler-step-7")
    assert [s.pk for s in again.slots] == [s.pk for s in first.slots]
    assert again.resumed
    assert Node.objects.count() == 2


def test_reservation_is_capped_and_says_by_what():
    cluster = cluster_with(running=3, max_size=4, max_step_size=2)
    reservation = sizing.reserve_slots(cluster, 3, "s")
    assert len(reservation.slots) == 1
    assert reservation.capped_by == "max_step_size 2 and max_size 4 with 3 node(s)"


def test_a_full_cluster_is_refused_naming_the_bound():
    cluster = cluster_with(running=2, max_size=2)
    with pytest.raises(ActionError, match=r"'web' is at its max size: 2 node\(s\), max_size 2"):
        sizing.reserve_slots(cluster, 1, "s")


def test_existing_instances_are_always_recorded_even_past_max_size():
    cluster = cluster_with(running=2, max_size=2)
    reservation = sizing.reserve_slots(cluster, 1, "s", at_least=1)
    assert len(reservation.slots) == 1


def test_fill_turns_slots_into_running_nodes_and_frees_the_rest():
    cluster = cluster_with(max_size=5, max_step_size=2)
    slots = sizing.reserve_slots(cluster, 2, "s").slots
    (node,) = sizing.fill_slots(slots, [sizing.Launched("i-0123456789abcdef0", "127.0.0.9", 2222)])
    node.refresh_from_db()
    assert (node.name, node.address, node.ssh_port, node.state) == (
        "i-0123456789abcdef0", "127.0.0.9", 2222, NodeState.RUNNING)
    assert node.collection_enabled
    assert Node.objects.count() == 1


def test_release_gives_the_room_back():
    cluster = cluster_with(max_size=1)
    slots = sizing.reserve_slots(cluster, 1, "a").slots
    with pytest.raises(ActionError):
        sizing.reserve_slots(cluster, 1, "b")
    sizing.release_slots(slots)
    assert len(sizing.reserve_slots(cluster, 1, "b").slots) == 1


def test_claim_marks_draining_and_running_size_drops():
    cluster = cluster_with(running=3, min_size=1)
    claimed = sizing.claim_for_removal(cluster, count=5)
    assert len(claimed) == 2  # down to min_size
    assert {n.state for n in Node.objects.filter(pk__in=[n.pk for n in claimed])} == {NodeState.DRAINING}
    assert sizing.running_size(cluster) == 1
    with pytest.raises(ActionError, match="at its min size"):
        sizing.claim_for_removal(cluster, count=1)


def test_claim_callback_runs_inside_the_transaction():
    """If recording the claim fails, the claim is undone."""
    cluster = cluster_with(running=2)

    def refuse(nodes):
        raise RuntimeError("step lost")

    with pytest.raises(RuntimeError):
        sizing.claim_for_removal(cluster, count=1, on_claim=refuse)
    assert sizing.running_size(cluster) == 2


def test_slot_names_are_valid_node_names_whatever_the_step_id():
    from apps.control.validators import validate_node_name

    validate_node_name(sizing.slot_prefix("step id/with spaces:and:colons") + "0")
