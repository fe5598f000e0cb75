"""Collection: the dispatcher's work list (worklist: what is due on which
node), the collect task's message (message: the rows a batch needs; signing:
the dispatcher's signature a worker checks before running any of it), and
running a batch (round), and node affinity (affinity: which worker collects
which node; consumers: the registry of live collect workers; worker: a
worker's own queue and heartbeat). Every source-specific step goes through
apps.monitoring.sources."""
from .message import VERSION, MessageError, NodeJob, make_messages, restore
from .round import (BatchReport, _sample_log, _store, collect_batch, collect_message, dispatch_round, record,
                    unassigned_nodes)
from .worklist import NodeWork

__all__ = [
    "VERSION", "BatchReport", "MessageError", "NodeJob", "NodeWork", "_sample_log", "_store", "collect_batch",
    "collect_message", "dispatch_round", "make_messages", "record", "restore", "unassigned_nodes",
]
