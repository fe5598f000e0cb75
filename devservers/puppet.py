"""Run Puppet on this machine, sealed in loopback, for tests.

The command lines (the loopback-only network namespace, Puppet's state kept in
one work directory) are built by apps/actions/puppet_command.py, which
OSConfiguration uses on nodes too; this module only adds what a local run
needs: the repository's puppet/ directory, its manifests, and running a
command here within a timeout.
"""
from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from apps.actions.puppet_command import sealed, shell_command
from devservers.util import REPO_ROOT, ServerError, require_binary

PUPPET_DIR = REPO_ROOT / "puppet"
DEFAULT_TIMEOUT_S = 120.0


def manifests_under(directory: Path = PUPPET_DIR) -> list[Path]:
    return sorted(directory.rglob("*.pp"))


def run_sealed(command: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a Puppet command locally, sealed in loopback, within ``timeout`` seconds.

    Returns the completed process whatever its exit status (Puppet's detailed
    exit codes carry meaning); a run that outlives the timeout is killed and
    reported with its command line.
    """
    unshare = require_binary("unshare", "util-linux")
    ip = require_binary("ip", "iproute2")
    require_binary(command[0], "puppet")
    try:
        return subprocess.run(sealed(command, unshare=unshare, ip=ip), capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        raise ServerError(f"puppet did not finish within {timeout:.0f} s: {shell_command(command)}") from exc
