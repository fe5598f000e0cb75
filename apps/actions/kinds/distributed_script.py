from __future__ import annotations

import concurrent.futures
import time
from dataclasses import dataclass
from functools import partial

from django import forms
from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string

from ..choices import ActionKindChoice
from ..contract import ActionError, ActionKind, StepContext, StepResult
from ..output_buffer import bounded
from ..registry import register
from .fields import StringListField

#: Characters of each node's output kept in the step's output (head and tail;
#: a command's streams are bounded as they arrive, see remote_guard.GuardedRemote).
NODE_OUTPUT_LIMIT = 8 * 1024
#: Nodes connected and run at once (Fabric's ThreadingGroup runs one thread per node).
MAX_PARALLEL = 32


def _validate_task_path(value: str) -> None:
    if not value.count(".") or not all(part.isidentifier() for part in value.split(".")):
        raise ValidationError(f"{value!r} is not a dotted path to a Python function")


@register
class DistributedScript(ActionKind):
    """A Fabric task or shell command run on the cluster's nodes in parallel."""

    kind = ActionKindChoice.DISTRIBUTED_SCRIPT
    label = "DistributedScript"

    class Params(forms.Form):
        command = forms.CharField(
            required=False, strip=False, help_text="shell command run on each node"
        )
        fabric_task = forms.CharField(
            required=False,
            help_text="dotted path of a Fabric task, a function taking a fabric Connection",
        )
        nodes = StringListField(
            required=False, help_text="node names to run on (default: all running nodes)"
        )
        tolerate_failures = forms.BooleanField(
            required=False, help_text="succeed even when some nodes fail (default false)"
        )

        def clean_fabric_task(self):
            value = self.cleaned_data.get("fabric_task") or ""
            if value:
                _validate_task_path(value)
                try:
                    import_string(value)
                except ImportError as exc:
                    raise ValidationError(f"cannot import {value!r}: {exc}") from None
            return value

        def clean(self):
            data = super().clean()
            command = (data.get("command") or "").strip()
            task = data.get("fabric_task")
            if not command and not task:
                # Named by its field: an empty command is the usual slip.
                self.add_error("command", "is empty; give the shell command to run on each node "
                                          "(or a fabric_task instead)")
            elif command and task:
                raise ValidationError("give exactly one of 'command' or 'fabric_task'")
            return data

    @classmethod
    def check_cluster(cls, params, cluster) -> None:
        if cluster is None or not params.get("nodes"):
            return
        known = set(cluster.nodes.values_list("name", flat=True))
        unknown = [n for n in params["nodes"] if n not in known]
        if unknown:
            raise ValidationError(f"nodes: not in cluster {cluster.name!r}: {', '.join(unknown)}")

    def run(self, ctx: StepContext) -> StepResult:
        from .. import ssh_exec

        nodes = self._nodes(ctx.cluster)
        targets = [ssh_exec.SshTarget.for_node(node) for node in nodes]
        if self.params.get("command"):
            outcomes = _run_command(targets, self.params["command"], ctx.deadline)
        else:
            outcomes = _run_fabric_task(targets, import_string(self.params["fabric_task"]), ctx.deadline)
        for outcome in outcomes:
            ctx.log(outcome.report())
        failed = [o for o in outcomes if not o.ok]
        summary = f"{len(outcomes) - len(failed)} of {len(outcomes)} nodes succeeded"
        named = ", ".join(f"{o.node} ({o.status})" for o in failed)
        if failed and not self.params.get("tolerate_failures"):
            raise ActionError(f"{summary}; failed on: {named}")
        if failed:
            summary += f" (failures tolerated: {named})"
        return StepResult(
            summary=summary,
            data={"distributed_script": {o.node: o.status for o in outcomes}},
        )

    def _nodes(self, cluster):
        from apps.control import sizing

        return sizing.running_nodes(cluster, self.params.get("nodes") or [])


@dataclass
class NodeOutcome:
    node: str
    ok: bool
    status: str  # "exit 0", "exit 3", "ok", "timed out", "error"
    output: str = ""
    note: str = ""  # what happened to a command that timed out

    def report(self) -> str:
        body = self.output.rstrip("\n")
        head = f"[{self.node}] {self.status}" + (f": {self.note}" if self.note else "")
        return head + (f"\n{body}" if body else "")


#: Notes on a timed-out node: whether its guard confirmed the stop.
STOPPED = ("stopped at the step's timeout; the node sent TERM, then KILL, to the command and every "
           "process it started")
UNCONFIRMED = ("still running at the step's timeout; the connection was closed, and the node "
               "kills the command and every process it started when it sees that")


def _timed_out(name: str, result) -> NodeOutcome:
    """The outcome of a command the guard or invoke's timer stopped."""
    from ..remote_guard import was_stopped

    stopped = was_stopped(result.stderr)
    return NodeOutcome(name, False, "timed out", _bounded(result.stdout + result.stderr),
                       STOPPED if stopped else UNCONFIRMED)


def _run_command(targets, command: str, deadline: float) -> list[NodeOutcome]:
    """The command on every node at once through Fabric's ThreadingGroup; the
    connections' runner (remote_guard.GuardedRemote) stops it on every node
    at the deadline."""
    from fabric import ThreadingGroup
    from fabric.exceptions import GroupException
    from invoke.exceptions import CommandTimedOut

    from .. import ssh_exec

    # Each stream bounded as it arrives, so the two fit one node's report.
    config = partial(ssh_exec.fabric_config, deadline, stream_chars=NODE_OUTPUT_LIMIT // 2)
    connections = [ssh_exec.VerifiedConnection(t, deadline=deadline, config=config()) for t in targets]
    by_conn = {id(c): t for c, t in zip(connections, targets)}
    group = ThreadingGroup.from_connections(connections)
    try:
        try:
            results = group.run(command, warn=True, timeout=max(0.1, deadline - time.monotonic()))
        except GroupException as exc:
            results = exc.result
        outcomes = []
        for conn, result in results.items():
            name = by_conn[id(conn)].name
            if isinstance(result, CommandTimedOut):
                outcomes.append(_timed_out(name, result.result))
            elif isinstance(result, BaseException):
                outcomes.append(NodeOutcome(name, False, "error", _describe(result)))
            else:
                outcomes.append(NodeOutcome(name, result.exited == 0, f"exit {result.exited}",
                                            _bounded(result.stdout + result.stderr)))
        _record_first_seen(connections)
        return sorted(outcomes, key=lambda o: o.node)
    finally:
        group.close()


def _run_fabric_task(targets, task, deadline: float) -> list[NodeOutcome]:
    """A Python function taking a Fabric Connection, called for every node in
    threads (Fabric's groups only run commands). Its commands are stopped at
    the deadline by the connection's runner, which raises CommandTimedOut in
    the task; that is awaited STOP_GRACE_S. A task still running after that
    (busy in Python) has its connection closed, which the guard of a command
    it may have started takes as the order to stop."""
    from invoke.exceptions import CommandTimedOut

    from .. import ssh_exec
    from ..remote_guard import STOP_GRACE_S

    connections = {t.name: ssh_exec.VerifiedConnection(t, deadline=deadline) for t in targets}

    def call(name: str):
        conn = connections[name]
        conn.open()
        return task(conn)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(targets)),
                                                 thread_name_prefix="fabric-task")
    futures = {pool.submit(call, name): name for name in connections}
    try:
        wait_s = max(0.0, deadline - time.monotonic()) + STOP_GRACE_S + 0.5
        done, not_done = concurrent.futures.wait(futures, timeout=wait_s)
        outcomes = []
        for future in done:
            name = futures[future]
            exc = future.exception()
            if isinstance(exc, CommandTimedOut):
                outcomes.append(_timed_out(name, exc.result))
            elif exc is not None:
                outcomes.append(NodeOutcome(name, False, "error", _describe(exc)))
            else:
                value = future.result()
                outcomes.append(NodeOutcome(name, True, "ok", _bounded("" if value is None else str(value))))
        for future in not_done:
            outcomes.append(NodeOutcome(futures[future], False, "timed out", note=UNCONFIRMED))
        _record_first_seen(connections.values())
        return sorted(outcomes, key=lambda o: o.node)
    finally:
        for conn in connections.values():
            conn.close()
        pool.shutdown(wait=False, cancel_futures=True)


def _record_first_seen(connections) -> None:
    # Here, in the step's thread: Fabric connected in its own threads, where
    # the database is not used.
    for conn in connections:
        conn.record_first_seen()


def _describe(exc: BaseException) -> str:
    from invoke.exceptions import UnexpectedExit

    if isinstance(exc, UnexpectedExit):
        r = exc.result
        return _bounded(f"command {r.command!r} exited {r.exited}\n{r.stdout}{r.stderr}")
    return f"{type(exc).__name__}: {exc}"


def _bounded(text: str) -> str:
    # Room for the two streams' cut markers: a command's output is already
    # bounded per stream and is not cut again.
    return bounded(text, NODE_OUTPUT_LIMIT + 256)
