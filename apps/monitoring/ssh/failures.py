"""paramiko's and the socket layer's exceptions as PyScaler's own (errors.py),
worded so an operator knows what to fix: kept apart from connection.py, which
only needs to call it."""
from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import paramiko

from . import hostkeys
from .errors import HostKeyError, SshAuthError, SshConnectError, SshError, SshTimeout

if TYPE_CHECKING:
    from .connection import SshTarget


def translate(exc: BaseException, target: "SshTarget", timeout: float, step: str) -> SshError:
    """paramiko and socket errors in words an operator can act on."""
    if isinstance(exc, SshError):
        return exc
    after = f"after {timeout:g} s"
    if isinstance(exc, paramiko.BadHostKeyException):  # raised without our wording
        check = getattr(exc, "_pyscaler_check", None)
        if check is not None:
            return check.changed_error(exc.key, exc.expected_key)
        return HostKeyError(f"host key for {hostkeys.host_key_name(target.host, target.port)} changed")
    if isinstance(exc, paramiko.AuthenticationException):
        if "timeout" in str(exc).lower():
            return SshTimeout(f"login as {target} timed out {after}")
        return SshAuthError(f"authentication refused for {target}")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return SshTimeout(f"{step} {target.address} timed out {after}")
    if isinstance(exc, ConnectionRefusedError):
        return SshConnectError(f"connection refused by {target.address} (is sshd running on that port?)")
    if isinstance(exc, socket.gaierror):
        return SshConnectError(f"cannot resolve host name {target.host}: {exc.strerror}")
    if isinstance(exc, paramiko.SSHException):
        text = str(exc)
        if "banner" in text.lower():
            if "timeout" in text.lower() or "timed out" in text.lower() or not text.split("banner", 1)[1].strip():
                return SshTimeout(
                    f"no SSH banner from {target.address} {after} (server hung or overloaded, "
                    f"or not an SSH server)"
                )
            return SshConnectError(f"{target.address} closed the connection before the SSH banner: {text}")
        if "timed out" in text.lower() or "timeout" in text.lower():
            return SshTimeout(f"{step} {target.address} timed out {after}")
        return SshConnectError(f"SSH error with {target.address} while {step}: {text}")
    if isinstance(exc, EOFError):
        return SshConnectError(f"{target.address} closed the connection while {step}")
    if isinstance(exc, OSError):
        return SshConnectError(f"cannot connect to {target.address}: {exc.strerror or exc}")
    return SshError(f"{step} {target.address} failed: {exc!r}")
