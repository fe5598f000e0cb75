"""Running a node's due commands: one batch, one round trip, one deadline.

The batch script (framing.py) is written to the connection's collection
shell in one send and the outputs are read back as they come, until every
command's trailer has arrived or SSH_COMMAND_TIMEOUT_S has passed. A command
still running at the deadline, and every command after it, are reported
unfinished; the shell is then known to be stuck, so the connection is
abandoned (its process group killed, in the background) and the next batch
opens a new one. Commands finished before the deadline keep their results.

A reused connection may have died between ticks (sshd restarted, node
rebooted) without paramiko noticing yet; when it fails before returning a
single byte, the batch is sent once more on a new connection, so a restart
costs no tick.
"""
from __future__ import annotations

import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

import paramiko
from django.conf import settings

from .connection import ConnectionPool, SshConnection, SshTarget, pool as default_pool
from .errors import SshError
from .framing import BatchParser, CommandOutput, FramingError, batch_script, make_nonce
from .readiness import wait_readable

log = logging.getLogger(__name__)

#: A batch that returns more than this is aborted (a command like `yes` would
#: otherwise keep a worker busy decrypting garbage until the deadline).
MAX_BATCH_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Unfinished:
    """A command that gave no result: timed out, cut off, or never started."""

    message: str
    stdout: bytes = b""  # what it printed before it was cut off


Outcome = CommandOutput | Unfinished


class _Stale(Exception):
    """A reused connection failed before answering: retry on a new one."""


def run_commands(target: SshTarget, commands: Sequence[str], *, timeout: float | None = None,
                 connect_timeout: float | None = None, pool: ConnectionPool | None = None) -> list[Outcome]:
    """One outcome per command, in order. Raises SshError when the node cannot
    be asked at all (connect, host key, login, shell start)."""
    if not commands:
        return []
    pool = pool or default_pool
    timeout = settings.SSH_COMMAND_TIMEOUT_S if timeout is None else timeout
    # Identical commands (two counters reading the same figure) run once.
    unique = list(dict.fromkeys(commands))
    conn, reused = pool.checkout(target, connect_timeout)
    try:
        outcomes = _run_batch(pool, conn, unique, timeout, reused)
    except _Stale:
        log.info("SSH connection to %s was closed since the last tick; reconnecting", target)
        conn, _ = pool.checkout(target, connect_timeout)
        outcomes = _run_batch(pool, conn, unique, timeout, reused=False)
    by_command = dict(zip(unique, outcomes))
    return [by_command[command] for command in commands]


def _run_batch(pool: ConnectionPool, conn: SshConnection, commands: list[str], timeout: float,
               reused: bool) -> list[Outcome]:
    nonce = make_nonce()
    parser = BatchParser(nonce, len(commands))
    channel = conn.channel
    deadline = time.monotonic() + timeout
    failure: str | None = None
    hung = False
    try:
        # Whatever arrived since the last batch (a background process a command
        # left behind) belongs to no command of this one.
        while channel.recv_ready():
            channel.recv(65536)
        while channel.recv_stderr_ready():
            channel.recv_stderr(65536)
        channel.settimeout(timeout)
        channel.sendall(batch_script(commands, nonce))
        conn.batches += 1
        failure, hung = _read(channel, parser, deadline, timeout)
    except (OSError, EOFError, paramiko.SSHException) as exc:
        if isinstance(exc, socket.timeout):
            failure, hung = f"timed out after {timeout:g} s (sending the commands)", True
        else:
            failure = f"connection lost: {exc or type(exc).__name__}"
    except FramingError as exc:
        failure, hung = f"the collection shell's output was garbled: {exc}", True
    except BaseException:
        pool.discard(conn, hung=True)  # state unknown: never hand it to the next batch
        raise

    if failure is None:
        pool.checkin(conn)
        return parser.outputs()
    if reused and parser.received == 0 and not hung:
        pool.discard(conn)
        raise _Stale()
    pool.discard(conn, hung=hung)
    return _with_unfinished(parser, len(commands), failure, timeout)


def _read(channel: paramiko.Channel, parser: BatchParser, deadline: float,
          timeout: float) -> tuple[str | None, bool]:
    """Read until the batch is complete; (failure message, shell hung) otherwise."""
    fd = channel.fileno()  # readable when stdout or stderr data (or EOF) arrives
    shell_stderr = b""  # the shell's own complaints; commands' stderr is framed on stdout
    while True:
        while channel.recv_ready():
            parser.feed(channel.recv(65536))
        while channel.recv_stderr_ready():
            shell_stderr = (shell_stderr + channel.recv_stderr(65536))[-1024:]
        if parser.done:
            return None, False
        if parser.received > MAX_BATCH_BYTES:
            return f"output flood: the batch printed more than {MAX_BATCH_BYTES >> 20} MiB", True
        if (channel.eof_received or channel.closed) and not (channel.recv_ready() or channel.recv_stderr_ready()):
            status = channel.exit_status if channel.exit_status_ready() else None
            message = "connection lost: the collection shell exited"
            if status not in (None, -1):
                message += f" (status {status})"
            if shell_stderr.strip():
                message += f": {shell_stderr.decode(errors='replace').strip()[-300:]}"
            return message, False
        left = deadline - time.monotonic()
        if left <= 0:
            return f"timed out after {timeout:g} s", True
        wait_readable(fd, left)


def _with_unfinished(parser: BatchParser, count: int, failure: str, timeout: float) -> list[Outcome]:
    outcomes: list[Outcome] = list(parser.outputs())
    if len(outcomes) < count:
        outcomes.append(Unfinished(failure, parser.unfinished_output()))
    while len(outcomes) < count:
        outcomes.append(Unfinished(f"not run: an earlier command of the batch failed ({failure})"))
    return outcomes


__all__ = ["Outcome", "SshError", "Unfinished", "run_commands"]
