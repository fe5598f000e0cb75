"""Stopping a script on a node at the step's deadline: everything it started
dies, not just the connection to it.

Closing an SSH channel without a pty signals nothing on the node, and a pty is
no better: its hangup reaches only the terminal's foreground process group,
and any process may ignore SIGHUP. coreutils' ``timeout`` around the command
signals only its own process group, so a script that runs ``timeout`` itself,
``bash -c 'set -m; …'`` or anything else that calls setpgid escapes it. So
every command runs under a small POSIX-sh guard that relies on what sshd
guarantees instead: each exec request starts a new *session*, led by the
process sshd starts (``setsid`` in sshd's child), and every process the
command starts stays in it unless it calls setsid itself — i.e. daemonizes on
purpose, which a script restarting a service must be free to do.

The guard runs the command with stdin from /dev/null and keeps the channel's
stdin for itself. It stops the command when either comes first:

- its own time limit, a little inside the step's deadline, so the node stops
  the command even if the worker hangs or the network fails;
- end of file on the channel's stdin: PyScaler sends it at the deadline, and
  sshd gives it too when the channel or the whole connection closes (the
  worker gave up or died).

Stopping prints :data:`STOPPED_NOTICE` on stderr, sends SIGTERM to every
process of the session (``pkill -s 0``: the guard's own session), and SIGKILL
to whatever is left :data:`KILL_AFTER_S` later. Without procps' pkill the
guard falls back to ``kill 0``, the session's main process group. When the
command ends by itself the guard stands down and exits with its status;
background processes the command left (``nohup … &``) keep running.

Needs on the node: /bin/sh, coreutils ``timeout`` (as before) and procps
``pkill``. Processes of another user (``sudo``) cannot be signalled.
"""
from __future__ import annotations

import shlex
import time

import paramiko
from fabric.runners import Remote

from .output_buffer import HeadTail

#: Seconds between the guard's SIGTERM and its SIGKILL (cleanup handlers run).
KILL_AFTER_S = 1
#: The guard's own limit ends this long before the step's deadline, so the
#: node usually stops the command itself and says so before PyScaler gives up.
REMOTE_MARGIN_S = 0.5
#: After the deadline, how long PyScaler waits for the guard to confirm the
#: stop (its notice and the channel's close) before closing the channel.
STOP_GRACE_S = KILL_AFTER_S + 1.0
#: Characters of each stream (stdout, stderr) of a command run through Fabric
#: that are kept: head and tail, the middle counted and dropped as it streams
#: in. A connection's config may set another bound (``pyscaler.stream_chars``).
STREAM_CHARS = 64 * 1024
#: What the guard prints (on stderr) when it stopped the command at the timeout.
STOPPED_NOTICE = "pyscaler: stopped at the step's timeout"

_KILLING = (f"sending TERM, then KILL after {KILL_AFTER_S} s, to the command "
            "and every process it started")

# $1: the limit in seconds; $2: the command, run by /bin/sh. The helper ( … )
# watches: its TERM trap is the guard telling it to stand down; once it acts it
# ignores TERM, as its own pkill sends it one. Its stderr is /dev/null (the
# shell may report the watchdog it stopped as "Terminated"), its notice goes
# to the channel's stderr through fd 4, and it ignores SIGPIPE: when the
# connection is gone, printing the notice must not kill it before it acts.
GUARD_SCRIPT = f"""\
exec 3<&0 </dev/null
/bin/sh -c "$2" 3<&- &
c=$!
(
exec 4>&2 2>/dev/null
trap '' PIPE
trap 'kill $w; wait $w; exit 0' TERM
timeout "$1" cat <&3 >/dev/null 2>&1 &
w=$!
wait $w
s=$?
trap '' TERM
case $s in
124) echo "{STOPPED_NOTICE} (its $1 s on the node ran out): {_KILLING}";;
0) echo "{STOPPED_NOTICE} (PyScaler ended its input, or the connection was lost): {_KILLING}";;
*) echo "pyscaler: cannot watch the command (coreutils timeout exited $s): {_KILLING}";;
esac >&4
exec >/dev/null 4>&-
pkill -TERM -s 0 || kill -TERM 0
sleep {KILL_AFTER_S}
pkill -KILL -s 0 || kill -KILL 0
) &
h=$!
exec 3<&-
wait $c
s=$?
kill $h 2>/dev/null
exit $s
"""


def guarded_command(script: str, seconds: float) -> str:
    """The remote command line: `script` under the guard, stopped after
    `seconds` at the latest. `exec` keeps the guard the session's leader
    whatever the login shell is."""
    limit = f"{max(0.1, seconds):.1f}"
    return (f"exec /bin/sh -c {shlex.quote(GUARD_SCRIPT)} pyscaler-guard {limit} "
            f"{shlex.quote(script)}")


def remote_seconds(deadline: float) -> float:
    """The guard's limit for a command started now."""
    return max(1.0, deadline - time.monotonic() - REMOTE_MARGIN_S)


def was_stopped(output: str) -> bool:
    """Whether the guard reported stopping the command at the timeout."""
    return STOPPED_NOTICE in output


def end_input(channel: paramiko.Channel) -> bool:
    """Send end of file on the channel's stdin, the guard's order to stop;
    False if the connection is already gone (then the guard saw it anyway)."""
    try:
        channel.shutdown_write()
    except (OSError, EOFError, paramiko.SSHException):
        return False
    return True


class GuardedRemote(Remote):
    """Fabric's runner for commands of a step (``runners.remote`` in
    ssh_exec.fabric_config), used by ``Connection.run`` and ``sudo``: each
    command runs under the guard, is bounded by the step's deadline (the
    connection's ``deadline``) even if the caller asked for more, and a stop
    by the guard is reported as invoke's CommandTimedOut."""

    # Bigger reads than invoke's 1000 bytes: fewer turns for a noisy command.
    read_chunk_size = 32 * 1024

    def start(self, command, shell, env, timeout=None):
        super().start(guarded_command(command, remote_seconds(self.context.deadline)),
                      shell, env, timeout)

    def start_timer(self, timeout):
        left = max(0.0, self.context.deadline - time.monotonic())
        super().start_timer(left if timeout is None else min(timeout, left))

    def close_proc_stdin(self):
        # End of file on stdin is the guard's order to stop the command; the
        # command itself reads /dev/null, so an in_stream has nothing to close.
        pass

    def kill(self):
        """At the deadline (invoke's timer thread): tell the guard to stop
        the command and wait a bounded time for it to confirm."""
        if end_input(self.channel):
            self.channel.status_event.wait(STOP_GRACE_S)
        self.channel.close()

    @property
    def timed_out(self) -> bool:
        # The guard's own limit comes before invoke's timer: its stop ends the
        # channel with no exit status and the notice on stderr.
        if super().timed_out:
            return True
        return self.returncode() == -1 and was_stopped("".join(getattr(self, "stderr", [])))

    def _handle_output(self, buffer_, hide, output, reader):
        """invoke keeps every chunk until the command ends (and joins them all
        again for every chunk): a node printing gigabytes would fill the
        worker's memory. Here the stream goes into a HeadTail and the buffer
        receives its text at the end; watchers (sudo's password prompt) see
        the output as it comes while it is within the bound."""
        kept = HeadTail(self._stream_chars())
        try:
            for data in self.read_proc_output(reader):
                if not hide:
                    self.write_our_output(stream=output, string=data)
                kept.add(data)
                if self.watchers and not kept.cut:
                    buffer_.append(data)
                    self.respond(buffer_)
        finally:
            buffer_[:] = [kept.text()]

    def _stream_chars(self) -> int:
        try:
            return int(self.context.config.pyscaler.stream_chars)
        except (AttributeError, KeyError, TypeError, ValueError):
            return STREAM_CHARS
