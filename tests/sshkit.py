"""Helpers of the tests that log in to the harness's real sshd servers:
known-hosts files, no developer agent, and taking a server down together with
its established sessions. (``ssh_pool``, a connection pool of the test's own,
is a fixture of tests/fixtures/sshd.py.)"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from apps.monitoring.samples import Sample
from devservers.sshd import SshServer

_files = itertools.count(1)


def trust(settings, where: Path, *servers: SshServer) -> Path:
    """SSH_KNOWN_HOSTS lists exactly these servers' current keys. ``where``
    is the file to write, or a directory to write a new file in."""
    path = where / f"known_hosts-{next(_files)}" if where.is_dir() else where
    path.write_text("".join(server.host_key_line + "\n" for server in servers))
    settings.SSH_KNOWN_HOSTS = str(path)
    return path


def values(results: list) -> list:
    """A sample's value, or the error message, per counter."""
    return [r.value if isinstance(r, Sample) else r.message for r in results]


@pytest.fixture(autouse=True)
def _no_agent(monkeypatch) -> None:
    """A developer's SSH agent must not log in where a test expects refusal
    (autouse in every module that imports it)."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def session_pids(server: SshServer) -> list[int]:
    """sshd's per-connection processes (children of the listener)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == server.pid:
                pids.append(int(entry.name))
    return pids


def take_down(server: SshServer, how: str = "stop") -> None:
    """The node goes away with its established sessions. (The harness's stop()
    and kill() signal sshd's process group, but OpenSSH puts each connection
    in a session of its own, so established connections would survive.)"""
    sessions = session_pids(server)
    getattr(server, how)()
    for pid in sessions:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
