"""SSH counters of one node -> samples and collection errors.

Plain and fast: no database access on the hot path (the node's cluster
should come with it, select_related), no storing; the caller stores the
samples, logs them and records health (apps.monitoring.collection).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from apps.monitoring.samples import CollectionError, Sample, SeriesRef, floor_stamp

from .connection import ConnectionPool, target_for
from .errors import SshError
from .framing import CommandOutput
from .parsing import NotANumber, output_text, parse_number
from .runner import Outcome, Unfinished, run_commands

#: How much of a failing command's stderr goes into the error message.
STDERR_IN_MESSAGE = 300


def collect_node(node, counters: Iterable, now: datetime | None = None, *,
                 pool: ConnectionPool | None = None) -> list[Sample | CollectionError]:
    """One result per counter: a Sample, or a CollectionError saying why not.

    Bounded in time: at most SSH_CONNECT_TIMEOUT_S to (re)connect and
    SSH_COMMAND_TIMEOUT_S for the batch (a connection found dead between
    ticks costs one more connect). Never raises for a node-side failure.
    """
    counters = list(counters)
    if not counters:
        return []
    now = now or datetime.now(timezone.utc)
    results: dict[int, Sample | CollectionError] = {}
    runnable = []
    for counter in counters:
        if "\x00" in counter.command:  # admin validation forbids it; a raw insert may not
            results[counter.id] = CollectionError(node_id=node.id, message="the command contains a NUL character",
                                                  series=SeriesRef("ssh", node.id, counter.id))
        else:
            runnable.append(counter)
    if runnable:
        results.update(_run(node, runnable, now, pool))
    return [results[counter.id] for counter in counters]


def _run(node, counters: list, now: datetime, pool: ConnectionPool | None) -> dict[int, Sample | CollectionError]:
    refs = [SeriesRef("ssh", node.id, counter.id) for counter in counters]
    try:
        outcomes = run_commands(target_for(node), [counter.command for counter in counters], pool=pool)
    except SshError as exc:
        failed_at = datetime.now(timezone.utc)
        return {ref.counter_id: CollectionError(node_id=node.id, message=str(exc), series=ref, at=failed_at)
                for ref in refs}
    done_at = datetime.now(timezone.utc)
    return {
        ref.counter_id: _result(node.id, counter, ref, outcome, now, done_at)
        for counter, ref, outcome in zip(counters, refs, outcomes)
    }


def _result(node_id: int, counter, ref: SeriesRef, outcome: Outcome, now: datetime,
            done_at: datetime) -> Sample | CollectionError:
    def error(message: str, output: bytes = b"") -> CollectionError:
        return CollectionError(node_id=node_id, message=message, series=ref, output=output_text(output),
                               at=done_at)

    if isinstance(outcome, Unfinished):
        return error(outcome.message, outcome.stdout)
    assert isinstance(outcome, CommandOutput)
    if outcome.status != 0:
        return error(f"command exited with status {outcome.status}" + _stderr_hint(outcome.stderr),
                     outcome.stdout)
    if outcome.stdout_dropped:
        total = len(outcome.stdout) + outcome.stdout_dropped
        return error(f"output is {total} bytes long, expected one number", outcome.stdout)
    try:
        value = parse_number(outcome.stdout)
    except NotANumber as exc:
        return error(str(exc) + _stderr_hint(outcome.stderr), outcome.stdout)
    return Sample(series=ref, stamp=floor_stamp(now, counter.interval_s), value=value, collected_at=done_at)


def _stderr_hint(stderr: bytes) -> str:
    text = output_text(stderr).strip()
    if not text:
        return ""
    if len(text) > STDERR_IN_MESSAGE:
        text = text[:STDERR_IN_MESSAGE] + "…"
    return f" (stderr: {text})"
