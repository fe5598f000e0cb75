"""Puppet's work directory on a node: private to the SSH user, or no run.

What is copied there is run by Puppet, often as root (``sudo puppet``). A
directory at a fixed shared path (``/var/tmp/...``) that another local user
created first, or can write to, would let that user swap in their own script.
So before anything is copied the directory (settings.PUPPET_REMOTE_DIR; a
leading ``~/`` is the SSH user's home) is created with mode 0700 if missing,
and then must be a real directory (not a symbolic link) owned by the SSH user
with no access for group or others; anything else fails the step with what is
wrong and how to fix it, and nothing is copied.
"""
from __future__ import annotations

import errno
import posixpath
import stat

import paramiko

from .contract import ActionError
from .ssh_exec import run_bounded


def resolve(sftp: paramiko.SFTPClient, configured: str) -> str:
    """The absolute path of the configured directory on the node."""
    if configured == "~" or configured.startswith("~/"):
        return posixpath.normpath(posixpath.join(sftp.normalize("."), configured[2:]))
    return posixpath.normpath(configured)


def ensure_private(client: paramiko.SSHClient, sftp: paramiko.SFTPClient, path: str, user: str,
                   deadline: float) -> None:
    """Create ``path`` (mode 0700) if missing and check it; ActionError if it is not private."""
    _make_missing(sftp, path)
    try:
        info = sftp.lstat(path)
    except OSError as exc:
        raise ActionError(f"cannot inspect Puppet's work directory {path} on the node: {exc}") from None
    problem = _problem(info, _ssh_uid(client, deadline), user)
    if problem:
        raise ActionError(
            f"Puppet's work directory {path} on the node {problem}; a run uses only a directory of the "
            f"SSH user {user} with mode 0700 (no access for others), because Puppet runs what is copied "
            "there. Remove it (PyScaler then creates it), fix its owner and mode, or set "
            "PUPPET_REMOTE_DIR to a directory of that user."
        )


def _make_missing(sftp: paramiko.SFTPClient, path: str) -> None:
    """Parents as usual, the directory itself 0700 (chmod too: the server's umask)."""
    current = "/" if path.startswith("/") else ""
    parts = [p for p in path.split("/") if p]
    for index, part in enumerate(parts):
        current = posixpath.join(current, part) if current else part
        last = index == len(parts) - 1
        try:
            sftp.lstat(current)
            continue
        except FileNotFoundError:
            pass
        try:
            sftp.mkdir(current, mode=0o700 if last else 0o755)
            if last:
                sftp.chmod(current, 0o700)
        except OSError as exc:
            if getattr(exc, "errno", None) == errno.EEXIST:
                continue  # made meanwhile: the checks below judge it
            raise ActionError(f"cannot create Puppet's work directory {current} on the node: {exc}",
                              retryable=False) from None


def _ssh_uid(client: paramiko.SSHClient, deadline: float) -> int:
    result = run_bounded(client, "id -u", deadline, 256)
    text = result.output.strip()
    if result.exit_status != 0 or not text.isdigit():
        raise ActionError(f"cannot tell the SSH user's uid on the node (`id -u` said {text[:200]!r})",
                          retryable=True)
    return int(text)


def _problem(info: paramiko.SFTPAttributes, uid: int, user: str) -> str:
    mode = info.st_mode or 0
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(mode):
        return "is not a directory"
    if info.st_uid != uid:
        return f"is owned by uid {info.st_uid}, not by the SSH user {user} (uid {uid})"
    perms = stat.S_IMODE(mode)
    if perms & 0o022:
        return f"has mode {perms:04o}: writable by others"
    if perms & 0o077:
        return f"has mode {perms:04o}: open to others"
    return ""
