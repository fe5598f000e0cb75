"""SSH failures in PyScaler's own words.

paramiko's exceptions say what went wrong inside the protocol ("Error reading
SSH protocol banner"); an operator needs to know which node, what to do, and
whether waiting helps. Every error here is node-level: the node's due counters
all miss their sample with this message.
"""
from __future__ import annotations


class SshError(Exception):
    """The node could not be asked at all (connection, host key, login, shell)."""

    #: True when the next tick may well succeed without anyone changing anything.
    transient = True


class SshConfigError(SshError):
    """Bad or unreadable configuration: a missing key file, an unset secret."""

    transient = False


class SshConnectError(SshError):
    """TCP could not reach sshd (refused, unreachable, unknown host name)."""


class SshTimeout(SshError):
    """A step (connect, banner, key exchange, login, shell start) took too long."""


class HostKeyError(SshError):
    """The host's key is unknown (policy "reject") or differs from the recorded one."""

    transient = False


class SshAuthError(SshError):
    """sshd refused every credential offered."""

    transient = False


class SshChannelError(SshError):
    """The connection works but the collection shell could not be started or died."""
