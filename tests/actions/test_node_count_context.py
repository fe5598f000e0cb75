"""A scaling policy's chain carries the number of nodes to add or remove in its
context (``node_count``); size-changing kinds take it over their ``count``."""
from apps.actions.contract import NODE_COUNT_KEY, StepContext


def test_the_chain_s_node_count_wins_over_the_parameter():
    assert StepContext(cluster=None, data={NODE_COUNT_KEY: 3}).node_count(1) == 3


def test_without_one_the_parameter_counts():
    assert StepContext(cluster=None).node_count(2) == 2
    for bad in (0, -1, "3", True, None):
        assert StepContext(cluster=None, data={NODE_COUNT_KEY: bad}).node_count(2) == 2
