"""Puppet command lines: sealed in loopback, with all of its state in one directory.

Facter's cloud facts may query the instance-metadata address 169.254.169.254,
which tests, the demo and this project's machines must never contact. Blocking
fact groups is a moving target (new facter versions add groups), so Puppet runs
in a fresh network namespace whose only interface is loopback: any address
but 127.0.0.0/8 fails at once with "network unreachable", whatever facter
tries. `unshare -n` needs root; otherwise an unprivileged user namespace
(`unshare -r -n`) gives the same isolation.

Puppet's own directories (confdir, vardir, logdir, rundir, codedir) point into
one work directory so a run never reads or changes the machine's Puppet set-up.

The builders return argument lists and run nothing, so the same lines serve
OSConfiguration on a node (apps/actions/puppet_apply.py) and local runs in
tests (devservers/puppet.py); `shell_command` turns one into a
string for running on a node over SSH, where the binaries are looked up on the
node's PATH. This module imports nothing from Django so the test harness can
use it without settings.
"""
from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PuppetDirs:
    """Puppet's state directories, all under ``root``."""

    root: Path

    @property
    def confdir(self) -> Path:
        return self.root / "conf"

    @property
    def codedir(self) -> Path:
        return self.root / "code"

    def create(self) -> PuppetDirs:
        for name in ("conf", "var", "log", "run", "code"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        return self

    def args(self) -> list[str]:
        return [
            "--confdir", str(self.root / "conf"),
            "--vardir", str(self.root / "var"),
            "--logdir", str(self.root / "log"),
            "--rundir", str(self.root / "run"),
            "--codedir", str(self.root / "code"),
        ]


def sealed(command: Sequence[str], *, unshare: str = "unshare", ip: str = "ip",
           as_root: bool | None = None) -> list[str]:
    """Wrap ``command`` so it runs in a new network namespace with only loopback up.

    ``as_root`` says whether the command will run as root (local runs: the
    current user; remote runs: the SSH user, so the caller must say).
    """
    root = os.geteuid() == 0 if as_root is None else as_root
    flags = ["-n"] if root else ["-r", "-n"]
    # "$@" keeps every argument intact; no quoting of the command is needed.
    script = f'{shlex.quote(ip)} link set lo up && exec "$@"'
    return [unshare, *flags, "sh", "-c", script, "puppet-sealed", *command]


def apply_command(manifest: Path | str, dirs: PuppetDirs, *, modulepath: Sequence[Path | str] = (),
                  noop: bool = False, hiera_config: Path | str | None = None,
                  puppet: str = "puppet", extra: Sequence[str] = ()) -> list[str]:
    """`puppet apply` with detailed exit codes (0 no change, 2 changes, 4/6 failures)."""
    command = [puppet, "apply", *dirs.args(), "--detailed-exitcodes", "--color=false"]
    if modulepath:
        command += ["--modulepath", ":".join(str(p) for p in modulepath)]
    if hiera_config is not None:
        command += ["--hiera_config", str(hiera_config)]
    if noop:
        command.append("--noop")
    return [*command, *extra, str(manifest)]


def parser_validate_command(paths: Sequence[Path | str], dirs: PuppetDirs, *,
                            puppet: str = "puppet") -> list[str]:
    return [puppet, "parser", "validate", *dirs.args(), "--color=false", *(str(p) for p in paths)]


def shell_command(command: Sequence[str]) -> str:
    """One shell-safe string, for running the command on a node over SSH."""
    return shlex.join(command)
