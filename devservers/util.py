"""Small helpers shared by the local server launchers."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


class ServerError(RuntimeError):
    pass


def require_binary(path_or_name: str, debian_package: str) -> str:
    """Return the binary's path, or fail saying how to install it."""
    found = shutil.which(path_or_name) or (path_or_name if Path(path_or_name).exists() else None)
    if not found:
        raise ServerError(
            f"{path_or_name} not found: install it with `apt-get install -y {debian_package}` "
            f"(`make test` and `make run` do this through scripts/install-system-deps.sh)"
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None,
                  what: str = "server") -> None:
    """Poll until the port accepts connections; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerError(f"{what} exited with status {proc.returncode} before listening on {host}:{port}")
        if port_open(host, port):
            return
        time.sleep(0.05)
    raise ServerError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen | None, timeout: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, found through /proc. Needed because some
    servers (OpenSSH) put each connection in a session of its own, out of
    reach of a signal to the server's process group."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: parse after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (e.g. a server's data
    directory): how a sweep finds what a dead test session left running
    without trusting a recorded pid that may have been reused."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def owner_alive(directory: Path) -> bool:
    """Whether the test session that made ``directory`` (its ``owner.pid``) still runs."""
    try:
        pid = int((directory / "owner.pid").read_text())
    except (OSError, ValueError):
        return False
    return Path(f"/proc/{pid}").exists()
